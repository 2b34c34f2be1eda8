"""A multi-layer perceptron: dense + ReLU layers, then a dense layer to logits.

The softmax lives in the loss (``losses.softmax_cross_entropy``), so the model
outputs logits; ``predict_proba`` applies the softmax for users.

``MLP.forward``, ``MLP.backward`` and ``MLP.loss_and_grads`` are the code
that trains: read them to learn backprop. The parameters live in one flat
buffer (``backprop.params``), so a fused optimizer kernel can update them all
in one pass; each name is a view into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from backprop.device import get_xp, to_device, xp_of
from backprop.errors import ConfigError
from backprop.init import INITIALIZERS
from backprop.layers import dense_backward, dense_forward, relu_backward, relu_forward
from backprop.losses import softmax, softmax_cross_entropy
from backprop.params import flat_buffer

Array = Any  # a numpy.ndarray or cupy.ndarray
DTYPES = ("float32", "float64")


class MLP:
    """Dense layers of the given sizes, ReLU between them.

    Parameters are named ``dense1.w`` (sizes[0], sizes[1]), ``dense1.b``
    (sizes[1],), ``dense2.w``, ... and live in ``self.params``, an ordered dict
    that optimizers update in place. Each is a view into ``self.flat``, one
    buffer of every parameter value; write into them (``p[...] = new``)
    rather than replacing them.

    Args:
        sizes: layer widths from inputs to classes, e.g. ``[784, 128, 10]``.
        seed: seed of the generator that draws the initial weights.
        dtype: ``"float32"`` or ``"float64"``.
        device: ``"cpu"``, ``"gpu"`` or ``"auto"``.
        init: ``"paper"`` (truncated normal, stddev 0.1), ``"he"`` or ``"glorot"``.
        rng: a generator to draw from instead of one made from ``seed``.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        seed: int = 0,
        dtype: str = "float32",
        device: str = "cpu",
        init: str = "paper",
        rng: np.random.Generator | None = None,
    ) -> None:
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ConfigError(
                f"MLP sizes must be at least two positive widths, got {sizes}"
            )
        if dtype not in DTYPES:
            raise ConfigError(
                f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}"
            )
        if init not in INITIALIZERS:
            raise ConfigError(
                f"unknown init {init!r}; choose one of {', '.join(INITIALIZERS)}"
            )
        self.sizes = sizes
        self.dtype = dtype
        xp = get_xp(device)
        rng = np.random.default_rng(seed) if rng is None else rng
        self.flat, self.params = flat_buffer(_layer_shapes(sizes), dtype, xp)
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            w = INITIALIZERS[init](rng, fan_in, fan_out).astype(dtype)  # (D, H)
            self.params[f"dense{i}.w"][...] = to_device(w, xp)  # biases stay 0

    @classmethod
    def from_params(cls, params: dict[str, Any], *, device: str = "cpu") -> MLP:
        """Build a model around existing weights (a checkpoint's, or TensorFlow's).

        Args:
            params: ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ``dense2.w``, ...;
                any array type, copied to ``device``.
            device: where the model lives.

        Raises:
            ConfigError: the names or shapes do not form an MLP.
        """
        count = len(params) // 2
        expected = [f"dense{i}.{p}" for i in range(1, count + 1) for p in "wb"]
        if count < 1 or sorted(params) != sorted(expected):
            raise ConfigError(
                f"parameters {sorted(params)} are not dense1.w, dense1.b, ... of an MLP"
            )
        sizes = [int(params["dense1.w"].shape[0])]
        for i in range(1, count + 1):
            w, b = params[f"dense{i}.w"], params[f"dense{i}.b"]
            if w.ndim != 2 or w.shape[0] != sizes[-1] or b.shape != (w.shape[1],):
                raise ConfigError(
                    f"dense{i}: weight {tuple(w.shape)} and bias {tuple(b.shape)} "
                    f"do not follow a layer of width {sizes[-1]}"
                )
            sizes.append(int(w.shape[1]))
        dtype = str(params["dense1.w"].dtype)
        if dtype not in DTYPES:
            raise ConfigError(
                f"parameters have dtype {dtype}; expected one of {', '.join(DTYPES)}"
            )
        model = cls.__new__(cls)
        model.sizes, model.dtype = sizes, dtype
        xp = get_xp(device)
        model.flat, model.params = flat_buffer(_layer_shapes(sizes), dtype, xp)
        for name in expected:
            model.params[name][...] = to_device(params[name], xp)
        return model

    @property
    def num_layers(self) -> int:
        """Number of dense layers."""
        return len(self.sizes) - 1

    def forward(self, x: Array) -> tuple[Array, list[tuple]]:
        """Logits for a batch, and the caches the backward pass needs.

        Args:
            x: inputs, shape (N, sizes[0]).

        Returns:
            logits: shape (N, sizes[-1]).
            caches: one ``(dense_cache, relu_cache)`` per layer (no ReLU on the last).
        """
        caches = []
        out = x
        for i in range(1, self.num_layers + 1):
            out, dense_cache = dense_forward(
                out, self.params[f"dense{i}.w"], self.params[f"dense{i}.b"]
            )
            relu_cache = None
            if i < self.num_layers:
                out, relu_cache = relu_forward(out)
            caches.append((dense_cache, relu_cache))
        return out, caches

    def backward(
        self, dlogits: Array, caches: list[tuple], return_hidden: bool = False
    ) -> dict[str, Array] | tuple[dict[str, Array], list[Array]]:
        """Gradients of every parameter, from the gradient of the logits.

        Args:
            dlogits: gradient of the loss with respect to the logits, (N, C).
            caches: from ``forward``.
            return_hidden: also return the gradient of the loss with respect
                to each hidden layer's output ``h_l`` (after its ReLU), which
                the backward pass computes on its way down anyway (the
                explorer shows them).

        Returns:
            grads: same keys and shapes as ``params``.
            dhidden: only when ``return_hidden``: ``[dL/dh_1, ..., dL/dh_{L-1}]``,
                one (N, H_l) array per hidden layer, the first layer first.
        """
        grads = {}
        dhidden = []  # dL/dh_l, collected from the top layer down
        dout = dlogits
        for i in range(self.num_layers, 0, -1):
            dense_cache, relu_cache = caches[i - 1]
            if relu_cache is not None:
                dhidden.append(dout)  # (N, H_i): dL/dh_i
                dout = relu_backward(dout, relu_cache)
            dout, grads[f"dense{i}.w"], grads[f"dense{i}.b"] = dense_backward(
                dout, dense_cache, input_grad=i > 1
            )
        grads = {name: grads[name] for name in self.params}
        return (grads, dhidden[::-1]) if return_hidden else grads

    def loss_and_grads(
        self, x: Array, y: Array, *, return_logits: bool = False
    ) -> tuple[Array, dict[str, Array]] | tuple[Array, dict[str, Array], Array]:
        """Mean cross-entropy of a batch and the gradient of every parameter.

        Args:
            x: inputs, shape (N, sizes[0]).
            y: integer labels, shape (N,).
            return_logits: also return the logits (training counts the
                correct answers from them).

        Returns:
            loss: 0-d array on the model's device (``float(loss)`` reads it).
            grads: same keys and shapes as ``params``.
            logits: (N, sizes[-1]), only when ``return_logits``.
        """
        logits, caches = self.forward(x)  # (N, C)
        loss, dlogits = softmax_cross_entropy(logits, y)  # (), (N, C)
        grads = self.backward(dlogits, caches)
        return (loss, grads, logits) if return_logits else (loss, grads)

    def predict_proba(self, x: Array, batch_size: int = 4096) -> Array:
        """Class probabilities, computed in chunks to bound memory.

        Args:
            x: inputs, shape (N, sizes[0]).
            batch_size: rows per chunk.

        Returns:
            probabilities, shape (N, sizes[-1]).
        """
        xp = xp_of(x)
        chunks = [
            softmax(self.forward(x[i : i + batch_size])[0])
            for i in range(0, len(x), batch_size)
        ]
        return (
            xp.concatenate(chunks)
            if chunks
            else xp.zeros((0, self.sizes[-1]), self.dtype)
        )

    def predict(self, x: Array) -> Array:
        """Most probable class of each row, shape (N,)."""
        return self.predict_proba(x).argmax(axis=1)


def _layer_shapes(sizes: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every parameter of an MLP of these widths, in order."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        shapes[f"dense{i}.w"] = (fan_in, fan_out)
        shapes[f"dense{i}.b"] = (fan_out,)
    return shapes
