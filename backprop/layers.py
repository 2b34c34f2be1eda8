"""Layers as pairs of pure functions: ``forward -> (out, cache)``, ``backward``.

Shapes: N is the batch size, D the number of inputs of a layer, H its number
of outputs. Weights are stored (D, H), like a Keras kernel, so ``out = x @ w + b``.
Each backward function takes the gradient of the loss with respect to the
layer's output (``dout``) and the cache its forward pass returned.
"""

from __future__ import annotations

from typing import Any

from backprop.device import xp_of

Array = Any  # a numpy.ndarray or cupy.ndarray


def dense_forward(x: Array, w: Array, b: Array) -> tuple[Array, tuple[Array, Array]]:
    """Affine layer: ``out = x @ w + b``.

    Args:
        x: inputs, shape (N, D).
        w: weights, shape (D, H).
        b: biases, shape (H,).

    Returns:
        out: shape (N, H).
        cache: ``(x, w)``, what the backward pass needs.
    """
    out = x @ w + b  # (N, H)
    return out, (x, w)


def dense_backward(
    dout: Array, cache: tuple[Array, Array], *, input_grad: bool = True
) -> tuple[Array | None, Array, Array]:
    """Gradients of the affine layer.

    Args:
        dout: gradient of the loss with respect to ``out``, shape (N, H).
        cache: ``(x, w)`` from ``dense_forward``; x (N, D), w (D, H).
        input_grad: compute ``dx``; the first layer of a network skips it,
            since nothing upstream needs the gradient of the data.

    Returns:
        dx: shape (N, D), or None when ``input_grad`` is False.
        dw: shape (D, H).
        db: shape (H,).
    """
    x, w = cache
    dw = x.T @ dout  # (D, H)
    db = dout.sum(axis=0)  # (H,)
    dx = dout @ w.T if input_grad else None  # (N, D)
    return dx, dw, db


def relu_forward(x: Array) -> tuple[Array, Array]:
    """Rectified linear unit: ``out = max(x, 0)``.

    Args:
        x: inputs, any shape.

    Returns:
        out: same shape as ``x``.
        cache: ``out`` itself; ``out > 0`` is the mask the gradient passes.
    """
    xp = xp_of(x)
    out = xp.maximum(x, 0)  # same shape as x
    return out, out


def relu_backward(dout: Array, cache: Array) -> Array:
    """Gradient of ReLU: ``dout`` where the input was positive, else 0.

    At exactly 0 the derivative is taken as 0, as TensorFlow does.

    Args:
        dout: gradient of the loss with respect to ``out``, same shape as ``out``.
        cache: ``out`` from ``relu_forward``.

    Returns:
        dx: same shape as ``dout``.
    """
    xp = xp_of(dout)
    out = cache
    return xp.where(out > 0, dout, 0).astype(dout.dtype, copy=False)  # like dout


# Convolution and max-pooling live in their own module (lecture 12).
from backprop.conv import (  # noqa: E402
    conv2d_backward,
    conv2d_forward,
    maxpool_backward,
    maxpool_forward,
)

__all__ = [
    "conv2d_backward",
    "conv2d_forward",
    "dense_backward",
    "dense_forward",
    "maxpool_backward",
    "maxpool_forward",
    "relu_backward",
    "relu_forward",
]
