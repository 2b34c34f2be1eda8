"""Checks of lecture 3's exercise: a stable log-sum-exp and cross-entropy."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from backprop import gradcheck
from backprop.losses import softmax_cross_entropy
from exercises.checks.core import Check, Wrong, dict_of, expect, number_of
from exercises.checks.mistakes import checked_array, expect_close, expect_same_gradient

LARGE = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]])


def _z() -> np.ndarray:
    """Moderate logits, (6, 10)."""
    return np.random.default_rng(3).normal(0, 3, size=(6, 10))


def values_run(mod: ModuleType) -> Any:
    """Logsumexp of moderate logits."""
    return mod.logsumexp(_z())


def values_judge(value: Any) -> None:
    """One value per row, equal to log(sum(exp(z)))."""
    z = _z()
    expect_close(value, np.log(np.exp(z).sum(axis=1)), "logsumexp(z)", rtol=1e-12)


def _shifted() -> np.ndarray:
    """Logits for the shift test, (3, 5)."""
    return np.random.default_rng(4).normal(size=(3, 5))


def stable_run(mod: ModuleType) -> dict[str, Any]:
    """Logsumexp of logits of +-1e4 with overflow raising, and of z and z + 100."""
    with np.errstate(over="raise", invalid="raise"):
        try:
            large = mod.logsumexp(LARGE.copy())
        except FloatingPointError as exc:
            return {"overflow": str(exc)}
    z = _shifted()
    return {
        "large": large,
        "z": mod.logsumexp(z.copy()),
        "z+100": mod.logsumexp(z + 100),
    }


def stable_judge(value: Any) -> None:
    """Finite and right for logits of +-1e4, and shift-invariant."""
    got = dict_of(value, "the results")
    if "overflow" in got:
        raise Wrong(f"{got['overflow']} on logits of 1e4: subtract the row maximum")
    expect(set(got) == {"large", "z", "z+100"}, "the results are incomplete")
    want = np.array([1e4, -1e4 + math.log(3)])
    expect_close(got["large"], want, "logsumexp of logits of +-1e4", rtol=1e-12)
    base = checked_array(got["z"], np.zeros(3), "logsumexp(z)")
    expect_close(
        got["z+100"],
        base + 100.0,
        "logsumexp(z + 100)",
        rtol=1e-9,
        hint="logsumexp(z + c) should be logsumexp(z) + c",
    )


def _ce_inputs() -> tuple[np.ndarray, np.ndarray]:
    """Logits (4, 5) and labels (4,)."""
    rng = np.random.default_rng(5)
    return rng.normal(0, 2, size=(4, 5)), rng.integers(0, 5, size=4)


def ce_run(mod: ModuleType) -> dict[str, Any]:
    """cross_entropy, and the central differences of the student's cross_entropy."""
    logits, labels = _ce_inputs()
    loss = mod.cross_entropy(logits.copy(), labels)
    numerical = gradcheck.numerical_gradient(
        lambda z: mod.cross_entropy(z, labels), logits.copy()
    )
    return {"loss": loss, "numerical": numerical}


def ce_judge(value: Any) -> str:
    """cross_entropy is the engine's loss: its numerical gradient is (p - y) / N."""
    logits, labels = _ce_inputs()
    want, dlogits = softmax_cross_entropy(logits, labels)
    got = dict_of(value, "the results")
    loss = number_of(got.get("loss"), "cross_entropy's result")
    n = len(labels)
    if math.isclose(loss, n * float(want), rel_tol=1e-9):
        raise Wrong(
            f"cross_entropy {loss:.6f} is N = {n} times the expected "
            f"{float(want):.6f}: the mean over the batch, not the sum"
        )
    expect(
        math.isclose(loss, float(want), rel_tol=1e-12),
        f"cross_entropy {loss:.6f}, expected {float(want):.6f}",
    )
    policy = gradcheck.policy_for(np.float64)
    floor = gradcheck.noise_floor(np.float64, abs(loss), policy.step, policy.rtol)
    error = expect_same_gradient(
        got.get("numerical"),
        dlogits,
        "logits",
        batch=n,
        labels=("numerical", "(p - y) / N"),
        tolerance=policy.rtol,
        floor=floor,
    )
    return f"max relative error {error:.1e}"


CHECKS = (
    Check("logsumexp values", values_run, values_judge),
    Check("logsumexp is stable and shift-invariant", stable_run, stable_judge),
    Check("cross_entropy and its gradient check", ce_run, ce_judge),
)
