"""Checks of lecture 10's exercise: update ratios, dead units, initial scales."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from backprop.model import MLP
from exercises.checks.core import Check, dict_of, expect, number_of, parts


def _ratio_inputs() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Parameters before and after a small step (the bias does not move)."""
    rng = np.random.default_rng(21)
    before = {"w": rng.normal(size=(4, 3)), "b": rng.normal(size=3)}
    step = {"w": 1e-3 * rng.normal(size=(4, 3)), "b": np.zeros(3)}
    return before, {k: before[k] + step[k] for k in before}


def ratios_run(mod: ModuleType) -> list[Any]:
    """update_ratios of the step, and of a zero parameter that did not move."""
    before, after = _ratio_inputs()
    zero = mod.update_ratios({"b": np.zeros(3)}, {"b": np.zeros(3)})
    return [mod.update_ratios(before, after), zero]


def ratios_judge(results: Any) -> str:
    """||after - before|| / ||before|| for every parameter."""
    value, zero_value = parts(results, 2, "the results")
    before, after = _ratio_inputs()
    got = dict_of(value, "update_ratios's result")
    expect(set(got) == set(before), f"names {sorted(got)}, expected {sorted(before)}")
    for name in before:
        want = np.linalg.norm(after[name] - before[name]) / np.linalg.norm(before[name])
        ratio = number_of(got[name], f"the ratio of {name}")
        expect(
            math.isclose(ratio, float(want), rel_tol=1e-9, abs_tol=1e-15),
            f"{name}: ratio {ratio:.6g}, expected {float(want):.6g} "
            "(one norm over all entries, not a mean of entrywise ratios)",
        )
    zero = dict_of(zero_value, "update_ratios's result")
    expect(
        number_of(zero.get("b"), "the ratio of a zero parameter") == 0.0,
        "a zero parameter that did not move has ratio 0",
    )
    return "2 parameters"


HIDDEN = np.array([[0.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 3.0], [0.0, 0.5, 0.0, 0]])


def _layer() -> np.ndarray:
    """The hidden layer of an MLP with three units off for every input, (50, 8)."""
    model = MLP([6, 8, 3], seed=22, dtype="float64")
    model.params["dense1.b"][:3] = -100.0
    x = np.random.default_rng(23).uniform(size=(50, 6))  # (50, 6)
    return model.forward(x)[1][0][1]


def dead_run(mod: ModuleType) -> list[Any]:
    """dead_fraction of a small table and of an MLP's hidden layer."""
    return [mod.dead_fraction(HIDDEN.copy()), mod.dead_fraction(_layer())]


def dead_judge(results: Any) -> None:
    """dead_fraction counts the units that are 0 for every example."""
    small, layer = parts(results, 2, "the results")
    got = number_of(small, "dead_fraction")
    expect(
        math.isclose(got, 0.5),
        f"dead_fraction {got}, expected 0.5 (units 0 and 2 are dead)",
    )
    h = _layer()
    want = 1.0 - (h > 0).any(axis=0).mean()
    got = number_of(layer, "dead_fraction")
    expect(math.isclose(got, want), f"dead_fraction {got} of an MLP layer, not {want}")


FAN_INS, PAIRS = (784, 128, 10), ((784, 128), (128, 10))


def inits_run(mod: ModuleType) -> dict[str, Any]:
    """he_std of three fan-ins and glorot_limit of two layers."""
    return {
        "he": [mod.he_std(n) for n in FAN_INS],
        "glorot": [mod.glorot_limit(a, b) for a, b in PAIRS],
    }


def inits_judge(value: Any) -> str:
    """he_std and glorot_limit match the formulas and the engine's own draws."""
    got = dict_of(value, "the results")
    he = [number_of(v, "he_std") for v in parts(got.get("he"), 3, "he_std's")]
    glorot = [
        number_of(v, "glorot_limit") for v in parts(got.get("glorot"), 2, "limits")
    ]
    for n, mine in zip(FAN_INS, he):
        expect(
            math.isclose(mine, math.sqrt(2 / n), rel_tol=1e-12),
            f"he_std({n}) = {mine}, expected sqrt(2 / {n})",
        )
    for (a, b), mine in zip(PAIRS, glorot):
        want = math.sqrt(6 / (a + b))
        expect(
            math.isclose(mine, want, rel_tol=1e-12),
            f"glorot_limit({a}, {b}) = {mine}, expected {want:.6g}",
        )
    w_he = MLP([784, 128, 10], seed=24, init="he", dtype="float64").params["dense1.w"]
    g = MLP([784, 128, 10], seed=24, init="glorot", dtype="float64").params["dense1.w"]
    expect(
        abs(float(w_he.std()) / he[0] - 1) < 0.02,
        f"the engine's He weights have sd {float(w_he.std()):.4f}, "
        f"your he_std(784) is {he[0]:.4f}",
    )
    top = float(np.abs(g).max())
    expect(
        0.99 * glorot[0] < top <= glorot[0],
        f"the engine's Glorot weights reach {top:.4f}, "
        f"your glorot_limit(784, 128) is {glorot[0]:.4f}",
    )
    return f"He sd {he[0]:.4f}, Glorot limit {glorot[0]:.4f}"


CHECKS = (
    Check("update/weight ratios", ratios_run, ratios_judge),
    Check("the share of dead units", dead_run, dead_judge),
    Check("He's and Glorot's scales", inits_run, inits_judge),
)
