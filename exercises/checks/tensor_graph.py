"""Checks of lab 7a's graph: the topological order, ``backward()``, the network.

The last three checks of ``exercises.checks.tensor_autodiff``: each Tensor once
and after its parents; ones at the output and gradients that add up where
paths fork; and the paper's kind of network, built from the student's
Tensors, against the engine's ``MLP.loss_and_grads`` (float64, within 1e-12).
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from backprop.model import MLP
from exercises.checks.core import Wrong, dict_of, expect, number_of, parts
from exercises.checks.tensor_ops import (
    attempt,
    close,
    judge_values,
    log_softmax,
    shaped,
    snapshot,
)

ENGINE_TOLERANCE = 1e-12  # the largest difference / the largest gradient entry
ENGINE_CASES = (([6, 3], 7), ([6, 5, 3], 5), ([6, 5, 4, 3], 3), ([784, 128, 10], 12))
VISITED = "remember the Tensors you have visited (by id): each is listed once"
PARENTS = "append a Tensor only after visiting all its parents (depth first)"
EDGES = (("a", "xw"), ("b", "a"), ("c", "ab"), ("d", "cx"))  # child, its parents


def topological_run(mod: ModuleType) -> dict[str, Any]:
    """The names, in the order topological_order lists them, of a small graph."""
    t = mod.Tensor
    x, w = t(1.0, (), "x"), t(2.0, (), "w")
    a = t(0.0, (x, w), "a")  # a = x @ w
    b = t(0.0, (a,), "b")  # b = relu(a)
    c = t(0.0, (a, b), "c")  # a is used twice
    d = t(0.0, (c, x), "d")  # so is x
    names = {id(v): n for v, n in zip((x, w, a, b, c, d), "xwabcd")}
    order = d.topological_order()
    if not isinstance(order, list | tuple):
        return {"listed": None}
    return {"listed": [names.get(id(v), "a Tensor not in the graph") for v in order]}


def topological_judge(got: Any) -> str:
    """Each Tensor once, every one after all its parents, the output last."""
    listed = dict_of(got, "the results").get("listed")
    expect(isinstance(listed, list), "topological_order must return a list")
    expect(all(isinstance(n, str) for n in listed), "the order could not be read")
    for name in "xwabcd":
        count = listed.count(name)
        expect(count <= 1, f"{name} appears {count} times in {listed}: {VISITED}")
        expect(count, f"{name} is missing from {listed}: visit every parent")
    expect(len(listed) == 6, f"{listed} lists Tensors outside the graph")
    first = "the output comes last; backward() walks the list from the end"
    expect(listed[0] != "d", f"the order {listed} starts at the output: {first}")
    for child, parents in EDGES:
        for p in parents:
            wrong = f"wrong topological order {listed}: {child} before its parent {p}"
            expect(listed.index(p) < listed.index(child), f"{wrong}; {PARENTS}")
    return " -> ".join(listed)


FORK_LABELS = np.array([1, 3, 0])  # (3,)


def _fork_inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(75)
    return rng.normal(size=(3, 4)), rng.normal(size=(4, 4))  # (3, 4), (4, 4)


def _network_run(mod: ModuleType) -> Any:
    """dL/dx where h = relu(x) feeds a matmul and an add: two parts."""
    x_data, w_data = _fork_inputs()
    x, w = mod.Tensor(x_data), mod.Tensor(w_data)
    h = x.relu()
    (h @ w + h).log_softmax().nll(FORK_LABELS.copy()).backward()
    return snapshot(x.grad)


def forks_run(mod: ModuleType) -> dict[str, Any]:
    """(x + x).backward(); then the loss of relu(x) @ w + relu(x)."""
    x = mod.Tensor(np.arange(12.0).reshape(3, 4))  # (3, 4)
    out = x + x
    out.backward()
    result = {"seed": snapshot(out.grad), "x + x": snapshot(x.grad)}
    return result | {"network": attempt(lambda: _network_run(mod))}


def forks_judge(got: Any) -> str:
    """Ones at the output; forks add up; _backward runs in reverse order."""
    got = dict_of(got, "the results")
    seed = shaped(got.get("seed"), (3, 4), "the output's grad", "ones of its shape")
    ones = "backward() must first set the output's grad to ones (dL/dL = 1)"
    expect(close(seed, np.ones((3, 4))), ones)
    grad = shaped(got.get("x + x"), (3, 4), "x.grad", "the shape of x")
    overwritten = "x.grad is 1, expected 2: gradients overwritten instead of "
    overwritten += "accumulated; each _backward must add (+=) to its parents' grad"
    judge_values(grad, np.full((3, 4), 2.0), "x + x", [(np.ones((3, 4)), overwritten)])
    network = dict_of(got.get("network"), "the results of relu(x) @ w + relu(x)")
    if "error" in network:
        raise Wrong(f"relu(x) @ w + relu(x): raised {network['error']}")
    x_data, w_data = _fork_inputs()
    h_data = np.maximum(x_data, 0)  # (3, 4)
    dz = np.exp(log_softmax(h_data @ w_data + h_data))  # (3, 4), the softmax
    dz[np.arange(3), FORK_LABELS] -= 1
    dx = (dz @ w_data.T + dz) / 3 * (x_data > 0)  # (3, 4): both uses of h
    grad = shaped(network.get("value"), (3, 4), "dL/dx", "the shape of x")
    order = "relu(x) @ w + relu(x): dL/dx is wrong; if each operation above passed, "
    order += "a _backward ran before its Tensor's grad was complete (all consumers "
    judge_values(grad, dx, order + "done): call them in reverse topological order")
    return "x + x, and relu(x) @ w + relu(x)"


def engine_cases() -> list[tuple[MLP, np.ndarray, np.ndarray]]:
    """Four float64 networks with non-zero biases, the paper's among them."""
    rng = np.random.default_rng(76)
    cases = []
    for sizes, n in ENGINE_CASES:
        model = MLP(sizes, seed=77, dtype="float64")
        for name, p in model.params.items():
            if name.endswith(".b"):  # non-zero biases, so their gradients show
                p[...] = rng.normal(0, 0.3, p.shape)
        x = rng.uniform(size=(n, sizes[0]))  # (n, D)
        cases.append((model, x, rng.integers(0, sizes[-1], size=n)))
    return cases


