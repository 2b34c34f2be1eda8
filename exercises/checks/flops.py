"""Checks of lecture 9's exercise: the FLOPs of a training step and an epoch."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from exercises.checks.core import Check, expect, parts, plain

STEPS = {
    ((784, 128, 10), 256): 2 * 256 * (784 * 128 * 2 + 128 * 10 * 3),
    ((10, 5), 4): 2 * 4 * 10 * 5 * 2,
    ((8, 6, 4, 2), 3): 2 * 3 * (8 * 6 * 2 + 6 * 4 * 3 + 4 * 2 * 3),
}


def step_run(mod: ModuleType) -> list[Any]:
    """step_flops of three networks."""
    return [mod.step_flops(list(sizes), n) for sizes, n in STEPS]


def step_judge(results: Any) -> str:
    """2 M K P per product; no dx in the first layer."""
    for ((sizes, n), want), got in zip(STEPS.items(), parts(results, 3, "results")):
        expect(
            plain(got) == want,
            f"step_flops({list(sizes)}, {n}) = {plain(got)}, expected {want}",
        )
    return "3 networks"


def epoch_run(mod: ModuleType) -> Any:
    """epoch_flops of the paper's epoch."""
    return mod.epoch_flops([784, 128, 10], 60000, 256)


def epoch_judge(value: Any) -> str:
    """The smaller last batch counted; the paper's epoch is 24.5 GFLOP."""
    got = plain(value)
    want = 60000 * 2 * (784 * 128 * 2 + 128 * 10 * 3)
    expect(got == want, f"epoch_flops of the paper's epoch = {got}, expected {want}")
    return f"{want / 1e9:.1f} GFLOP an epoch"


CHECKS = (
    Check("FLOPs of one step", step_run, step_judge),
    Check("FLOPs of one epoch", epoch_run, epoch_judge),
)
