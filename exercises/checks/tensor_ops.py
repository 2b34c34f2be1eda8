"""Both halves of checking one operation of lab 7a's ``Tensor``, alone.

In the child process, ``backward_twice`` sets ``out.grad`` to a given upstream
gradient and calls ``out._backward()`` twice (gradients must accumulate),
keeping a copy of every input's ``grad`` after each call, or the
``ValueError`` NumPy raised when it could not add two shapes.

In the grader's process, ``shaped`` checks a returned array's shape before any
arithmetic, so a wrong shape is named with both shapes, never reported as an
error in the checks; ``judge_values`` compares with the expected values and
names a known mistake, a flipped sign, or how far off the answer is;
``first_call`` and ``accumulates`` read what ``backward_twice`` sent back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from exercises.checks.core import Wrong, array_of, dict_of, expect, kind

RTOL, ATOL = 1e-9, 1e-12  # one operation, two ways of writing it: rounding only
ACCUMULATE = (
    "gradients overwritten instead of accumulated: add to it with += (a "
    "Tensor used twice gets the sum of both gradients)"
)


# --- in the child process ------------------------------------------------------------


def snapshot(value: Any) -> Any:
    """A copy of an array that the student's code may later change in place."""
    return value.copy() if isinstance(value, np.ndarray) else value


def backward_twice(out: Any, upstream: np.ndarray, inputs: dict[str, Any]) -> dict:
    """Set ``out.grad`` and call ``out._backward()``, twice.

    Args:
        out: the Tensor an operation made.
        upstream: the gradient to set as ``out.grad``, of ``out``'s shape.
        inputs: the operation's input Tensors by name, e.g. ``{"A": a}``.

    Returns:
        ``{"grads": [...], "error": ...}``: each input's ``grad`` after each
        call that returned, and the message of a ``ValueError`` (None if none).
    """
    calls: list[dict[str, Any]] = []
    for _ in range(2):
        out.grad = upstream.copy()
        try:
            out._backward()
        except ValueError as exc:  # NumPy refused to add arrays of different shapes
            return {"grads": calls, "error": str(exc)[:300]}
        calls.append({name: snapshot(t.grad) for name, t in inputs.items()})
    return {"grads": calls, "error": None}


def attempt(step: Callable[[], Any]) -> dict[str, Any]:
    """``{"value": step()}``, or ``{"error": "TypeError: ..."}`` if it raised.

    For a later part of a check, so that a mistake in an earlier part is
    reported first; a step not written yet is still a TODO.
    """
    try:
        return {"value": step()}
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - the student's code may raise anything
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}


# --- in the grader's process ------------------------------------------------------


def close(got: np.ndarray, want: np.ndarray) -> bool:
    """Same shape, and equal up to rounding."""
    return got.shape == want.shape and bool(np.allclose(got, want, RTOL, ATOL))


def shaped(value: Any, shape: tuple[int, ...], what: str, hint: str) -> np.ndarray:
    """``value`` as a float64 array of ``shape``, or ``Wrong`` naming both shapes."""
    array = array_of(value, what)
    expect(array.dtype.kind != "c", f"{what} holds complex numbers")
    expect(
        array.shape == tuple(shape),
        f"{what} has shape {array.shape}, expected {tuple(shape)}: {hint}",
    )
    return array.astype(np.float64)


def judge_values(
    got: np.ndarray,
    want: np.ndarray,
    what: str,
    known: Iterable[tuple[Any, str]] = (),
) -> None:
    """``got`` must be ``want``; else name a ``known`` mistake, a sign, or how far.

    Args:
        got: the student's values, already of ``want``'s shape.
        want: the expected values.
        what: what they are, to begin the message.
        known: ``(values, message)`` of the known mistakes.
    """
    if close(got, want):
        return
    for wrong, message in known:
        if close(got, np.asarray(wrong, dtype=np.float64)):
            raise Wrong(f"{what}: {message}")
    if close(got, -want):
        raise Wrong(f"{what}: a flipped sign")
    raise Wrong(f"{what}: off by up to {float(np.abs(got - want).max()):.3g}")


def _calls(result: Any) -> tuple[list[Any], Any]:
    """The gradients after each call, and the error, of ``backward_twice``."""
    result = dict_of(result, "the results")
    calls = result.get("grads")
    if not isinstance(calls, list):
        raise Wrong(f"the gradients are {kind(calls)}, expected a list")
    return calls, result.get("error")


def first_call(result: Any, op: str, hint: str) -> dict[str, Any]:
    """The inputs' gradients after the first ``_backward`` call.

    Raises:
        Wrong: that call raised ``ValueError``; ``hint`` says what shapes
            the gradients must have.
    """
    calls, error = _calls(result)
    if not calls:
        raise Wrong(f"{op}: backward raised ValueError ({error}): {hint}")
    return dict_of(calls[0], "the gradients")


def accumulates(result: Any, op: str) -> None:
    """A second ``_backward`` call must have added the same gradients again."""
    calls, error = _calls(result)
    if len(calls) < 2:
        raise Wrong(
            f"{op}, called again: backward raised ValueError ({error}): "
            "the shapes changed"
        )
    once, twice = (dict_of(c, "the gradients") for c in calls[:2])
    for name, value in once.items():
        first = array_of(value, f"{name}.grad").astype(np.float64)
        second = array_of(twice.get(name), f"{name}.grad").astype(np.float64)
        one = f"{op}: after _backward ran twice, {name}.grad holds one gradient"
        expect(close(second, 2 * first), f"{one}: {ACCUMULATE}")


# --- the expected values ------------------------------------------------------------


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``grad`` summed over the axes broadcasting added or stretched to ``shape``."""
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    stretched = tuple(k for k, n in enumerate(shape) if n == 1)
    return grad.sum(axis=stretched, keepdims=True).reshape(shape)


def mean_for_sum(grad: np.ndarray, shape: tuple[int, ...], hint: str) -> list:
    """The mistake of averaging over the broadcast axes, as a ``known`` pair."""
    copies = grad.size // max(math.prod(shape), 1)
    message = f"the mean over the broadcast axes, not the sum ({hint})"
    return [(unbroadcast(grad, shape) / copies, message)] if copies > 1 else []


def log_softmax(z: np.ndarray, axis: int = 1) -> np.ndarray:
    """Log-probabilities along ``axis``, computed stably."""
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
