"""Solution of lecture 4, exercise 1: the leaky ReLU, forward and backward."""

from __future__ import annotations

from typing import Any

import numpy as np


def leaky_relu_forward(x: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, Any]:
    """Leaky ReLU: ``x`` where ``x > 0``, ``alpha * x`` elsewhere.

    Args:
        x: inputs, any shape.
        alpha: the slope for negative inputs.

    Returns:
        out: same shape and dtype as ``x``.
        cache: ``(x > 0, alpha)``.
    """
    positive = x > 0  # same shape as x
    out = np.where(positive, x, alpha * x).astype(x.dtype, copy=False)
    return out, (positive, alpha)


def leaky_relu_backward(dout: np.ndarray, cache: Any) -> np.ndarray:
    """Gradient of the leaky ReLU: ``dout`` where ``x > 0``, ``alpha * dout`` elsewhere.

    Args:
        dout: gradient of the loss with respect to ``out``.
        cache: from ``leaky_relu_forward``.

    Returns:
        dx: same shape and dtype as ``dout``.
    """
    positive, alpha = cache
    return np.where(positive, dout, alpha * dout).astype(dout.dtype, copy=False)
