"""Lecture 5, exercise 1: a numerical gradient and a relative error of your own.

Grade with ``python -m exercises.grade numerical_gradient``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Central-difference gradient ``(f(x + h e_i) - f(x - h e_i)) / 2h``.

    Perturb one entry of ``x`` at a time, in place, and put it back.

    Args:
        f: a scalar function of ``x``.
        x: float64 array, any shape; unchanged on return.
        h: the step.

    Returns:
        float64 array, shape of ``x``.
    """
    # TODO: iterate with np.ndindex(x.shape); restore x[i] after each entry
    raise NotImplementedError("numerical_gradient is not written yet")


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """The largest entrywise relative error ``|a - b| / max(|a|, |b|)``.

    Two zeros have error 0 (not NaN).

    Args:
        a: an array.
        b: an array of the same shape.

    Returns:
        the maximum over entries, a float.
    """
    # TODO
    raise NotImplementedError("rel_error is not written yet")
