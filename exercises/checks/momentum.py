"""Checks of lecture 6's first exercise: SGD with momentum."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from backprop.optim import SGD
from exercises.checks.core import Check, dict_of, expect, number_of
from exercises.checks.mistakes import expect_close

LR, BETA = 0.1, 0.9


def _inputs() -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """Two parameters and the gradients of three steps."""
    rng = np.random.default_rng(8)
    params = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    grads = [{k: rng.normal(size=v.shape) for k, v in params.items()} for _ in "abc"]
    return params, grads


def reference(params, grads_list, lr, beta):
    """Heavy-ball momentum written out: v <- beta v + g, p <- p - lr v."""
    p = {k: v.copy() for k, v in params.items()}
    vel = {k: np.zeros_like(v) for k, v in params.items()}
    for grads in grads_list:
        for k in p:
            vel[k] = beta * vel[k] + grads[k]
            p[k] = p[k] - lr * vel[k]
    return p


def steps_run(mod: ModuleType) -> dict[str, Any]:
    """Three steps: the parameters after the first and the third, and in place?"""
    params, grads_list = _inputs()
    opt = mod.Momentum(lr=LR, beta=BETA)
    moved = {k: v.copy() for k, v in params.items()}
    arrays = dict(moved)
    first = None
    for grads in grads_list:
        opt.step(moved, {k: g.copy() for k, g in grads.items()})
        if first is None:
            first = {k: v.copy() for k, v in moved.items()}
    in_place = {k: moved[k] is arrays[k] for k in params}
    return {"first": first, "last": dict(moved), "in_place": in_place}


def steps_judge(value: Any) -> str:
    """Three steps equal v <- beta v + g, p <- p - lr v, in place."""
    params, grads_list = _inputs()
    got = dict_of(value, "the results")
    first = dict_of(got.get("first"), "the parameters after step 1")
    last = dict_of(got.get("last"), "the parameters after step 3")
    in_place = dict_of(got.get("in_place"), "in place")
    for k in params:
        expect_close(
            first.get(k),
            params[k] - LR * grads_list[0][k],
            f"step 1 of {k}",
            rtol=1e-12,
            hint="step 1 should be p - lr g (v starts at zeros)",
        )
    want = reference(params, grads_list, LR, BETA)
    for k in params:
        expect(in_place.get(k) is True, f"{k} was replaced, not updated in place")
        expect_close(
            last.get(k),
            want[k],
            f"{k} after 3 steps",
            rtol=1e-12,
            hint="does the velocity carry over from one step to the next?",
        )
    return "3 steps, 2 parameters"


def _valley(opt: Any) -> float:
    """F = sum(scales * w^2) / 2 after 100 steps of ``opt`` from (1, 1)."""
    p = {"w": np.array([1.0, 1.0])}
    scales = np.array([1.0, 0.01])  # curvatures
    for _ in range(100):
        opt.step(p, {"w": scales * p["w"]})
    return float((scales * p["w"] ** 2).sum() / 2)


def valley_run(mod: ModuleType) -> Any:
    """Where the student's momentum gets on a long narrow valley."""
    return _valley(mod.Momentum(lr=0.5, beta=0.9))


def valley_judge(value: Any) -> str:
    """Momentum gets lower than plain SGD in 100 steps."""
    mom = number_of(value, "f after 100 steps")
    sgd = _valley(SGD(lr=0.5))
    expect(mom < sgd, f"momentum reached f = {mom:.3g}, SGD {sgd:.3g}")
    return f"f after 100 steps: SGD {sgd:.2e}, momentum {mom:.2e}"


CHECKS = (
    Check("three steps match the formula, in place", steps_run, steps_judge),
    Check("faster than SGD on a narrow valley", valley_run, valley_judge),
)
