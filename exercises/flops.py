"""Lecture 9, exercise 1: count the floating-point work of training.

Count only the matrix products (they dominate): a product of an (M, K) and a
(K, P) matrix costs 2 M K P floating-point operations (a multiply and an add
per term). Per dense layer with input width D and output width H, a batch of
N costs ``N x D @ D x H`` forward, and backward ``dW = x.T @ dout`` and
``dx = dout @ W.T``, except that the first layer computes no ``dx``.

Grade with ``python -m exercises.grade flops``.
"""

from __future__ import annotations


def step_flops(sizes: list[int], batch_size: int) -> int:
    """FLOPs of the matrix products of one training step (forward and backward).

    Args:
        sizes: layer widths, e.g. [784, 128, 10].
        batch_size: N.

    Returns:
        the count, an int.
    """
    # TODO
    raise NotImplementedError("step_flops is not written yet")


def epoch_flops(sizes: list[int], n: int, batch_size: int) -> int:
    """FLOPs of one epoch over n examples (the last batch may be smaller).

    Args:
        sizes: layer widths.
        n: examples in the epoch.
        batch_size: N.

    Returns:
        the count, an int.
    """
    # TODO: use step_flops for the full batches and for the last one
    raise NotImplementedError("epoch_flops is not written yet")
