"""Lecture 8, exercise 1: mini-batches drawn without replacement.

One epoch visits every example exactly once, in a fresh random order: draw a
permutation of ``range(n)`` from the generator, then cut it into consecutive
batches; the last one may be smaller. Drawn this way, your batches are the
very ones ``backprop.loop.train_epoch`` uses for the same generator state.

Grade with ``python -m exercises.grade minibatches``.
"""

from __future__ import annotations

import numpy as np


def minibatch_indices(
    n: int, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """The example indices of each batch of one epoch.

    Args:
        n: number of examples.
        batch_size: examples per batch.
        rng: the run's generator (draw exactly one permutation from it).

    Returns:
        ceil(n / batch_size) integer arrays, together a permutation of range(n).
    """
    # TODO
    raise NotImplementedError("minibatch_indices is not written yet")
