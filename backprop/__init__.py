"""backprop: a from-scratch NumPy/CuPy backpropagation engine for MNIST.

The public API::

    import backprop as bp
    (x_train, y_train), (x_test, y_test) = bp.load_mnist()
    model = bp.MLP([784, 128, 10], seed=0)
    loss, grads = model.loss_and_grads(x_train[:256], y_train[:256])
    opt = bp.Adam(lr=1e-3)
    opt.step(model.params, grads)
"""

__version__ = "0.1.0"

from backprop.cnn import CNN
from backprop.data import load_dataset, load_mnist, load_pixels
from backprop.errors import BackpropError
from backprop.losses import softmax, softmax_cross_entropy
from backprop.model import MLP
from backprop.optim import SGD, Adam

__all__ = [
    "CNN",
    "MLP",
    "SGD",
    "Adam",
    "BackpropError",
    "load_dataset",
    "load_mnist",
    "load_pixels",
    "softmax",
    "softmax_cross_entropy",
    "__version__",
]
