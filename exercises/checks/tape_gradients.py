"""Checks of lecture 7's second exercise: the engine's gradients from a tape."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from backprop.model import MLP
from exercises.checks import engine_gradients
from exercises.checks.core import Check


def _cases() -> list[engine_gradients.Case]:
    """Two networks, with 5 examples each."""
    rng = np.random.default_rng(12)
    cases = []
    for sizes in ([7, 5, 3], [7, 6, 4, 3]):
        x, y = rng.uniform(size=(5, sizes[0])), rng.integers(0, sizes[-1], size=5)
        cases.append((MLP(sizes, seed=13, dtype="float64"), x, y))
    return cases


def tape_run(mod: ModuleType) -> list[Any]:
    """tape_gradients on each case."""
    return engine_gradients.collect(mod.tape_gradients, _cases())


def tape_judge(results: Any) -> str:
    """tape_gradients equals the engine's backward pass within 1e-10 (float64)."""
    return engine_gradients.judge(results, _cases(), "tape")


CHECKS = (Check("tape gradients equal the engine's", tape_run, tape_judge),)
