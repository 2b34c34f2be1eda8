"""Lecture 3, exercise 1: a stable log-sum-exp, and cross-entropy built on it.

Grade with ``python -m exercises.grade logsumexp``.
"""

from __future__ import annotations

import numpy as np


def logsumexp(z: np.ndarray) -> np.ndarray:
    """``log(sum(exp(z)))`` of each row, without overflow.

    Args:
        z: logits, shape (N, C); entries may be as large as +-1e4.

    Returns:
        shape (N,).
    """
    # TODO: subtract each row's maximum before exponentiating, add it back after
    raise NotImplementedError("logsumexp is not written yet")


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of softmax(logits) against integer labels.

    Args:
        logits: shape (N, C).
        labels: integer classes, shape (N,).

    Returns:
        ``-mean(log softmax(logits)[i, labels[i]])`` as a float.
    """
    # TODO: log p[i, label] = z[i, label] - logsumexp(z)[i]
    raise NotImplementedError("cross_entropy is not written yet")
