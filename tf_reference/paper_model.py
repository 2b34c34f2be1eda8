"""The paper's network in TensorFlow: ``tf.Module`` layers, a tape, Keras's loss.

This is the code the engine is checked against, written the way the paper
writes it: a dense layer that creates its weights on first call, a sequential
module, ``tf.losses.categorical_crossentropy`` on the softmax probabilities,
and ``tf.optimizers.Adam``. Shapes: N is the batch size, D the number of
inputs of a layer, H its number of outputs, C the number of classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tf_reference import load_tensorflow

tf, keras = load_tensorflow()


class Dense(tf.Module):
    """A dense layer, ``activation(x @ w + b)``, built on its first call.

    ``w`` is drawn from ``tf.random.truncated_normal`` (stddev 0.1, redrawn
    beyond two stddevs) and ``b`` starts at zero, once the input width is known.

    Args:
        units: H, the number of outputs.
        activation: applied to ``x @ w + b``; ``tf.identity`` for none.
        stddev: standard deviation of the initial weights.
        dtype: ``tf.float32`` or ``tf.float64``.
        name: the module's name; variables are called ``<name>/w`` and ``<name>/b``.
    """

    def __init__(
        self,
        units: int,
        activation: Callable[[tf.Tensor], tf.Tensor] = tf.identity,
        *,
        stddev: float = 0.1,
        dtype: tf.DType = tf.float32,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.units = units
        self.activation = activation
        self.stddev = stddev
        self.dtype = tf.as_dtype(dtype)
        self.is_built = False

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        """Apply the layer.

        Args:
            x: inputs, shape (N, D).

        Returns:
            outputs, shape (N, H).
        """
        if not self.is_built:
            with self.name_scope:
                w0 = tf.random.truncated_normal(
                    [x.shape[-1], self.units], stddev=self.stddev, dtype=self.dtype
                )  # (D, H)
                self.w = tf.Variable(w0, name="w")  # (D, H)
                self.b = tf.Variable(tf.zeros([self.units], self.dtype), name="b")
            self.is_built = True
        return self.activation(x @ self.w + self.b)  # (N, H)


class Sequential(tf.Module):
    """Layers applied one after the other.

    Args:
        layers: the layers, first to last.
        name: the module's name.
    """

    def __init__(self, layers: Sequence[tf.Module], name: str | None = None) -> None:
        super().__init__(name=name)
        self.layers = list(layers)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        """Apply every layer.

        Args:
            x: inputs, shape (N, D).

        Returns:
            the last layer's outputs, (N, C) probabilities for ``paper_model``.
        """
        for layer in self.layers:
            x = layer(x)
        return x


def paper_model(
    hidden: Sequence[int] = (128,), classes: int = 10, dtype: tf.DType = tf.float32
) -> Sequential:
    """The paper's network: dense ReLU layers, then a dense softmax layer.

    The layers are named ``dense1``, ``dense2``, ... like the engine's
    parameters (``dense1.w`` is the variable ``dense1/w``). Nothing is created
    until the first call, which fixes the input width.

    Args:
        hidden: widths of the ReLU layers, e.g. (128,).
        classes: C, the width of the softmax layer.
        dtype: ``tf.float32`` or ``tf.float64``.

    Returns:
        the model; ``model(x)`` maps (N, D) inputs to (N, C) probabilities.
    """
    layers = [
        Dense(width, tf.nn.relu, dtype=dtype, name=f"dense{i}")
        for i, width in enumerate(hidden, start=1)
    ]
    layers.append(
        Dense(classes, tf.nn.softmax, dtype=dtype, name=f"dense{len(hidden) + 1}")
    )
    return Sequential(layers, name="mlp")


def paper_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """The paper's loss: Keras's categorical cross-entropy on probabilities.

    Run eagerly, Keras divides each row of ``y_pred`` by its sum and clips it
    to ``[1e-7, 1 - 1e-7]`` before the log, so its gradient is not exactly
    ``softmax - onehot`` once a prediction saturates. Inside ``tf.function``,
    when ``y_pred`` is the output of a Softmax op, Keras takes the op's input
    (the logits) and calls ``tf.nn.softmax_cross_entropy_with_logits``: no clip.
    See ``keras/src/backend/tensorflow/nn.py``, ``categorical_crossentropy`` and
    ``_get_logits``.

    Args:
        y_true: one-hot targets, shape (N, C).
        y_pred: predicted probabilities, shape (N, C).

    Returns:
        the mean loss over the batch, a scalar.
    """
    return tf.reduce_mean(tf.losses.categorical_crossentropy(y_true, y_pred))


def paper_optimizer(lr: float = 1e-3) -> tf.optimizers.Adam:
    """The paper's optimizer, ``tf.optimizers.Adam`` (Keras 3's Adam).

    On float64 variables Keras is not float64 throughout; the engine's
    ``Adam(mode="keras")`` copies what it does (Keras 3.15 source):

    * ``keras/src/optimizers/base_optimizer.py``, ``BaseOptimizer.__init__``:
      a float learning rate is stored in ``backend.Variable(...,
      dtype=backend.floatx())``, a float32 variable, and ``Adam.update_step``
      casts its value to float64: ``float32(lr)``.
    * ``keras/src/optimizers/adam.py``, ``Adam.update_step``:
      ``ops.power(ops.cast(self.beta_1, variable.dtype), local_step)``, and
      ``ops.cast`` is ``tf.cast`` (``keras/src/backend/tensorflow/core.py``,
      ``cast``), which first makes a float32 tensor of the Python float (its
      docstring warns of it), so ``beta_1 ** t`` is ``float32(beta_1) ** t``
      in float64; the same for ``beta_2``.
    * Everything else is float64: ``m += (g - m) * (1 - beta_1)`` and
      ``v += (g * g - v) * (1 - beta_2)`` use the Python floats, and the step
      is ``m * alpha / (sqrt(v) + epsilon)`` with
      ``alpha = lr * sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)``.

    So only ``alpha`` sees float32 roundings: about 6.6e-6 relative at
    ``beta_2 = 0.999``, and 1e-7 on the weights after 100 steps of lr 1e-3.

    Args:
        lr: the learning rate; beta_1 0.9, beta_2 0.999, epsilon 1e-7 (defaults).
    """
    return tf.optimizers.Adam(learning_rate=lr)
