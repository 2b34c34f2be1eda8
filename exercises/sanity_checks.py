"""Lecture 10, exercise 1: the numbers of training diagnostics.

Four small functions, each a measurement or a formula of the lecture. Grade with
``python -m exercises.grade sanity_checks``.
"""

from __future__ import annotations

import numpy as np


def update_ratios(
    before: dict[str, np.ndarray], after: dict[str, np.ndarray]
) -> dict[str, float]:
    """The update/weight ratio of every parameter for one step.

    Args:
        before: name -> the parameter before the step (any shape).
        after: name -> the same parameter after it.

    Returns:
        name -> ``||after - before|| / ||before||`` (L2 norms over all entries),
        a float; 0.0 when ``before`` is all zeros and nothing moved.
    """
    # TODO
    raise NotImplementedError("update_ratios is not written yet")


def dead_fraction(hidden: np.ndarray) -> float:
    """The share of a layer's units that are 0 for every example.

    Args:
        hidden: ReLU outputs of one layer for a batch, shape (N, H).

    Returns:
        The number of columns that are 0 in every row, divided by H.
    """
    # TODO
    raise NotImplementedError("dead_fraction is not written yet")


def he_std(fan_in: int) -> float:
    """The standard deviation of He's initialisation for a ReLU layer."""
    # TODO: the variance that keeps Var(a) the same from layer to layer
    raise NotImplementedError("he_std is not written yet")


def glorot_limit(fan_in: int, fan_out: int) -> float:
    """The bound ``L`` of Glorot's uniform initialisation, ``U(-L, L)``.

    Its variance, ``L**2 / 3``, is ``2 / (fan_in + fan_out)``.
    """
    # TODO
    raise NotImplementedError("glorot_limit is not written yet")
