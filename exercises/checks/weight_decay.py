"""Checks of lecture 6's second exercise: an L2 penalty and its gradient."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from backprop import gradcheck
from backprop.model import MLP
from exercises.checks.core import Check, Wrong, dict_of, expect, number_of, parts
from exercises.checks.mistakes import checked_array, expect_reports

LAM, TOTAL_LAM = 0.1, 0.05


def _penalty_model() -> MLP:
    """A small network whose first bias is not zero."""
    model = MLP([5, 4, 3], seed=9, dtype="float64")
    model.params["dense1.b"] += 0.3
    return model


def penalty(params: dict[str, np.ndarray], lam: float) -> float:
    """Lam / 2 times the sum of the squared weights (biases are not decayed)."""
    return sum(
        0.5 * lam * float((p**2).sum()) for n, p in params.items() if n.endswith(".w")
    )


def penalty_run(mod: ModuleType) -> Any:
    """l2_penalty of the model's parameters."""
    params = {k: v.copy() for k, v in _penalty_model().params.items()}
    return mod.l2_penalty(params, LAM)


def _gradients(value: Any, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The student's gradients, one per parameter, of its shape."""
    grads = dict_of(value, "the gradients")
    missing = sorted(set(params) - set(grads))
    if missing and all(n.endswith(".b") for n in missing):
        raise Wrong(
            f"no gradient for {', '.join(missing)}: the biases are not decayed, "
            "but their gradients must be there (zeros)"
        )
    expect(not missing, f"no gradient for {', '.join(missing)}")
    return {
        n: checked_array(grads[n], p, n).astype(np.float64) for n, p in params.items()
    }


def penalty_judge(value: Any) -> str:
    """lam/2 sum w^2 over weights only; its gradient passes the checker."""
    model = _penalty_model()
    value_got, grads_value = parts(value, 2, "l2_penalty's result")
    got = number_of(value_got, "the penalty")
    want = penalty(model.params, LAM)
    with_biases = want + sum(
        0.5 * LAM * float((p**2).sum()) for n, p in model.params.items() if ".b" in n
    )
    if math.isclose(got, with_biases, rel_tol=1e-12):
        raise Wrong(f"penalty {got:.6g} includes the biases; decay the weights only")
    expect(
        math.isclose(got, want, rel_tol=1e-12),
        f"penalty {got:.6g}, expected {want:.6g} (lam / 2 times the sum of w^2)",
    )
    grads = _gradients(grads_value, model.params)
    want_grads = {
        n: LAM * p if n.endswith(".w") else np.zeros_like(p)
        for n, p in model.params.items()
    }
    reports = [
        gradcheck.check_gradient(
            lambda _: penalty(model.params, LAM), p, grads[name], name=name
        )
        for name, p in model.params.items()
    ]
    return expect_reports(reports, grads, want_grads)


def _total_inputs() -> tuple[MLP, np.ndarray, np.ndarray]:
    """A network and 4 examples."""
    model = MLP([6, 5, 3], seed=10, dtype="float64")
    rng = np.random.default_rng(11)
    return model, rng.uniform(size=(4, 6)), rng.integers(0, 3, size=4)


def total_run(mod: ModuleType) -> Any:
    """loss_and_grads_with_decay of the network."""
    model, x, y = _total_inputs()
    return mod.loss_and_grads_with_decay(model, x, y, TOTAL_LAM)


def total_judge(value: Any) -> str:
    """The whole model's loss with decay, and its gradient passes the checker."""
    model, x, y = _total_inputs()
    loss_value, grads_value = parts(value, 2, "the result")
    loss = number_of(loss_value, "the loss")
    plain, plain_grads = model.loss_and_grads(x, y)
    want = float(plain) + penalty(model.params, TOTAL_LAM)
    expect(loss > float(plain), "the loss with decay should exceed the plain loss")
    expect(
        math.isclose(loss, want, rel_tol=1e-10),
        f"loss {loss:.10g}, expected {want:.10g} (cross-entropy plus the penalty)",
    )
    grads = _gradients(grads_value, model.params)
    want_grads = {
        n: g + (TOTAL_LAM * model.params[n] if n.endswith(".w") else 0)
        for n, g in plain_grads.items()
    }
    reports = [
        gradcheck.check_gradient(
            lambda _: (
                gradcheck.model_loss(model, x, y) + penalty(model.params, TOTAL_LAM)
            ),
            p,
            grads[name],
            name=name,
            pre_activations=lambda _: [model.forward(x)[1][0][1]],
        )
        for name, p in model.params.items()
    ]
    return expect_reports(reports, grads, want_grads, batch=len(x))


CHECKS = (
    Check("the penalty and its gradient", penalty_run, penalty_judge),
    Check("the whole model with decay", total_run, total_judge),
)
