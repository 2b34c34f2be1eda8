"""Checks of lecture 2's exercise: the forward pass of an MLP of any depth."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from backprop.model import MLP
from exercises.checks.core import Check, array_of, expect, parts
from exercises.checks.mistakes import expect_close

SIZES = ([6, 3], [6, 5, 3], [6, 4, 4, 3])


def _cases() -> list[tuple[MLP, np.ndarray]]:
    """A float64 MLP with non-zero biases and 7 inputs, for each depth."""
    rng = np.random.default_rng(1)
    cases = []
    for sizes in SIZES:
        model = MLP(sizes, seed=2, dtype="float64")
        for name in model.params:
            if name.endswith(".b"):
                model.params[name] = rng.normal(0, 0.5, model.params[name].shape)
        x = rng.normal(size=(7, sizes[0]))  # (7, D)
        cases.append((model, x))
    return cases


def matches_run(mod: ModuleType) -> list[Any]:
    """mlp_forward of each case."""
    return [mod.mlp_forward(x, model.params) for model, x in _cases()]


def matches_judge(results: Any) -> str:
    """mlp_forward equals MLP.forward for 1, 2 and 3 dense layers."""
    cases = _cases()
    for (model, x), got in zip(cases, parts(results, len(cases), "the results")):
        want, _ = model.forward(x)  # (7, C)
        expect_close(
            got,
            want,
            f"sizes {model.sizes}: the logits",
            rtol=1e-12,
            atol=1e-12,
            hint="is there a ReLU after every layer but the last, and none after it?",
        )
    return "sizes [6, 3], [6, 5, 3], [6, 4, 4, 3]"


NO_RELU = {"dense1.w": -np.eye(3), "dense1.b": np.zeros(3)}


def no_relu_run(mod: ModuleType) -> Any:
    """mlp_forward of a one-layer network whose logits are all negative."""
    return mod.mlp_forward(np.ones((2, 3)), {k: v.copy() for k, v in NO_RELU.items()})


def no_relu_judge(value: Any) -> None:
    """mlp_forward leaves negative logits alone (no ReLU after the last layer)."""
    got = array_of(value, "mlp_forward's result")
    expect(got.shape == (2, 3), f"shape {got.shape}, expected (2, 3)")
    expect(bool(np.all(got < 0)), "the last layer's output was clipped at 0")


CHECKS = (
    Check("mlp_forward equals MLP.forward", matches_run, matches_judge),
    Check("no ReLU after the last layer", no_relu_run, no_relu_judge),
)
