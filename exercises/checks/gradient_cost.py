"""Checks of lecture 4's fourth exercise: what a gradient costs."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from exercises.checks.core import Check, expect, parts, plain

PRODUCTS = [([784, 128, 10], 256), ([10, 5], 4), ([8, 6, 4, 2], 3)]
NUMERICAL = [([784, 128, 10], 203540), ([10, 5], 110), ([3, 2, 2], 28)]


def products_run(mod: ModuleType) -> list[Any]:
    """forward_flops and backward_flops of three networks."""
    return [
        [mod.forward_flops(list(s), n), mod.backward_flops(list(s), n)]
        for s, n in PRODUCTS
    ]


def products_judge(results: Any) -> str:
    """2 M K P per product; dW everywhere, dX everywhere but layer 1."""
    for (sizes, n), result in zip(PRODUCTS, parts(results, 3, "the results")):
        got_forward, got_backward = (plain(v) for v in parts(result, 2, "a result"))
        pairs = list(zip(sizes[:-1], sizes[1:]))
        forward = sum(2 * n * d * h for d, h in pairs)
        backward = sum(4 * n * d * h for d, h in pairs) - 2 * n * sizes[0] * sizes[1]
        expect(
            got_forward == forward,
            f"forward_flops({sizes}, {n}) = {got_forward}, not {forward}",
        )
        expect(
            got_backward == backward,
            f"backward_flops({sizes}, {n}) = {got_backward}, expected {backward} "
            "(dW everywhere, dX everywhere but layer 1)",
        )
    return "3 networks"


def numerical_run(mod: ModuleType) -> list[Any]:
    """numerical_forwards of three networks."""
    return [mod.numerical_forwards(list(sizes)) for sizes, _ in NUMERICAL]


def numerical_judge(results: Any) -> str:
    """Two forward passes per weight and bias."""
    for (sizes, want), got in zip(NUMERICAL, parts(results, 3, "the results")):
        expect(
            plain(got) == want,
            f"numerical_forwards({sizes}) = {plain(got)}, expected {want}",
        )
    return "203,540 for the paper's network"


CHECKS = (
    Check("FLOPs of the forward and backward products", products_run, products_judge),
    Check("forward passes of central differences", numerical_run, numerical_judge),
)
