"""Checks of lecture 7's first exercise: reverse-mode autodiff of scalars."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from backprop import gradcheck
from backprop.model import MLP
from exercises.checks.core import Check, Wrong, dict_of, expect, number_of
from exercises.checks.mistakes import checked_array, diagnose


def _close(got: Any, want: float, what: str) -> None:
    """Fail unless a number matches to 1e-9 relative."""
    value = number_of(got, what)
    expect(
        math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-12),
        f"{what} is {value:.10g}, expected {want:.10g}",
    )


def gates_run(mod: ModuleType) -> dict[str, Any]:
    """(x + y) z at (-2, 5, -4) and its gradients."""
    x, y, z = mod.Value(-2.0), mod.Value(5.0), mod.Value(-4.0)
    f = (x + y) * z
    data = f.data
    f.backward()
    return {"f": data, "x": x.grad, "y": y.grad, "z": z.grad}


def gates_judge(value: Any) -> str:
    """F = -12, df/dx = df/dy = -4, df/dz = 3."""
    got = dict_of(value, "the results")
    _close(got.get("f"), -12.0, "f = (x + y) z")
    for name, want in (("x", -4.0), ("y", -4.0), ("z", 3.0)):
        _close(got.get(name), want, f"df/d{name}")
    return "CS231n's example"


RELU_AT = (1.5, -0.5, 0.0)


def unary_run(mod: ModuleType) -> dict[str, Any]:
    """Relu at three points, exp at 0.7 and log at 2.5: values and derivatives."""
    out: dict[str, Any] = {}
    for a in RELU_AT:
        v = mod.Value(a)
        r = v.relu()
        out[f"relu({a})"] = r.data
        r.backward()
        out[f"d relu / dx at {a}"] = v.grad
    for name, a in (("exp", 0.7), ("log", 2.5)):
        v = mod.Value(a)
        r = getattr(v, name)()
        r.backward()
        out[f"{name}({a})"], out[f"d {name} / dx at {a}"] = r.data, v.grad
    return out


def unary_judge(value: Any) -> None:
    """relu, exp and log: values and derivatives (relu'(0) = 0, like the engine)."""
    got = dict_of(value, "the results")
    want = {}
    for a in RELU_AT:
        want[f"relu({a})"] = max(a, 0.0)
        want[f"d relu / dx at {a}"] = 1.0 if a > 0 else 0.0
    want |= {"exp(0.7)": math.exp(0.7), "d exp / dx at 0.7": math.exp(0.7)}
    want |= {"log(2.5)": math.log(2.5), "d log / dx at 2.5": 0.4}
    for what, number in want.items():
        _close(got.get(what), number, what)


def forks_run(mod: ModuleType) -> dict[str, Any]:
    """X * x, and a diamond: a = 2x; b = a + a * a; c = b * a."""
    x = mod.Value(3.0)
    square = x * x
    square.backward()
    out = {"square": x.grad}
    x = mod.Value(0.5)
    a = x * 2.0
    b = a + a * a
    c = b * a
    c.backward()
    return out | {"dc/dx": x.grad, "c": c.data}


def forks_judge(value: Any) -> str:
    """Gradients add where paths fork, in topological order (a diamond graph)."""
    got = dict_of(value, "the results")
    _close(got.get("square"), 6.0, "d(x * x)/dx at 3 (both uses must add, with +=)")
    want = 2 * (2 * 2 * 0.5 + 3 * (2 * 0.5) ** 2)  # c = 4x^2 + 8x^3
    grad = number_of(got.get("dc/dx"), "dc/dx")
    expect(
        math.isclose(grad, want, rel_tol=1e-12),
        f"dc/dx is {grad:g}, expected {want:g}: is every node's gradient complete "
        "(all its consumers done) before its _backward runs? Sort topologically.",
    )
    _close(got.get("c"), 4 * 0.25 + 8 * 0.125, "c")
    return "x * x and a diamond"


def _case() -> tuple[MLP, np.ndarray, np.ndarray]:
    """A 4-5-3 network with non-zero biases, and 3 examples."""
    rng = np.random.default_rng(19)
    model = MLP([4, 5, 3], seed=20, dtype="float64")
    for name, p in model.params.items():
        if name.endswith(".b"):
            p[...] = rng.normal(0, 0.3, p.shape)
    return model, rng.uniform(size=(3, 4)), np.array([0, 2, 1])


def network_loss(mod: ModuleType, params: dict, x: np.ndarray, y: np.ndarray):
    """The mean cross-entropy of an MLP, built from the student's Values."""
    weights = {
        name: [[mod.Value(w) for w in row] for row in p.tolist()]
        if p.ndim == 2
        else [mod.Value(b) for b in p.tolist()]
        for name, p in params.items()
    }
    layers = len(params) // 2
    total = mod.Value(0.0)
    for row, label in zip(x.tolist(), y.tolist()):
        out = [mod.Value(v) for v in row]
        for i in range(1, layers + 1):
            w, b = weights[f"dense{i}.w"], weights[f"dense{i}.b"]
            out = [
                sum((out[k] * w[k][j] for k in range(len(out))), b[j])
                for j in range(len(b))
            ]
            if i < layers:
                out = [v.relu() for v in out]
        log_sum = sum((v.exp() for v in out), mod.Value(0.0)).log()
        total = total + (log_sum - out[label])
    return total * (1.0 / len(x)), weights


def engine_run(mod: ModuleType) -> dict[str, Any]:
    """The loss of an MLP of Values, and the grad of every weight and bias."""
    model, x, y = _case()
    loss, weights = network_loss(mod, model.params, x, y)
    data = loss.data
    loss.backward()
    grads = {
        name: [[v.grad for v in row] for row in w]
        if isinstance(w[0], list)
        else [v.grad for v in w]
        for name, w in weights.items()
    }
    return {"loss": data, "grads": grads}


def engine_judge(value: Any) -> str:
    """An MLP built from Values has the engine's loss and gradients (within 1e-9)."""
    model, x, y = _case()
    want_loss, want = model.loss_and_grads(x, y)
    got = dict_of(value, "the results")
    _close(got.get("loss"), float(want_loss), "the loss")
    grads = dict_of(got.get("grads"), "the gradients")
    expect(set(grads) == set(want), "the gradients are incomplete")
    for name, grad in want.items():
        mine = checked_array(grads[name], grad, f"the grads of {name}")
        err = float(gradcheck.relative_error(mine, grad, floor=1e-12).max())
        if err >= 1e-9:
            mistake = diagnose(mine, grad, batch=len(x))
            raise Wrong(
                f"{name}: your gradient differs from the engine's by {err:.2e} "
                f"(relative), e.g. {mine.ravel()[:3]} against {grad.ravel()[:3]}"
                + (f"; {mistake}" if mistake else "")
            )
    return "a 4-5-3 network on 3 examples"


CHECKS = (
    Check("add and multiply gates", gates_run, gates_judge),
    Check("relu, exp and log", unary_run, unary_judge),
    Check("forks add, in topological order", forks_run, forks_judge),
    Check("an MLP of Values has the engine's gradients", engine_run, engine_judge),
)
