"""Solution of lecture 5, exercise 1: a numerical gradient and a relative error."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Central-difference gradient ``(f(x + h e_i) - f(x - h e_i)) / 2h``.

    Args:
        f: a scalar function of ``x``.
        x: float64 array, any shape; unchanged on return.
        h: the step.

    Returns:
        float64 array, shape of ``x``.
    """
    grad = np.zeros(x.shape, dtype=np.float64)  # shape of x
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        f_plus = float(f(x))
        x[i] = old - h
        f_minus = float(f(x))
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """The largest entrywise relative error ``|a - b| / max(|a|, |b|)``.

    Args:
        a: an array.
        b: an array of the same shape.

    Returns:
        the maximum over entries; two zeros count as 0.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = np.abs(a - b)  # shape of a
    scale = np.maximum(np.abs(a), np.abs(b))  # shape of a
    with np.errstate(invalid="ignore", divide="ignore"):
        errors = np.where(diff == 0, 0.0, diff / scale)
    return float(errors.max(initial=0.0))
