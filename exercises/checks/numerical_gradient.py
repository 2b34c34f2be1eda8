"""Checks of lecture 5's exercise: central differences and a relative error.

A wrong numerical gradient is compared with the usual wrong formulas, each
computed here, so the message names the one the student wrote: a one-sided
difference, a step of h where 2h belongs, a division by h instead of 2h. A
call that leaves ``x`` changed is named before anything else, since every
later entry is then differentiated at the wrong point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from backprop import gradcheck
from exercises.checks.core import Check, Wrong, dict_of, expect, number_of
from exercises.checks.mistakes import checked_array, diagnose

Function = Callable[[np.ndarray], float]


def cubic(x: np.ndarray) -> float:
    """sum(x ** 3), whose gradient is 3 x ** 2."""
    return float((x**3).sum())


def coupled(x: np.ndarray) -> float:
    """sum(exp(x)) + x0 x1: each partial derivative depends on the other entry."""
    return float(np.exp(x).sum() + x[0] * x[1])


# name: (f, its exact gradient, the point x, the step passed, or None)
CASES: dict[str, tuple[Function, Callable, Callable[[], np.ndarray], float | None]] = {
    "cubic": (
        cubic,
        lambda x: 3 * x**2,
        lambda: np.random.default_rng(7).normal(size=(3, 4)),
        None,
    ),
    "coupled": (
        coupled,
        lambda x: np.exp(x) + x[::-1],
        lambda: np.array([0.3, -1.2]),
        1e-3,
    ),
}


def _call(mod: ModuleType, case: str) -> dict[str, Any]:
    """The student's gradient, and x as the call left it."""
    f, _, make_x, h = CASES[case]
    x = make_x()
    if h is None:
        grad = mod.numerical_gradient(f, x)
    else:
        grad = mod.numerical_gradient(f, x, h=h)
    return {"gradient": grad, "x": x}


def _differences(f: Function, x: np.ndarray, h: float) -> dict[str, np.ndarray]:
    """The usual wrong formulas, entry by entry, each with x restored."""
    out = {k: np.zeros(x.shape) for k in ("forward", "backward", "half", "over h")}
    for i in np.ndindex(x.shape):
        up, down, here = x.copy(), x.copy(), f(x)
        up[i] += h
        down[i] -= h
        f_up, f_down = f(up), f(down)
        out["forward"][i] = (f_up - here) / h
        out["backward"][i] = (here - f_down) / h
        out["half"][i] = (f_up - here) / (2 * h)
        out["over h"][i] = (f_up - f_down) / h
    return out


NAMES = {
    "forward": "a one-sided difference (f(x + h) - f(x)) / h, which errs by about "
    "h f''/2; take (f(x + h) - f(x - h)) / 2h",
    "backward": "a one-sided difference (f(x) - f(x - h)) / h; take "
    "(f(x + h) - f(x - h)) / 2h",
    "half": "(f(x + h) - f(x)) / 2h: the second point is x itself, not x - h "
    "(after x[i] += h, go back by 2h)",
    "over h": "(f(x + h) - f(x - h)) / h: divide by the distance 2h between the points",
}


def _judge_case(value: Any, case: str, rtol: float, floor: float = 0.0) -> float:
    """X restored, then the gradient right within ``rtol``; else name the mistake."""
    f, exact, make_x, h_given = CASES[case]
    before = make_x()
    h = 1e-5 if h_given is None else h_given
    got = dict_of(value, "the results")
    grad = checked_array(got.get("gradient"), before, "the gradient")
    after = checked_array(got.get("x"), before, "x after the call")
    if not np.array_equal(after, before):
        k = int(np.argmax(np.abs(after - before).ravel()))
        i = [int(n) for n in np.unravel_index(k, before.shape)]
        moved = after.ravel()[k] - before.ravel()[k]
        raise Wrong(
            f"x was changed: after the call x{i} is {after.ravel()[k]:.10g}, not "
            f"{before.ravel()[k]:.10g} (moved by {moved:.2g}); put each entry back "
            "(x[i] = old) after its two evaluations, or every later entry is "
            "differentiated at the wrong point"
        )
    want = exact(before)  # shape of x
    error = float(gradcheck.relative_error(grad, want, floor=floor).max())
    if error < rtol:
        return error
    for name, wrong in _differences(f, before, h).items():
        if float(gradcheck.relative_error(grad, wrong, floor=floor).max()) < 1e-7:
            raise Wrong(f"relative error {error:.1e}: this is {NAMES[name]}")
    mistake = diagnose(grad, want)
    raise Wrong(
        f"relative error {error:.1e} against the exact gradient (expected "
        f"< {rtol:.0e})" + (f"; {mistake}" if mistake else "")
    )


def cubic_run(mod: ModuleType) -> dict[str, Any]:
    """numerical_gradient of sum(x ** 3) with the default step."""
    return _call(mod, "cubic")


def cubic_judge(value: Any) -> str:
    """3 x ** 2, and x left unchanged (entries below 1: absolute error)."""
    return f"relative error {_judge_case(value, 'cubic', 1e-7, floor=1.0):.1e}"


def central_run(mod: ModuleType) -> dict[str, Any]:
    """numerical_gradient of sum(exp(x)) + x0 x1 with h = 1e-3."""
    return _call(mod, "coupled")


def central_judge(value: Any) -> None:
    """With h = 1e-3 a central difference errs by about h^2 / 6, not h / 2."""
    _judge_case(value, "coupled", 1e-5)


def relerr_run(mod: ModuleType) -> dict[str, Any]:
    """rel_error of zeros, of a small pair, of it scaled up, and swapped."""
    a, b = np.array([1e-10, 2.0]), np.array([2e-10, 2.0])
    return {
        "zeros": mod.rel_error(np.zeros(3), np.zeros(3)),
        "ab": mod.rel_error(a.copy(), b.copy()),
        "scaled": mod.rel_error(a * 1e6, b * 1e6),
        "ba": mod.rel_error(b.copy(), a.copy()),
    }


def relerr_judge(value: Any) -> None:
    """0 for zeros (no NaN), scale-free, symmetric, a max over entries."""
    got = dict_of(value, "the results")
    expect(set(got) == {"zeros", "ab", "scaled", "ba"}, "the results are incomplete")
    zero = number_of(got["zeros"], "rel_error of two zero arrays")
    expect(zero == 0, f"rel_error of two zero arrays is {zero}, expected 0")
    ab = number_of(got["ab"], "rel_error")
    expect(math.isclose(ab, 0.5), f"rel_error([1e-10, 2], [2e-10, 2]) is {ab}, not 0.5")
    expect(
        math.isclose(number_of(got["scaled"], "rel_error"), ab),
        "rel_error must not depend on the scale",
    )
    expect(math.isclose(number_of(got["ba"], "rel_error"), ab), "not symmetric")


CHECKS = (
    Check("numerical gradient of sum(x^3)", cubic_run, cubic_judge),
    Check("central, not one-sided", central_run, central_judge),
    Check("rel_error behaves", relerr_run, relerr_judge),
)
