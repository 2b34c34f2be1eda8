"""Solution of lecture 9, exercise 1: count the floating-point work of training."""

from __future__ import annotations


def step_flops(sizes: list[int], batch_size: int) -> int:
    """FLOPs of the matrix products of one training step (forward and backward).

    Args:
        sizes: layer widths, e.g. [784, 128, 10].
        batch_size: N.

    Returns:
        the count.
    """
    total = 0
    for k, (d, h) in enumerate(zip(sizes[:-1], sizes[1:])):
        products = 3 if k > 0 else 2  # forward, dW, and dx except in layer 1
        total += products * 2 * batch_size * d * h
    return total


def epoch_flops(sizes: list[int], n: int, batch_size: int) -> int:
    """FLOPs of one epoch over n examples.

    Args:
        sizes: layer widths.
        n: examples in the epoch.
        batch_size: N.

    Returns:
        the count.
    """
    full, last = divmod(n, batch_size)
    return full * step_flops(sizes, batch_size) + step_flops(sizes, last)
