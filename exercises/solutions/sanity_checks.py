"""Solution of lecture 10, exercise 1: the numbers of training diagnostics."""

from __future__ import annotations

import math

import numpy as np


def update_ratios(
    before: dict[str, np.ndarray], after: dict[str, np.ndarray]
) -> dict[str, float]:
    """``||after - before|| / ||before||`` for every parameter (0 if nothing moved)."""
    ratios = {}
    for name, old in before.items():
        moved = float(np.linalg.norm(after[name] - old))
        size = float(np.linalg.norm(old))
        ratios[name] = moved / size if size else (0.0 if moved == 0 else math.inf)
    return ratios


def dead_fraction(hidden: np.ndarray) -> float:
    """The share of columns of ``hidden`` (N, H) that are 0 in every row."""
    return float(1.0 - (hidden > 0).any(axis=0).mean())


def he_std(fan_in: int) -> float:
    """``sqrt(2 / fan_in)``: a ReLU layer's variance factor ``n sigma^2 / 2`` is 1."""
    return math.sqrt(2.0 / fan_in)


def glorot_limit(fan_in: int, fan_out: int) -> float:
    """``sqrt(6 / (fan_in + fan_out))``: then ``L**2 / 3 = 2 / (fan_in + fan_out)``."""
    return math.sqrt(6.0 / (fan_in + fan_out))