def engine_run(mod: ModuleType) -> list[Any]:
    """loss_and_grads on each network, until one raises ValueError."""
    results: list[Any] = []
    for model, x, y in engine_cases():
        params = {k: v.copy() for k, v in model.params.items()}
        try:
            result = mod.loss_and_grads(params, x.copy(), y.copy())
        except ValueError as exc:  # NumPy refused two shapes somewhere in the graph
            return [*results, {"error": str(exc)[:300]}]
        results.append({"result": list(parts(result, 2, "loss_and_grads(...)"))})
    return results


def _relu_on_logits(model: MLP, x: np.ndarray, y: np.ndarray) -> float:
    """The loss of a common mistake: a ReLU after the last layer too."""
    for i in range(1, model.num_layers + 1):
        w, b = model.params[f"dense{i}.w"], model.params[f"dense{i}.b"]
        x = np.maximum(x @ w + b, 0)
    return float(-log_softmax(x)[np.arange(len(y)), y].mean())


def _engine_case(got: Any, model: MLP, x: np.ndarray, y: np.ndarray) -> float:
    """One network's loss and gradients; the largest relative difference."""
    sizes = model.sizes
    got = dict_of(got, f"sizes {sizes}: the results")
    if "error" in got:
        which = "the checks of each operation above say which shape is wrong"
        raise Wrong(f"sizes {sizes}: ValueError ({got['error']}); {which}")
    loss_value, grads = parts(got.get("result"), 2, "loss_and_grads(...)")
    want_loss, want = model.loss_and_grads(x, y)
    loss = number_of(loss_value, f"sizes {sizes}: the loss")
    if not math.isclose(loss, float(want_loss), rel_tol=ENGINE_TOLERANCE):
        last = "a ReLU after the last layer; the logits must be left as they are"
        relu = _relu_on_logits(model, x, y)
        expect(not math.isclose(loss, relu), f"sizes {sizes}: {last}")
        engine = f"the engine's {float(want_loss):.12g}"
        raise Wrong(f"sizes {sizes}: loss {loss:.12g}, {engine}")
    grads = dict_of(grads, f"sizes {sizes}: the gradients")
    expect(
        set(grads) == set(want),
        f"gradient names {sorted(grads)}, expected {sorted(want)}",
    )
    worst = 0.0
    for name, w in want.items():
        hint = "sum over the broadcast batch axis" if name.endswith(".b") else ""
        what = f"sizes {sizes}: {name}'s gradient"
        grad = shaped(grads[name], w.shape, what, hint or "the weight's shape")
        diff = float(np.abs(grad - w).max() / np.abs(w).max())
        most = f"of its largest entry (at most {ENGINE_TOLERANCE:g})"
        expect(diff <= ENGINE_TOLERANCE, f"{what} is off by {diff:.2e} {most}")
        worst = max(worst, diff)
    return worst


def engine_judge(results: Any) -> str:
    """loss_and_grads equals MLP.loss_and_grads (float64, within 1e-12)."""
    cases = engine_cases()
    expect(isinstance(results, list), "the results could not be read")
    worst = 0.0
    for got, case in zip(results, cases):
        worst = max(worst, _engine_case(got, *case))
    expect(len(results) == len(cases), "the results of some networks are missing")
    return f"4 networks, 784-128-10 among them; largest difference {worst:.1e}"
