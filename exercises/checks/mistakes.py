"""Compare a student's array with the expected one, and name a known mistake.

A wrong answer is rarely random. The usual slips leave a signature that the
comparison can recognise and name, so the student reads the cause, not only
the symptom:

* the shape of the transpose (``dW`` computed as ``dZ^T X``), or the values
  of the transpose for a square matrix;
* a flipped sign (``Y - P`` for ``P - Y``);
* exactly N times the expected values (the division by the batch size N
  forgotten), or 1/N of them (divided twice);
* another constant factor (a forgotten 1/2, a doubled term);
* all zeros (a gradient never filled in), or one row per example where the
  sum over the batch belongs (a bias gradient not summed);
* NaN or infinity where the expected values are finite.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop import gradcheck
from exercises.checks.core import Wrong, array_of


def _index(flat: int, shape: tuple[int, ...]) -> str:
    """A flat index as ``[i, j]``."""
    if not shape:
        return ""
    return " at [" + ", ".join(str(int(i)) for i in np.unravel_index(flat, shape)) + "]"


def shape_problem(
    got: tuple[int, ...], want: tuple[int, ...], batch: int | None = None
) -> str | None:
    """What is wrong with a shape, or None when it is right.

    Args:
        got: the student's shape.
        want: the expected shape.
        batch: N, when the array is a gradient summed over a batch.
    """
    got, want = tuple(got), tuple(want)
    if got == want:
        return None
    text = f"shape {got}, expected {want}"
    if len(want) == 2 and got == want[::-1]:
        return text + ": the transpose's shape (a gradient has the shape of its array)"
    if batch and got == (batch, *want):
        return text + ": one row per example; sum over the batch (axis 0)"
    if np.prod(got, dtype=np.int64) == np.prod(want, dtype=np.int64):
        if tuple(d for d in got if d != 1) == tuple(d for d in want if d != 1):
            return text + ": an axis of length 1 too many or too few (keepdims?)"
        return text + ": the right number of entries in another arrangement"
    return text


def diagnose(got: np.ndarray, want: np.ndarray, batch: int | None = None) -> str | None:
    """Name the known mistake that turns ``want`` into ``got``, if one does.

    Args:
        got: the student's values, shape of ``want``.
        want: the expected values.
        batch: N, when a factor of N is a likely mistake.

    Returns:
        A sentence such as "it is exactly N = 7 times the expected values: ...",
        or None when no known mistake fits.
    """
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape or not np.isfinite(got).all() or not want.any():
        return None
    scale = float(np.abs(want).max())

    def same(a: np.ndarray, b: np.ndarray) -> bool:
        return bool(np.allclose(a, b, rtol=1e-6, atol=1e-9 * scale))

    if not got.any():
        return "it is all zeros: was this gradient left out?"
    if want.ndim == 2 and want.shape[0] == want.shape[1] and not same(want, want.T):
        if same(got, want.T):
            return "it is the transpose of the expected values (mind the order)"
    if same(got, -want):
        return "it is the expected values with the sign flipped"
    if batch and batch > 1:
        if same(got, want * batch):
            return (
                f"it is exactly N = {batch} times the expected values: "
                "a division by the batch size N is missing"
            )
        if same(got, want / batch):
            return (
                f"it is exactly 1/N = 1/{batch} of the expected values: "
                "divided by the batch size N once too often"
            )
    factor = float((got * want).sum() / (want * want).sum())
    if same(got, factor * want) and not np.isclose(factor, 1.0, rtol=1e-6):
        return f"it is {factor:.6g} times the expected values: a constant factor is off"
    return None


def nan_problem(got: np.ndarray, want: np.ndarray) -> str | None:
    """Say where ``got`` holds NaN or infinity that ``want`` does not."""
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(got) & np.isfinite(want)
    if not bad.any():
        return None
    flat = int(np.argmax(bad.ravel()))
    value = got.ravel()[flat]
    what = "NaN" if np.isnan(value) else "infinity"
    return f"contains {what}{_index(flat, got.shape)} ({int(bad.sum())} entries)"


def checked_array(
    value: Any, want: np.ndarray, what: str, batch: int | None = None
) -> np.ndarray:
    """The student's array, after its shape and finiteness are checked.

    Raises:
        Wrong: not an array, the wrong shape (named, with both shapes), or
            NaN or infinity where the expected values are finite.
    """
    got = array_of(value, what)
    problem = shape_problem(got.shape, want.shape, batch)
    if problem:
        raise Wrong(f"{what}: {problem}")
    if got.dtype.kind == "c":
        raise Wrong(f"{what} holds complex numbers")
    problem = nan_problem(got.astype(np.float64), np.asarray(want, np.float64))
    if problem:
        raise Wrong(f"{what} {problem}")
    return got


def expect_close(
    value: Any,
    want: Any,
    what: str,
    *,
    rtol: float = 1e-9,
    atol: float = 1e-12,
    batch: int | None = None,
    hint: str = "",
) -> np.ndarray:
    """Fail unless the student's array equals ``want`` within tolerance.

    The failure names the shape problem, or the worst entry with both values,
    and the known mistake that explains the difference when one does.

    Args:
        value: what came back from the student's code.
        want: the expected values.
        what: the name of the array in the message, e.g. ``"dense1.w"``.
        rtol: relative tolerance.
        atol: absolute tolerance.
        batch: N, when a factor of N is a likely mistake.
        hint: a sentence added when no known mistake explains the difference.

    Returns:
        The student's array.
    """
    want = np.asarray(want)
    got = checked_array(value, want, what, batch)
    g, w = got.astype(np.float64), want.astype(np.float64)
    if np.allclose(g, w, rtol=rtol, atol=atol):
        return got
    diff = np.abs(g - w)
    flat = int(np.argmax(diff.ravel()))
    where = _index(flat, got.shape)
    message = (
        f"{what} differs from the expected values by up to {diff.max():.3g}"
        f"{where}: yours {g.ravel()[flat]:.8g}, expected {w.ravel()[flat]:.8g}"
    )
    mistake = diagnose(g, w, batch) or hint
    raise Wrong(message + (f"; {mistake}" if mistake else ""))


def expect_same_gradient(
    value: Any,
    want: np.ndarray,
    name: str,
    *,
    batch: int | None = None,
    labels: tuple[str, str] = ("yours", "engine"),
    tolerance: float = 1e-10,
    floor: float = 1e-12,
) -> float:
    """Compare a gradient with a reference in the gradient checker's report.

    Returns:
        The relative error of the worst entry.
    """
    got = checked_array(value, want, name, batch)
    report = gradcheck.compare(
        name,
        got.astype(np.float64),
        np.asarray(want, np.float64),
        dtype=np.float64,
        tolerance=tolerance,
        floor=floor,
        labels=labels,
    )
    if report.passed:
        return report.rel_error
    mistake = diagnose(got, want, batch)
    raise Wrong(str(report) + (f"\n{name}: {mistake}" if mistake else ""))


def expect_reports(
    reports: list[gradcheck.GradCheckReport],
    got: dict[str, Any] | None = None,
    want: dict[str, np.ndarray] | None = None,
    batch: int | None = None,
) -> str:
    """Fail with the first failing gradient-check report; else summarise.

    Args:
        reports: from ``gradcheck``, run in the grader on the true function
            with the student's gradients.
        got: the student's gradients by name, for the diagnosis.
        want: the true gradients by name, for the diagnosis.
        batch: N, when a factor of N is a likely mistake.

    Returns:
        ``"max relative error ..."`` for the grader's line.
    """
    for report in reports:
        if report.passed:
            continue
        text = "the gradient checker disagrees:\n" + str(report)
        if got is not None and want is not None and report.name in want:
            mistake = diagnose(got[report.name], want[report.name], batch)
            text += f"\n{report.name}: {mistake}" if mistake else ""
        raise Wrong(text)
    return f"max relative error {max(r.rel_error for r in reports):.1e}"
