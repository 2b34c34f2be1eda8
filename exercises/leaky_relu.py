"""Lecture 4, exercise 1: the leaky ReLU, forward and backward.

``leaky_relu(x) = x`` where ``x > 0`` and ``alpha * x`` elsewhere. Write both
passes in the style of ``backprop/layers.py``. Take the derivative at exactly
0 to be ``alpha``.

Grade with ``python -m exercises.grade leaky_relu``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def leaky_relu_forward(x: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, Any]:
    """Leaky ReLU.

    Args:
        x: inputs, any shape.
        alpha: the slope for negative inputs.

    Returns:
        out: same shape and dtype as ``x``.
        cache: whatever the backward pass needs.
    """
    # TODO
    raise NotImplementedError("leaky_relu_forward is not written yet")


def leaky_relu_backward(dout: np.ndarray, cache: Any) -> np.ndarray:
    """Gradient of the leaky ReLU.

    Args:
        dout: gradient of the loss with respect to ``out``, shape of ``out``.
        cache: from ``leaky_relu_forward``.

    Returns:
        dx: same shape and dtype as ``dout``.
    """
    # TODO
    raise NotImplementedError("leaky_relu_backward is not written yet")
