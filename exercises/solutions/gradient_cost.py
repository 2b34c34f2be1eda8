"""Solution of lecture 4, exercise 4: what a gradient costs."""

from __future__ import annotations


def forward_flops(sizes: list[int], batch: int) -> int:
    """FLOPs of the forward pass's products, ``X W`` for every layer."""
    return sum(2 * batch * d * h for d, h in zip(sizes[:-1], sizes[1:]))


def backward_flops(sizes: list[int], batch: int) -> int:
    """FLOPs of ``dW`` for every layer and ``dX`` for all but the first."""
    return 2 * forward_flops(sizes, batch) - 2 * batch * sizes[0] * sizes[1]


def numerical_forwards(sizes: list[int]) -> int:
    """Two forward passes per parameter (weights and biases)."""
    return 2 * sum(d * h + h for d, h in zip(sizes[:-1], sizes[1:]))
