"""Checks of lab 7a's exercise: reverse-mode autodiff of arrays.

Each operation is tested alone: set ``out.grad``, call ``out._backward()``
(twice: gradients must accumulate), compare with Lecture 4's formula, and name
the known mistakes (``exercises.checks.tensor_ops`` runs and reads the calls).
Then the graph: a topological order, ``backward()`` where paths fork, and the
paper's kind of network against the engine's ``MLP.loss_and_grads``.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from exercises.checks import tensor_graph
from exercises.checks.core import Check, Wrong, dict_of, parts
from exercises.checks.tensor_ops import (
    accumulates,
    attempt,
    backward_twice,
    first_call,
    judge_values,
    log_softmax,
    mean_for_sum,
    shaped,
    snapshot,
    unbroadcast,
)

# --- the operations, one at a time ------------------------------------------------

UNBROADCAST_CASES = (  # the gradient's shape, the input's, how to get there
    ((4, 10), (10,), "sum over the broadcast batch axis (axis 0)"),
    ((4, 10), (1, 10), "sum over axis 0, where the input has length 1, keepdims=True"),
    ((4, 10), (4, 1), "sum over axis 1, where the input has length 1, keepdims=True"),
    ((2, 3, 4), (4,), "sum over the two leading axes the input lacks"),
    ((2, 3, 4), (3, 1), "sum over the leading axis, then over the last (keepdims)"),
    ((4, 10), (4, 10), "nothing was broadcast: return the gradient as it is"),
    ((4, 10), (), "a 0-d input was copied everywhere: sum every entry"),
)


def _unbroadcast_grads() -> list[np.ndarray]:
    rng = np.random.default_rng(70)
    return [rng.normal(size=grad_shape) for grad_shape, _, _ in UNBROADCAST_CASES]


def unbroadcast_run(mod: ModuleType) -> list[Any]:
    """Each case's gradient, unbroadcast to the input's shape."""
    cases = zip(_unbroadcast_grads(), UNBROADCAST_CASES)
    return [mod.unbroadcast(grad.copy(), shape) for grad, (_, shape, _) in cases]


def unbroadcast_judge(results: Any) -> str:
    """The gradient of broadcasting: sums over leading axes and axes of length 1."""
    results = parts(results, len(UNBROADCAST_CASES), "the results")
    for grad, case, value in zip(_unbroadcast_grads(), UNBROADCAST_CASES, results):
        grad_shape, shape, hint = case
        what = f"unbroadcast(grad of shape {grad_shape}, {shape})"
        got = shaped(value, shape, what, hint)
        known = mean_for_sum(grad, shape, hint)
        judge_values(got, unbroadcast(grad, shape), f"{what} ({hint})", known)
    return f"{len(UNBROADCAST_CASES)} shapes"


def _matmul_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(71)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 5))  # (4, 3), (3, 5)
    return a, b, rng.normal(size=(4, 5))  # upstream (4, 5)


def matmul_run(mod: ModuleType) -> dict[str, Any]:
    """A @ B, then its _backward twice."""
    a_data, b_data, upstream = _matmul_inputs()
    a, b = mod.Tensor(a_data), mod.Tensor(b_data)
    out = a @ b
    return {"value": snapshot(out.data)} | backward_twice(
        out, upstream, {"A": a, "B": b}
    )


def matmul_judge(got: Any) -> None:
    """A @ B for (4, 3) @ (3, 5): the value, dA = dout B^T, dB = A^T dout."""
    a_data, b_data, upstream = _matmul_inputs()
    got = dict_of(got, "the results")
    value = shaped(got.get("value"), (4, 5), "A @ B", "(4, 3) @ (3, 5) is (4, 5)")
    judge_values(value, a_data @ b_data, "A @ B")
    hint = "each gradient has its input's shape: dA = dout @ B.T, dB = A.T @ dout"
    grads = first_call(got, "matmul", hint)
    for name, want, formula in (
        ("A", upstream @ b_data.T, "dout @ B.T"),
        ("B", a_data.T @ upstream, "A.T @ dout"),
    ):
        d = f"d{name}"
        value = shaped(grads.get(name), want.shape, f"{d} of A @ B", f"{d} = {formula}")
        judge_values(value, want, f"{d} = {formula}")
    accumulates(got, "matmul")


ADD_CASES = (  # the two shapes, the gradient that broadcasting changes, the hint
    ((4, 10), (10,), "the bias gradient", "sum over the broadcast batch axis (axis 0)"),
    ((10,), (4, 10), "the bias gradient", "sum over the broadcast batch axis (axis 0)"),
    ((4, 10), (4, 1), "the column's gradient", "sum over axis 1, keepdims=True"),
    ((4, 10), (4, 10), "the gradient", "same shapes: each input gets dout itself"),
)


def _add_inputs() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(72)
    inputs = []
    for left, right, _, _ in ADD_CASES:
        a, b = rng.normal(size=left), rng.normal(size=right)
        inputs.append((a, b, rng.normal(size=(4, 10))))  # upstream (4, 10)
    return inputs


def add_run(mod: ModuleType) -> list[dict[str, Any]]:
    """A + B for each pair of shapes, then its _backward twice."""
    results = []
    for a_data, b_data, upstream in _add_inputs():
        a, b = mod.Tensor(a_data), mod.Tensor(b_data)
        out = a + b
        calls = backward_twice(out, upstream, {"A": a, "B": b})
        results.append({"value": snapshot(out.data)} | calls)
    return results


def add_judge(results: Any) -> str:
    """(4, 10) + (10,), (10,) + (4, 10), (4, 10) + (4, 1), (4, 10) + (4, 10)."""
    results = parts(results, len(ADD_CASES), "the results")
    for (left, right, who, hint), inputs, got in zip(ADD_CASES, _add_inputs(), results):
        a_data, b_data, upstream = inputs
        got, case = dict_of(got, "the results"), f"{left} + {right}"
        value = shaped(
            got.get("value"), (4, 10), case, "NumPy broadcasts it to (4, 10)"
        )
        judge_values(value, a_data + b_data, case)
        small = left if math.prod(left) < 40 else right
        must = f"{who} must have the input's shape {small}, not (4, 10): {hint}"
        grads = first_call(got, case, must)
        for name, shape in (("A", left), ("B", right)):
            value = shaped(grads.get(name), shape, f"{case}: {who}", hint)
            known = mean_for_sum(upstream, shape, hint)
            judge_values(value, unbroadcast(upstream, shape), f"{case}: {who}", known)
        accumulates(got, f"add {case}")
    return "a bias, a column and equal shapes"


RELU_X = np.array(
    [[1.5, -0.5, 0.0, 2.0], [0.0, 0.7, -0.1, -2.0], [3.0, 0.0, -1.0, 0.2]]
)  # (3, 4), with exact zeros
RELU_UPSTREAM = np.array(
    [[-1.0, 2.0, 0.5, 0.3], [-0.4, -0.6, 1.2, 0.9], [0.8, -1.1, 0.7, -0.2]]
)  # (3, 4): signs unlike x's, so a mask taken from it shows


def relu_run(mod: ModuleType) -> dict[str, Any]:
    """relu(x), then its _backward twice."""
    x = mod.Tensor(RELU_X.copy())
    out = x.relu()
    return {"value": snapshot(out.data)} | backward_twice(out, RELU_UPSTREAM, {"x": x})


def relu_judge(got: Any) -> None:
    """relu: max(x, 0), and dx = dout * [x > 0], 0 at exactly 0."""
    x, up = RELU_X, RELU_UPSTREAM
    got = dict_of(got, "the results")
    value = shaped(got.get("value"), (3, 4), "relu(x)", "x's")
    judge_values(value, np.maximum(x, 0), "relu")
    grads = first_call(got, "relu", "dx has x's shape")
    dx = shaped(grads.get("x"), (3, 4), "relu's dx", "dx has x's shape")
    known = (
        (up * (x >= 0), "0 at exactly 0, as in the engine: x > 0, not >="),
        (up, "the gradient passes unmasked: multiply dout by the mask x > 0"),
        (up * (up > 0), "the mask comes from the input x, not from dout"),
        (x > 0, "the mask alone is not the gradient: multiply it by dout"),
        (up * np.maximum(x, 0), "the mask is [x > 0], not relu(x)"),
    )
    judge_values(dx, up * (x > 0), "relu mask wrong (dout * [x > 0])", known)
    accumulates(got, "relu")


STABLE_Z = np.array([[1000.0, 1001.0, 999.0], [-1000.0, 0.0, 1000.0]])  # (2, 3)
STABLE_UPSTREAM = np.array([[0.3, -0.2, 0.5], [-0.5, 0.1, 0.4]])  # (2, 3)


def _log_softmax_inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(73)
    return rng.normal(0, 3, size=(4, 5)), rng.normal(size=(4, 5))  # (4, 5), (4, 5)


def _stable_run(mod: ModuleType) -> dict[str, Any]:
    """log_softmax of logits near +-1000 with overflow and log(0) as errors."""
    t, result = mod.Tensor(STABLE_Z.copy()), {}
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            out = t.log_softmax()
            result["value"] = snapshot(out.data)
            out.grad = STABLE_UPSTREAM.copy()
            try:
                out._backward()
            except ValueError as exc:
                return result | {"shape_error": str(exc)[:300]}
            result["grad"] = snapshot(t.grad)
    except FloatingPointError as exc:
        result["error"] = str(exc)[:300]
    return result


def log_softmax_run(mod: ModuleType) -> dict[str, Any]:
    """log_softmax(z) and its _backward twice; then logits near 1000."""
    z_data, upstream = _log_softmax_inputs()
    z = mod.Tensor(z_data)
    out = z.log_softmax()
    result = {"value": snapshot(out.data)} | backward_twice(out, upstream, {"z": z})
    return result | {"stable": attempt(lambda: _stable_run(mod))}


def _stable_judge(got: dict[str, Any]) -> None:
    """Logits near +-1000: nothing may overflow, nothing may be log(0)."""
    what = "log_softmax not stable for logits near 1000"
    hint = (
        "subtract each row's maximum before exp (log-softmax does not change), "
        "and compute shifted - log(sum(exp(shifted))) rather than log(softmax)"
    )
    if "error" in got and "value" not in got:  # in the forward pass
        raise Wrong(f"{what} ({got['error']}): {hint}")
    value = shaped(got.get("value"), (2, 3), "log_softmax", "z's shape")
    if "shape_error" in got:
        raise Wrong(
            f"log_softmax: backward raised ValueError ({got['shape_error']}): "
            "dz has z's shape"
        )
    if "error" in got:  # in the backward pass
        raise Wrong(f"{what} ({got['error']}): {hint}")
    judge_values(value, log_softmax(STABLE_Z), f"{what}: {hint}")
    probs = np.exp(log_softmax(STABLE_Z))  # (2, 3)
    want = STABLE_UPSTREAM - probs * STABLE_UPSTREAM.sum(axis=1, keepdims=True)
    dz = shaped(got.get("grad"), (2, 3), "dz", "z's shape")
    judge_values(dz, want, f"{what}: its gradient")


def log_softmax_judge(got: Any) -> str:
    """Row-wise log-softmax; dz = dout - softmax(z) * row sums; stable at 1000."""
    z, up = _log_softmax_inputs()
    got = dict_of(got, "the results")
    value = shaped(got.get("value"), (4, 5), "log_softmax(z)", "one per logit")
    columns = (log_softmax(z, axis=0), "normalise each row (axis 1), not column")
    judge_values(value, log_softmax(z), "log_softmax(z)", [columns])
    grads = first_call(got, "log_softmax", "dz has z's shape (4, 5)")
    dz = shaped(grads.get("z"), (4, 5), "log_softmax's dz", "dz has z's shape")
    probs = np.exp(log_softmax(z))  # (4, 5)
    known = (
        (up - probs, "the row sums of dout are missing"),
        (up - probs * up, "softmax(z) times the row SUMS of dout"),
        (up - probs * up.sum(), "sum dout over each row, not the batch"),
    )
    want = up - probs * up.sum(axis=1, keepdims=True)  # (4, 5)
    judge_values(
        dz, want, "log_softmax's gradient (dout - softmax(z) * row sums)", known
    )
    accumulates(got, "log_softmax")
    stable = dict_of(got.get("stable"), "the results near 1000")
    if "error" in stable:
        raise Wrong(f"log_softmax of logits near 1000 raised {stable['error']}")
    _stable_judge(dict_of(stable.get("value"), "the results near 1000"))
    return "values, gradient, and logits near 1000"


NLL_LABELS = np.array([2, 0, 4, 2])  # (4,)
NLL_UPSTREAMS = (1.0, 2.5)


def _nll_input() -> np.ndarray:
    return log_softmax(np.random.default_rng(74).normal(size=(4, 5)))  # (4, 5)


def nll_run(mod: ModuleType) -> dict[str, Any]:
    """The value of nll; its _backward twice for two upstream gradients."""
    logp_data = _nll_input()
    result = {"value": snapshot(mod.Tensor(logp_data).nll(NLL_LABELS.copy()).data)}
    for upstream in NLL_UPSTREAMS:
        logp = mod.Tensor(logp_data.copy())
        out = logp.nll(NLL_LABELS.copy())
        result[str(upstream)] = backward_twice(out, np.array(upstream), {"logp": logp})
    return result


def nll_judge(got: Any) -> None:
    """The mean of -logp[i, y_i]; its gradient -dout / N at each label."""
    logp, labels, n, rows = _nll_input(), NLL_LABELS, 4, np.arange(4)
    got = dict_of(got, "the results")
    value = shaped(got.get("value"), (), "nll", "the loss is one number (a 0-d array)")
    picked = logp[rows, labels]  # (4,)
    known = (
        (-picked.sum(), f"the sum over the batch, not the mean: divide by N = {n}"),
        (-logp.mean(), "pick each row's label entry, logp[rows, labels]"),
    )
    judge_values(value, np.asarray(-picked.mean()), "nll's value", known)
    want = np.zeros((4, 5))  # (4, 5)
    want[rows, labels] = -1.0 / n
    for upstream in NLL_UPSTREAMS:
        grads = first_call(got.get(str(upstream)), "nll", "d logp has logp's shape")
        grad = shaped(grads.get("logp"), (4, 5), "nll's gradient", "the shape of logp")
        mean = f"N = {n} times too large: the loss is a mean over the batch"
        ignored = f"ignores the upstream gradient: multiply by out.grad ({upstream})"
        known = ((n * upstream * want, mean), (want, ignored))
        judge_values(
            grad, upstream * want, "nll's gradient (-dout / N at each label)", known
        )
    accumulates(got.get(str(NLL_UPSTREAMS[-1])), "nll")


CHECKS = (
    Check(
        "unbroadcast sums over the broadcast axes", unbroadcast_run, unbroadcast_judge
    ),
    Check("matmul: the product and both gradients", matmul_run, matmul_judge),
    Check("add broadcasts, and its backward sums over those axes", add_run, add_judge),
    Check("relu: the values and the mask x > 0", relu_run, relu_judge),
    Check("log_softmax: values, gradient, stable", log_softmax_run, log_softmax_judge),
    Check("nll: the mean over the batch, and its gradient", nll_run, nll_judge),
    Check(
        "topological order: each Tensor once, after its parents",
        tensor_graph.topological_run,
        tensor_graph.topological_judge,
    ),
    Check(
        "backward: ones at the output; forks add up",
        tensor_graph.forks_run,
        tensor_graph.forks_judge,
    ),
    Check(
        "an MLP of Tensors has the engine's loss and gradients",
        tensor_graph.engine_run,
        tensor_graph.engine_judge,
    ),
)
