"""A multi-layer perceptron: dense + ReLU layers, then a dense layer to logits.

The softmax lives in the loss (``losses.softmax_cross_entropy``), so the model
outputs logits; ``predict_proba`` applies the softmax for users.

``MLP.forward``, ``MLP.backward`` and ``MLP.loss_and_grads`` are the reference:
read them to learn backprop. ``Workspace`` is the fast path that training
uses: the same operations in the same order, written into arrays allocated
once instead of new ones at every step.
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

Array = Any  # a numpy.ndarray or cupy.ndarray
DTYPES = ("float32", "float64")


class MLP:
    """Dense layers of the given sizes, ReLU between them.

    Parameters are named ``dense1.w`` (sizes[0], sizes[1]), ``dense1.b``
    (sizes[1],), ``dense2.w``, ... and live in ``self.params``, an ordered dict
    that optimizers update in place.

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
        self.params: dict[str, Array] = {}
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            w = INITIALIZERS[init](rng, fan_in, fan_out).astype(dtype)  # (D, H)
            self.params[f"dense{i}.w"] = to_device(w, xp)
            self.params[f"dense{i}.b"] = xp.zeros(fan_out, dtype=dtype)  # (H,)

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
        model.params = {
            name: to_device(params[name], xp).astype(dtype, copy=True)
            for name in expected
        }
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

    def backward(self, dlogits: Array, caches: list[tuple]) -> dict[str, Array]:
        """Gradients of every parameter, from the gradient of the logits.

        Args:
            dlogits: gradient of the loss with respect to the logits, (N, C).
            caches: from ``forward``.

        Returns:
            grads: same keys and shapes as ``params``.
        """
        grads = {}
        dout = dlogits
        for i in range(self.num_layers, 0, -1):
            dense_cache, relu_cache = caches[i - 1]
            if relu_cache is not None:
                dout = relu_backward(dout, relu_cache)
            dout, grads[f"dense{i}.w"], grads[f"dense{i}.b"] = dense_backward(
                dout, dense_cache, input_grad=i > 1
            )
        return {name: grads[name] for name in self.params}

    def loss_and_grads(self, x: Array, y: Array) -> tuple[Array, dict[str, Array]]:
        """Mean cross-entropy of a batch and the gradient of every parameter.

        Args:
            x: inputs, shape (N, sizes[0]).
            y: integer labels, shape (N,).

        Returns:
            loss: 0-d array on the model's device (``float(loss)`` reads it).
            grads: same keys and shapes as ``params``.
        """
        logits, caches = self.forward(x)
        loss, dlogits = softmax_cross_entropy(logits, y)
        return loss, self.backward(dlogits, caches)

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


