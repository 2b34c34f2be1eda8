"""Checks of lecture 4's third exercise: BP1-BP4 for an MLP of any depth."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from backprop import gradcheck
from exercises.checks import engine_gradients
from exercises.checks.core import Check, Wrong, dict_of, expect, parts
from exercises.checks.mistakes import checked_array, expect_reports


def _cases() -> list[engine_gradients.Case]:
    """Networks of 1 to 4 layers, with 7 examples each."""
    rng = np.random.default_rng(14)
    cases = []
    for sizes in ([6, 3], [6, 5, 3], [6, 5, 4, 3], [6, 5, 4, 4, 3]):
        x, y = rng.uniform(size=(7, 6)), rng.integers(0, 3, size=7)  # (7, 6), (7,)
        cases.append((engine_gradients.model_with_biases(sizes, seed=15), x, y))
    return cases


def engine_run(mod: ModuleType) -> list[Any]:
    """mlp_backward on each case."""
    return engine_gradients.collect(mod.mlp_backward, _cases())


def engine_judge(results: Any) -> str:
    """mlp_backward equals the engine's loss and gradients for 1 to 4 layers."""
    return engine_gradients.judge(results, _cases(), "yours")


def _large_logits() -> tuple[Any, np.ndarray, np.ndarray]:
    """A network whose logits are in the thousands, and its inputs."""
    model = engine_gradients.model_with_biases([4, 3, 3], seed=16)
    model.params["dense2.w"] *= 1000.0
    return model, np.ones((2, 4)), np.array([0, 2])


def stable_run(mod: ModuleType) -> Any:
    """mlp_backward with overflow raising."""
    model, x, y = _large_logits()
    with np.errstate(over="raise", invalid="raise"):
        try:
            return mod.mlp_backward(model.params, x, y)
        except FloatingPointError as exc:
            return {"overflow": str(exc)}


def stable_judge(result: Any) -> None:
    """mlp_backward stays finite for logits in the thousands (a stable softmax)."""
    if isinstance(result, dict) and "overflow" in result:
        raise Wrong(f"{result['overflow']}: subtract each row's maximum logit first")
    engine_gradients.judge_one(result, _large_logits(), "yours", tolerance=1e-9)


def _three_layers() -> tuple[Any, np.ndarray, np.ndarray]:
    """A three-layer network and 4 examples."""
    model = engine_gradients.model_with_biases([5, 4, 4, 3], seed=17)
    rng = np.random.default_rng(18)
    return model, rng.uniform(size=(4, 5)), rng.integers(0, 3, size=4)


def checker_run(mod: ModuleType) -> Any:
    """The gradients of mlp_backward on a three-layer network."""
    model, x, y = _three_layers()
    _, grads = parts(mod.mlp_backward(model.params, x, y), 2, "the result")
    return grads


def checker_judge(value: Any) -> str:
    """The gradient checker, run here on the engine's loss, agrees with them."""
    model, x, y = _three_layers()
    _, want = model.loss_and_grads(x, y)
    grads = dict_of(value, "the gradients")
    missing = sorted(set(want) - set(grads))
    expect(not missing, f"no gradient for {', '.join(missing)}")
    got = {n: checked_array(grads[n], want[n], n, len(x)) for n in want}
    reports = gradcheck.check_model(
        model, x, y, {n: g.astype(np.float64) for n, g in got.items()}
    )
    return expect_reports(reports, got, want, batch=len(x))


CHECKS = (
    Check("equal to the engine for 1 to 4 layers", engine_run, engine_judge),
    Check("stable for large logits", stable_run, stable_judge),
    Check("passes the gradient checker", checker_run, checker_judge),
)
