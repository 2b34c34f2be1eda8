"""Judge a student's ``(loss, grads)`` of an MLP against the engine's.

Shared by the exercises whose answer is the gradient of a whole network
(``backward_recursion``, ``tape_gradients``): the loss must equal
``MLP.loss_and_grads``'s, every parameter must have a gradient of its shape,
and each gradient must agree with the engine's to 1e-10 (float64). A missing
bias gradient, a transposed ``dW`` or a factor of N is named as such.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from backprop.model import MLP
from exercises.checks.core import Wrong, dict_of, expect, number_of, parts
from exercises.checks.mistakes import expect_same_gradient

Case = tuple[MLP, np.ndarray, np.ndarray]


def model_with_biases(sizes: list[int], seed: int) -> MLP:
    """A float64 MLP with non-zero biases, so bias gradients are tested."""
    model = MLP(sizes, seed=seed, dtype="float64")
    rng = np.random.default_rng(seed + 100)
    for name, p in model.params.items():
        if name.endswith(".b"):
            p[...] = rng.normal(0, 0.3, p.shape)
    return model


def collect(compute: Callable[..., Any], cases: Sequence[Case]) -> list[Any]:
    """``compute(params, x, y)`` on each case, as ``[loss, grads]`` pairs.

    Runs in the child process; the student gets copies, so nothing it changes
    reaches the next case.
    """
    results = []
    for model, x, y in cases:
        params = {k: v.copy() for k, v in model.params.items()}
        loss, grads = parts(compute(params, x.copy(), y.copy()), 2, "the result")
        results.append([loss, grads])
    return results


def _names_problem(got: set[str], want: set[str]) -> str | None:
    """What is wrong with the names of the gradients, or None."""
    missing, extra = sorted(want - got), sorted(got - want)
    if missing and all(n.endswith(".b") for n in missing):
        return (
            f"no gradient for {', '.join(missing)}: a bias gradient is dZ summed "
            "over the batch (BP3)"
        )
    if missing:
        return f"no gradient for {', '.join(missing)}"
    if extra:
        return f"gradients for {', '.join(extra)}, which are not parameters"
    return None


def judge_one(result: Any, case: Case, label: str, tolerance: float = 1e-10) -> float:
    """Compare one ``(loss, grads)`` with ``model.loss_and_grads``.

    Args:
        result: what the student's function returned for this case.
        case: ``(model, x, y)``, made again in the grader.
        label: what the student's values are called in a report.
        tolerance: the largest relative error of a gradient entry that passes.

    Returns:
        The largest relative error of a gradient entry.
    """
    model, x, y = case
    n = len(x)
    want_loss, want = model.loss_and_grads(x, y)
    loss_value, grads_value = parts(result, 2, "the result")
    loss = number_of(loss_value, "the loss")
    if math.isclose(loss, n * float(want_loss), rel_tol=1e-9):
        raise Wrong(
            f"loss {loss:.8f} is N = {n} times the engine's "
            f"{float(want_loss):.8f}: the mean over the batch, not the sum"
        )
    expect(
        math.isclose(loss, float(want_loss), rel_tol=max(tolerance, 1e-12)),
        f"loss {loss:.8f}, engine {float(want_loss):.8f}",
    )
    grads = dict_of(grads_value, "the gradients")
    problem = _names_problem(set(grads), set(want))
    if problem:
        raise Wrong(problem)
    return max(
        expect_same_gradient(
            grads[name],
            want[name],
            name,
            batch=n,
            labels=(label, "engine"),
            tolerance=tolerance,
        )
        for name in want
    )


def judge(results: Any, cases: Sequence[Case], label: str) -> str:
    """Compare each case's ``(loss, grads)`` with ``model.loss_and_grads``.

    Args:
        results: what ``collect`` sent back.
        cases: the same cases, made again in the grader.
        label: what the student's values are called in a report.

    Returns:
        The largest relative error, for the grader's line.
    """
    worst = 0.0
    for case, result in zip(cases, parts(results, len(cases), "the results")):
        try:
            worst = max(worst, judge_one(result, case, label))
        except Wrong as exc:
            raise Wrong(f"sizes {case[0].sizes}: {exc}") from None
    return f"max relative error {worst:.1e}"