class Workspace:
    """Preallocated arrays for fast training steps of an ``MLP``: the fast path.

    ``MLP.loss_and_grads`` allocates new arrays for every intermediate result at
    every call, the clearest way to write backprop. Training repeats one step
    thousands of times on batches of one size, so this class allocates the
    arrays of a step once and ``loss_and_grads`` writes into them (``out=``
    arguments and in-place operators). It performs the operations of
    ``layers.dense_forward``, ``relu_forward``, ``losses.softmax_cross_entropy``,
    ``relu_backward`` and ``dense_backward`` in the same order, so its results
    are those of the reference (the tests check it). Differences: the ReLU runs
    in place on the dense output, and its gradient multiplies by the mask
    ``out > 0`` instead of calling ``where`` (which has no ``out=`` in NumPy).

    A smaller batch (the last of an epoch) uses the leading rows of every
    buffer. Each call overwrites the buffers: copy what you want to keep. The
    parameters are read from ``model.params`` at each call, so the optimizer's
    in-place updates are seen.

    Args:
        model: the model to train.
        batch_size: the largest batch the workspace holds (B).
    """

    def __init__(self, model: MLP, batch_size: int) -> None:
        w1 = model.params["dense1.w"]
        xp = xp_of(w1)  # found once here, not at every step
        dtype = w1.dtype
        sizes = model.sizes
        self.model, self.batch_size, self.xp = model, batch_size, xp
        # outs[i]: output of layer i + 1 after its ReLU, (B, H); the last is logits
        self.outs = [xp.empty((batch_size, h), dtype) for h in sizes[1:]]
        # douts[i]: gradient of the loss with respect to outs[i], (B, H)
        self.douts = [xp.empty((batch_size, h), dtype) for h in sizes[1:]]
        # masks[i]: where the ReLU of hidden layer i + 1 passed its input, (B, H)
        self.masks = [xp.empty((batch_size, h), bool) for h in sizes[1:-1]]
        self.log_probs = xp.empty((batch_size, sizes[-1]), dtype)  # (B, C)
        self.row_stat = xp.empty((batch_size, 1), dtype)  # (B, 1), max then log-sum
        self.rows = xp.arange(batch_size)  # (B,), row indices for picking labels
        self.grads = {name: xp.empty_like(p) for name, p in model.params.items()}

    def gather(self, x: Array, y: Array, batch: Array) -> tuple[Array, Array]:
        """The rows ``batch`` of a dataset: the step's batch.

        Plain fancy indexing, ``x[batch]``, is the fastest gather that NumPy
        and CuPy share: ``take(..., out=buffer)`` in NumPy's default mode
        copies through a temporary array to be safe from bad indices, and was
        slower in ``benchmarks/`` measurements. So the batch is the one array
        of a step that is not reused.

        Args:
            x: all inputs, (N, D), on the model's device.
            y: all labels, (N,).
            batch: row indices, (b,) with b <= B.

        Returns:
            xb: the rows of ``x``, (b, D).
            yb: their labels, (b,).
        """
        return x[batch], y[batch]

    def loss_and_grads(self, x: Array, y: Array) -> tuple[Array, Array, dict]:
        """``MLP.loss_and_grads``, written into the workspace; also the logits.

        Args:
            x: inputs, (b, D) with b <= B (e.g. from ``gather``).
            y: integer labels, (b,).

        Returns:
            loss: 0-d array, the mean cross-entropy.
            logits: (b, C), a view of a buffer (for counting correct answers).
            grads: name -> gradient, the workspace's arrays, same keys as
                ``params``; overwritten by the next call.
        """
        logits = self.forward(x)  # (b, C)
        loss = self.loss(logits, y)
        return loss, logits, self.backward(x)

    def forward(self, x: Array) -> Array:
        """``MLP.forward`` into the workspace: every layer's output is kept.

        Args:
            x: inputs, (b, D) with b <= B.

        Returns:
            logits: (b, C), a view of ``outs[-1]``.
        """
        xp, params, n = self.xp, self.model.params, len(x)
        num_layers = self.model.num_layers
        h = x
        for i in range(1, num_layers + 1):  # out_i = relu(out_{i-1} @ w_i + b_i)
            out = self.outs[i - 1][:n]  # (n, H)
            xp.matmul(h, params[f"dense{i}.w"], out=out)
            out += params[f"dense{i}.b"]
            if i < num_layers:  # no ReLU on the logits
                xp.maximum(out, 0, out=out)  # the ReLU, in place
            h = out
        return h

    def loss(self, logits: Array, y: Array) -> Array:
        """``losses.softmax_cross_entropy`` into the workspace.

        The gradient of the loss with respect to the logits,
        ``(softmax(logits) - onehot) / n``, goes into ``douts[-1]``.

        Args:
            logits: (n, C), from ``forward``.
            y: integer labels, (n,).

        Returns:
            loss: 0-d array, the mean cross-entropy.
        """
        xp, n = self.xp, len(logits)
        dlogits = self.douts[-1][:n]  # (n, C)
        stat = self.row_stat[:n]  # (n, 1)
        log_probs = self.log_probs[:n]  # (n, C)
        rows = self.rows[:n]  # (n,)
        xp.max(logits, axis=-1, keepdims=True, out=stat)  # row maxima
        xp.subtract(logits, stat, out=log_probs)  # shifted logits, max 0
        xp.exp(log_probs, out=dlogits)
        xp.sum(dlogits, axis=-1, keepdims=True, out=stat)
        xp.log(stat, out=stat)  # log-sum-exp of the shifted logits
        log_probs -= stat  # log-softmax
        loss = -log_probs[rows, y].mean()  # ()
        xp.exp(log_probs, out=dlogits)  # the probabilities
        dlogits[rows, y] -= 1
        dlogits /= n
        return loss

    def backward(self, x: Array) -> dict[str, Array]:
        """``MLP.backward`` into the workspace, after ``forward`` and ``loss``.

        Args:
            x: the inputs given to ``forward``, (b, D).

        Returns:
            grads: name -> gradient, the workspace's arrays.
        """
        xp, params, n = self.xp, self.model.params, len(x)
        num_layers = self.model.num_layers
        for i in range(num_layers, 0, -1):  # from the logits down to layer 1
            dout = self.douts[i - 1][:n]  # (n, H), gradient of layer i's output
            if i < num_layers:  # through the ReLU: keep dout where out > 0
                mask = self.masks[i - 1][:n]  # (n, H)
                xp.greater(self.outs[i - 1][:n], 0, out=mask)
                dout *= mask
            h_in = x if i == 1 else self.outs[i - 2][:n]  # (n, D), layer i's input
            xp.matmul(h_in.T, dout, out=self.grads[f"dense{i}.w"])  # (D, H)
            xp.sum(dout, axis=0, out=self.grads[f"dense{i}.b"])  # (H,)
            if i > 1:  # the first layer needs no gradient of the data
                xp.matmul(dout, params[f"dense{i}.w"].T, out=self.douts[i - 2][:n])
        return self.grads
