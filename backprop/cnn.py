"""A convolutional network built from the layers: convolutions, pooling, dense.

``CNN`` has ``MLP``'s interface (``params`` as views into ``flat``, ``forward``,
``backward``, ``loss_and_grads``, ``predict_proba``, ``from_params``, ``sizes``),
so ``Adam`` and ``backprop.loop`` use it unchanged. It takes flat (N, 784) rows
and reshapes them to (N, 28, 28, 1) inside. ``layers`` (layer specs) and
``input_shape`` (H, W, C) describe a network:

* ``("conv", kernel, filters, padding, stride)``: a kernel x kernel
  convolution, then ReLU; parameters ``convK.w`` (KH, KW, C, F), ``convK.b``.
* ``("pool", pool, stride)``: max-pooling, no parameters.
* ``("dense", width)``: dense, then ReLU except on the last (logits) layer;
  ``denseK.w`` (D, H), ``denseK.b``. The first flattens the images row-major,
  (N, H, W, C) -> (N, H*W*C), as Keras's ``Flatten``, so weights copy as they are.

``LENET5``, the default, is LeNet-5 (LeCun et al., 1998) with ReLU and max-pooling:
5x5 "same" conv to 6 maps of 28x28, pool to 14x14, 5x5 "valid" conv to 16 maps
of 10x10, pool to 5x5x16 = 400, dense 120, 84, 10: 61,706 parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from backprop.conv import (
    PADDINGS,
    conv2d_backward,
    conv2d_forward,
    maxpool_backward,
    maxpool_forward,
    output_size,
)
from backprop.device import get_xp, to_device, xp_of
from backprop.errors import ConfigError
from backprop.init import INITIALIZERS, truncated_normal
from backprop.layers import dense_backward, dense_forward, relu_backward, relu_forward
from backprop.losses import softmax, softmax_cross_entropy
from backprop.params import flat_buffer

Array = Any  # a numpy.ndarray or cupy.ndarray
Spec = tuple  # ("conv", k, f, padding, stride) | ("pool", p, stride) | ("dense", h)
DTYPES = ("float32", "float64")
LENET5: tuple[Spec, ...] = (
    ("conv", 5, 6, "same", 1),
    ("pool", 2, 2),
    ("conv", 5, 16, "valid", 1),
    ("pool", 2, 2),
    ("dense", 120),
    ("dense", 84),
    ("dense", 10),
)
MNIST_SHAPE = (28, 28, 1)


class CNN:
    """Convolutions (each followed by ReLU) and max-pooling, then dense layers.

    Args:
        layers: layer specs (see the module docstring); ``LENET5`` by default.
        input_shape: (H, W, C) of the images; rows of H*W*C are reshaped.
        seed: seed of the generator that draws the initial weights.
        dtype: ``"float32"`` or ``"float64"``.
        device: ``"cpu"``, ``"gpu"`` or ``"auto"``.
        init: ``"paper"`` (truncated normal, stddev 0.1), ``"he"`` or
            ``"glorot"``, with Keras's fans for kernels: fan_in = KH*KW*C,
            fan_out = KH*KW*F.
        rng: a generator to draw from instead of one made from ``seed``.
    """

    def __init__(
        self,
        layers: Sequence[Sequence] = LENET5,
        *,
        input_shape: Sequence[int] = MNIST_SHAPE,
        seed: int = 0,
        dtype: str = "float32",
        device: str = "cpu",
        init: str = "paper",
        rng: np.random.Generator | None = None,
    ) -> None:
        if dtype not in DTYPES:
            raise ConfigError(
                f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}"
            )
        if init not in INITIALIZERS:
            raise ConfigError(
                f"unknown init {init!r}; choose one of {', '.join(INITIALIZERS)}"
            )
        self.layers = normalise_layers(layers)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.dtype = dtype
        shapes = param_shapes(self.layers, self.input_shape)
        xp = get_xp(device)
        rng = np.random.default_rng(seed) if rng is None else rng
        self.flat, self.params = flat_buffer(shapes, dtype, xp)
        for name, shape in shapes.items():
            if name.endswith(".w"):  # biases stay 0
                w = draw_weights(init, rng, shape).astype(dtype)  # shape
                self.params[name][...] = to_device(w, xp)

    @classmethod
    def from_params(
        cls,
        params: dict[str, Any],
        *,
        layers: Sequence[Sequence] = LENET5,
        input_shape: Sequence[int] = MNIST_SHAPE,
        device: str = "cpu",
    ) -> CNN:
        """Build a model around existing weights (a checkpoint's, or Keras's).

        Args:
            params: ``conv1.w`` (KH, KW, C, F), ``conv1.b`` (F,), ...,
                ``dense1.w`` (D, H), ...; any array type, copied to ``device``.
            layers: the layer specs the weights belong to.
            input_shape: (H, W, C) of the images.
            device: where the model lives.

        Raises:
            ConfigError: the names or shapes do not fit ``layers``.
        """
        layers = normalise_layers(layers)
        input_shape = tuple(int(s) for s in input_shape)
        shapes = param_shapes(layers, input_shape)
        if sorted(params) != sorted(shapes):
            raise ConfigError(
                f"parameters {sorted(params)} are not those of the CNN "
                f"{describe(layers)}: {sorted(shapes)}"
            )
        for name, shape in shapes.items():
            if tuple(params[name].shape) != shape:
                raise ConfigError(
                    f"{name} has shape {tuple(params[name].shape)}; the CNN "
                    f"{describe(layers)} needs {shape}"
                )
        dtype = str(params[next(iter(shapes))].dtype)
        if dtype not in DTYPES or any(str(p.dtype) != dtype for p in params.values()):
            raise ConfigError(
                f"parameters must all be one of {', '.join(DTYPES)}, got "
                f"{sorted({str(p.dtype) for p in params.values()})}"
            )
        model = cls.__new__(cls)
        model.layers, model.input_shape, model.dtype = layers, input_shape, dtype
        xp = get_xp(device)
        model.flat, model.params = flat_buffer(shapes, dtype, xp)
        for name in shapes:
            model.params[name][...] = to_device(params[name], xp)
        return model

    @property
    def spec(self) -> dict[str, Any]:
        """What a checkpoint stores to rebuild the model: JSON-ready lists."""
        return {
            "input_shape": list(self.input_shape),
            "layers": [list(layer) for layer in self.layers],
        }

    @property
    def sizes(self) -> list[int]:
        """Pixels per image, then each dense layer's width, like an MLP's ``sizes``."""
        dense = [int(layer[1]) for layer in self.layers if layer[0] == "dense"]
        return [math.prod(self.input_shape), *dense]

    @property
    def num_classes(self) -> int:
        """Width of the logits."""
        return int(self.layers[-1][1])

    def forward(self, x: Array) -> tuple[Array, list[tuple]]:
        """Logits for a batch, and the caches the backward pass needs.

        Args:
            x: inputs, (N, H*W*C) rows or (N, H, W, C) images.

        Returns:
            logits: (N, classes).
            caches: one per layer: ``("conv", conv_cache, relu_cache)``,
            ``("pool", pool_cache)`` or ``("dense", dense_cache, relu_cache,
            image_shape)``; ``image_shape`` is the shape a dense layer
            flattened, else None.
        """
        out = x.reshape(len(x), *self.input_shape)  # (N, H, W, C)
        caches: list[tuple] = []
        counts = {"conv": 0, "dense": 0}
        for index, layer in enumerate(self.layers):
            kind = layer[0]
            if kind == "pool":
                out, cache = maxpool_forward(out, layer[1], layer[2])  # (N, H', W', C)
                caches.append(("pool", cache))
                continue
            counts[kind] += 1
            w = self.params[f"{kind}{counts[kind]}.w"]
            b = self.params[f"{kind}{counts[kind]}.b"]
            if kind == "conv":
                out, cache = conv2d_forward(out, w, b, layer[4], layer[3])  # (N,H,W,F)
                out, relu_cache = relu_forward(out)  # (N, H', W', F)
                caches.append(("conv", cache, relu_cache))
                continue
            image_shape = out.shape if out.ndim == 4 else None
            out = out.reshape(len(out), -1)  # (N, D)
            out, cache = dense_forward(out, w, b)  # (N, H)
            relu_cache = None
            if index < len(self.layers) - 1:
                out, relu_cache = relu_forward(out)  # (N, H)
            caches.append(("dense", cache, relu_cache, image_shape))
        return out, caches

    def backward(self, dlogits: Array, caches: list[tuple]) -> dict[str, Array]:
        """Gradients of every parameter, from the gradient of the logits.

        Args:
            dlogits: gradient of the loss with respect to the logits, (N, classes).
            caches: from ``forward``.

        Returns:
            grads: same keys and shapes as ``params``.
        """
        grads: dict[str, Array] = {}
        counts = {
            kind: sum(layer[0] == kind for layer in self.layers)
            for kind in ("conv", "dense")
        }
        dout = dlogits
        for index in range(len(self.layers) - 1, -1, -1):
            kind, cache = caches[index][0], caches[index][1]
            if kind == "pool":
                dout = maxpool_backward(dout, cache)  # (N, H, W, C)
                continue
            relu_cache = caches[index][2]
            if relu_cache is not None:
                dout = relu_backward(dout, relu_cache)  # like the layer's output
            name = f"{kind}{counts[kind]}"
            counts[kind] -= 1
            backward = conv2d_backward if kind == "conv" else dense_backward
            dout, grads[f"{name}.w"], grads[f"{name}.b"] = backward(
                dout, cache, input_grad=index > 0
            )
            if kind == "dense" and index > 0 and caches[index][3] is not None:
                dout = dout.reshape(caches[index][3])  # (N, H, W, C)
        return {name: grads[name] for name in self.params}

    def loss_and_grads(
        self, x: Array, y: Array, *, return_logits: bool = False
    ) -> tuple[Array, dict[str, Array]] | tuple[Array, dict[str, Array], Array]:
        """Mean cross-entropy of a batch and the gradient of every parameter.

        Args:
            x: inputs, (N, H*W*C) or (N, H, W, C).
            y: integer labels, (N,).
            return_logits: also return the logits.

        Returns:
            loss: 0-d array on the model's device.
            grads: same keys and shapes as ``params``.
            logits: (N, classes), only when ``return_logits``.
        """
        logits, caches = self.forward(x)  # (N, classes)
        loss, dlogits = softmax_cross_entropy(logits, y)  # (), (N, classes)
        grads = self.backward(dlogits, caches)
        return (loss, grads, logits) if return_logits else (loss, grads)

    def predict_proba(self, x: Array, batch_size: int = 512) -> Array:
        """Class probabilities, computed in chunks to bound memory.

        A chunk of B images holds B*28*28*25 copied pixels in the first
        convolution's columns (40 MB in float32 for B = 512).

        Args:
            x: inputs, (N, H*W*C) or (N, H, W, C).
            batch_size: images per chunk.

        Returns:
            probabilities, (N, classes).
        """
        xp = xp_of(x)
        chunks = [
            softmax(self.forward(x[i : i + batch_size])[0])
            for i in range(0, len(x), batch_size)
        ]
        if not chunks:
            return xp.zeros((0, self.num_classes), self.dtype)
        return xp.concatenate(chunks)

    def predict(self, x: Array) -> Array:
        """Most probable class of each row, shape (N,)."""
        return self.predict_proba(x).argmax(axis=1)


def normalise_layers(layers: Sequence[Sequence]) -> tuple[Spec, ...]:
    """Layer specs as tuples with every field, or a ``ConfigError``.

    ``("conv", k, f)`` gains padding "valid" and stride 1, ``("pool", p)``
    gains stride p. Convolutions and pools come before the dense layers, and
    the last layer is dense (the logits).
    """
    out: list[Spec] = []
    for layer in layers:
        layer = tuple(layer)
        kind = layer[0] if layer else None
        try:
            if kind == "conv" and 3 <= len(layer) <= 5:
                padding = layer[3] if len(layer) > 3 else "valid"
                stride = int(layer[4]) if len(layer) > 4 else 1
                spec = ("conv", int(layer[1]), int(layer[2]), padding, stride)
                ok = padding in PADDINGS and min(spec[1], spec[2], stride) >= 1
            elif kind == "pool" and 2 <= len(layer) <= 3:
                pool = int(layer[1])
                spec = ("pool", pool, int(layer[2]) if len(layer) > 2 else pool)
                ok = min(spec[1], spec[2]) >= 1
            elif kind == "dense" and len(layer) == 2:
                spec, ok = ("dense", int(layer[1])), int(layer[1]) >= 1
            else:
                ok = False
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(
                f"bad layer {layer!r}: use ('conv', kernel, filters, padding, "
                "stride), ('pool', size, stride) or ('dense', width)"
            )
        if out and out[-1][0] == "dense" and kind != "dense":
            raise ConfigError(f"layer {layer!r} comes after a dense layer")
        out.append(spec)
    if not out or out[-1][0] != "dense":
        raise ConfigError("a CNN's last layer must be ('dense', classes)")
    return tuple(out)


def param_shapes(
    layers: Sequence[Spec], input_shape: tuple[int, ...]
) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every parameter, in order; a ConfigError if they do not fit.

    Args:
        layers: normalised layer specs.
        input_shape: (H, W, C).
    """
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ConfigError(f"input_shape must be (H, W, C), got {input_shape}")
    h, w, c = input_shape
    shapes: dict[str, tuple[int, ...]] = {}
    counts = {"conv": 0, "dense": 0}
    width = None  # inputs of the next dense layer, once flattened
    for layer in layers:
        kind, fits = layer[0], layer[0] == "dense" or layer[1] <= min(h, w)
        if not (fits or layer[0] == "conv" and layer[3] == "same"):
            raise ConfigError(f"layer {layer} is larger than its {h}x{w} input")
        if kind == "conv":
            _, k, f, padding, stride = layer
            counts["conv"] += 1
            shapes[f"conv{counts['conv']}.w"] = (k, k, c, f)
            shapes[f"conv{counts['conv']}.b"] = (f,)
            h = output_size(h, k, stride, padding)[0]
            w, c = output_size(w, k, stride, padding)[0], f
        elif kind == "pool":
            h = output_size(h, layer[1], layer[2], "valid")[0]
            w = output_size(w, layer[1], layer[2], "valid")[0]
        else:
            width = h * w * c if width is None else width
            counts["dense"] += 1
            shapes[f"dense{counts['dense']}.w"] = (width, layer[1])
            shapes[f"dense{counts['dense']}.b"] = (layer[1],)
            width = layer[1]
    return shapes


