"""Lecture 4, exercise 4: what a gradient costs.

By backpropagation and by finite differences. Count only the matrix products:
a product of an (M, K) and a (K, P) matrix costs ``2 M K P`` FLOPs. ``sizes``
are the layer widths from the inputs to the classes, e.g. ``[784, 128, 10]``,
and ``batch`` is N.

Grade with ``python -m exercises.grade gradient_cost``.
"""

from __future__ import annotations


def forward_flops(sizes: list[int], batch: int) -> int:
    """FLOPs of the forward pass's products, ``X W`` for every layer."""
    # TODO
    raise NotImplementedError("forward_flops is not written yet")


def backward_flops(sizes: list[int], batch: int) -> int:
    """FLOPs of the backward pass's products.

    ``dW`` for every layer, and ``dX`` for every layer but the first (nothing
    needs the gradient of the inputs).
    """
    # TODO
    raise NotImplementedError("backward_flops is not written yet")


def numerical_forwards(sizes: list[int]) -> int:
    """Forward passes central differences need for every parameter's gradient.

    Two per parameter, weights and biases alike.
    """
    # TODO
    raise NotImplementedError("numerical_forwards is not written yet")
