"""Solution of lecture 8, exercise 1: mini-batches drawn without replacement."""

from __future__ import annotations

import numpy as np


def minibatch_indices(
    n: int, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """The example indices of each batch of one epoch.

    Args:
        n: number of examples.
        batch_size: examples per batch.
        rng: the run's generator.

    Returns:
        ceil(n / batch_size) integer arrays, together a permutation of range(n).
    """
    order = rng.permutation(n)  # (n,)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]
