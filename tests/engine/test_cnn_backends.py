"""NumPy and CuPy run the same CNN: forward pass, gradients and Adam steps agree.

LeNet-5 (``backprop.cnn.LENET5``, paper init, seed 0) on the first 320 images
of the bundled MNIST test set, on the backend under test and on NumPy from the
same host-drawn weights: the logits, loss and gradients of one batch of 32,
then 10 Adam steps of the reference step (``backprop.loop.ReferenceStep``,
which scales the uint8 batches on the device). The differences are measured
normwise, as in ``test_backends.py``, whose tolerances and their reasons
(cuBLAS sums in another order; the GPU's exp and log round differently)
apply here too: the convolutions are matrix products of ``im2col``'s columns.

On the stand-in (``PYTHONPATH=tests/fakegpu``) every operation is NumPy's, so
the two agree bit for bit, and what the test shows is that the CNN's whole
path runs on device arrays (an implicit copy to the host raises there) and
its results stay on the device.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from backprop.cnn import CNN, LENET5
from backprop.data import BUNDLED_MNIST, load_split
from backprop.device import to_numpy, xp_of
from backprop.loop import ReferenceStep
from backprop.optim import Adam

BATCH = 32
STEPS = 10
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}  # normwise, as test_backends.py


@functools.lru_cache(maxsize=1)
def pixels_and_labels():
    images, labels = load_split(BUNDLED_MNIST, "test")
    n = BATCH * STEPS
    return images[:n].reshape(n, -1), labels[:n].astype(np.int64)  # uint8 (n, 784)


def cnn_run(xp, dtype):
    """Logits, loss, gradients of one batch and parameters after STEPS steps."""
    pixels, labels = pixels_and_labels()
    model = CNN(LENET5, seed=0, dtype=dtype, device="cpu" if xp is np else "gpu")
    px, y = xp.asarray(pixels), xp.asarray(labels)  # (n, 784) uint8, (n,)
    x = px[:BATCH].astype(dtype) / 255  # (32, 784)
    loss, grads, logits = model.loss_and_grads(x, y[:BATCH], return_logits=True)
    on_device = [loss, logits, *grads.values()]
    result = {"logits": to_numpy(logits), "loss": to_numpy(loss)}
    result.update({f"grad {k}": to_numpy(g) for k, g in grads.items()})
    step = ReferenceStep(model, Adam(1e-3), px, y)
    for k in range(STEPS):
        done = step(xp.arange(k * BATCH, (k + 1) * BATCH))
        on_device.append(done.loss)
    on_device += list(model.params.values())
    result.update({f"trained {k}": to_numpy(p) for k, p in model.params.items()})
    return result, on_device


@functools.cache
def numpy_run(dtype):
    return cnn_run(np, dtype)[0]


def normwise(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_cnn_agrees_across_backends_and_stays_on_its_device(xp, dtype):
    run, on_device = cnn_run(xp, dtype)
    reference = numpy_run(dtype)
    far = {
        name: normwise(run[name], reference[name])
        for name in reference
        if not normwise(run[name], reference[name]) <= TOLERANCE[dtype]
    }
    assert not far, f"normwise differences above {TOLERANCE[dtype]:.0e}: {far}"
    for array in on_device:
        assert xp_of(array) is xp and array.dtype == np.dtype(dtype)
    start = CNN(LENET5, seed=0, dtype=dtype).params["conv1.w"]
    assert normwise(run["trained conv1.w"], start) > 100 * TOLERANCE[dtype]