def draw_weights(init: str, rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Initial weights of a dense (D, H) or convolution (KH, KW, C, F) layer.

    A kernel's fans are Keras's: fan_in = KH*KW*C, fan_out = KH*KW*F. The
    values are drawn in row-major order, so a dense layer gets exactly what
    ``MLP`` draws for it.
    """
    receptive = math.prod(shape[:-2])  # KH*KW, or 1 for a dense layer
    fan_in, fan_out = receptive * shape[-2], receptive * shape[-1]
    if init == "glorot":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape)
    if init == "paper":
        return truncated_normal(rng, shape, 0.1)
    return INITIALIZERS[init](rng, fan_in, shape[-1]).reshape(shape)


def describe(layers: Sequence[Spec]) -> str:
    """A short name of the layers, e.g. ``conv5x5x6same-pool2-...-dense10``."""
    parts = []
    for layer in layers:
        if layer[0] == "conv":
            stride = f"s{layer[4]}" if layer[4] != 1 else ""
            parts.append(f"conv{layer[1]}x{layer[1]}x{layer[2]}{layer[3]}{stride}")
        elif layer[0] == "pool":
            stride = f"s{layer[2]}" if layer[2] != layer[1] else ""
            parts.append(f"pool{layer[1]}{stride}")
        else:
            parts.append(f"dense{layer[1]}")
    return "-".join(parts)
