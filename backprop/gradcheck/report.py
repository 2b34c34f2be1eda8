"""The report of a gradient check: the worst entry, both values, the verdict.

``compare`` turns two arrays of values (analytic and numerical, or any two
that should agree) into a ``GradCheckReport``; ``format_table`` prints a list
of them as the class-room table of ``python -m backprop.gradcheck``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backprop.gradcheck.numerical import _host_float64, relative_error

Array = Any  # a numpy.ndarray or cupy.ndarray
Index = tuple[int, ...]


def _format_index(index: Index | None) -> str:
    """``(3, 7)`` as ``[3, 7]``, the way it is typed to read the entry."""
    return "-" if index is None else "[" + ", ".join(str(i) for i in index) + "]"


@dataclass
class GradCheckReport:
    """The outcome of checking one array's gradient (or one parameter's update).

    Attributes:
        name: what was checked, e.g. ``"dense1.w"``.
        shape: shape of the array.
        dtype: dtype of the array.
        worst_index: the entry with the largest relative error, or None when no
            entry was compared.
        analytic: the backward pass's value at ``worst_index``.
        numerical: the finite difference (or reference) value there.
        rel_error: relative error at ``worst_index`` (inf for a shape mismatch).
        tolerance: the largest relative error that passes.
        floor: smallest denominator of the relative error (see module docstring).
        step: h of the central difference (0 when no difference was taken).
        passed: ``rel_error <= tolerance``.
        kinks: entries excluded because their step crossed a ReLU kink.
        checked: number of entries compared (kinks excluded).
        note: why the check could not compare values, e.g. a shape mismatch.
        labels: names of the two values, ``("analytic", "numerical")``.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    worst_index: Index | None
    analytic: float
    numerical: float
    rel_error: float
    tolerance: float
    floor: float
    step: float
    passed: bool
    kinks: list[Index] = field(default_factory=list)
    checked: int = 0
    note: str = ""
    labels: tuple[str, str] = ("analytic", "numerical")

    @property
    def size(self) -> int:
        """Number of entries of the array."""
        return math.prod(self.shape)

    @property
    def verdict(self) -> str:
        """``"PASS"`` or ``"FAIL"``."""
        return "PASS" if self.passed else "FAIL"

    def __str__(self) -> str:
        shape = "x".join(str(d) for d in self.shape) or "scalar"
        lines = [f"{self.name} ({shape}, {self.dtype}): {self.verdict}"]
        if self.note:
            lines.append(f"  {self.note}")
        if self.worst_index is not None:
            compare = "<=" if self.passed else ">"
            lines.append(
                f"  max relative error {self.rel_error:.2e} {compare} tolerance "
                f"{self.tolerance:.0e}, at {_format_index(self.worst_index)}"
            )
            width = max(len(label) for label in self.labels)
            lines.append(f"  {self.labels[0]:<{width}}  {self.analytic: .10e}")
            lines.append(f"  {self.labels[1]:<{width}}  {self.numerical: .10e}")
        if self.step:
            lines.append(
                f"  step h {self.step:.0e}; errors of entries below "
                f"{self.floor:.1e} are measured against {self.floor:.1e}"
            )
        checked = f"  checked {self.checked} of {self.size} entries"
        if self.kinks:
            shown = ", ".join(_format_index(k) for k in self.kinks[:5])
            more = ", ..." if len(self.kinks) > 5 else ""
            checked += (
                f"; {len(self.kinks)} skipped where the step crosses a ReLU "
                f"kink: {shown}{more}"
            )
        lines.append(checked)
        return "\n".join(lines)


def mismatch_report(
    name: str, x: Array, analytic: Array, tolerance: float, step: float
) -> GradCheckReport:
    """A failed report for an analytic gradient of the wrong shape."""
    return GradCheckReport(
        name=name,
        shape=tuple(x.shape),
        dtype=str(x.dtype),
        worst_index=None,
        analytic=math.nan,
        numerical=math.nan,
        rel_error=math.inf,
        tolerance=tolerance,
        floor=0.0,
        step=step,
        passed=False,
        note=(
            f"the {name} gradient has shape {tuple(analytic.shape)}, "
            f"but {name} has shape {tuple(x.shape)}"
        ),
    )


def compare(
    name: str,
    analytic: Array,
    numerical: np.ndarray,
    *,
    dtype: Any,
    tolerance: float,
    floor: float,
    step: float = 0.0,
    mask: np.ndarray | None = None,
    kinks: Sequence[Index] = (),
    labels: tuple[str, str] = ("analytic", "numerical"),
) -> GradCheckReport:
    """Build a report from two arrays of values.

    Args:
        name: what is being checked.
        analytic: values under test, any shape, any device.
        numerical: reference values, same shape (host float64).
        dtype: dtype of the checked array, for the report.
        tolerance: the largest relative error that passes.
        floor: smallest denominator of the relative error.
        step: h, for the report (0 when there was none).
        mask: boolean array, shape of ``analytic``; only True entries are
            compared (None compares all).
        kinks: entries excluded at ReLU kinks, for the report.
        labels: names of the two values in the report.

    Returns:
        The report; NaN in a compared entry counts as the worst error.
    """
    a = _host_float64(analytic)  # same shape as numerical
    errors = relative_error(a, numerical, floor)  # same shape
    errors = np.where(np.isnan(errors), np.inf, errors)
    if mask is None:
        mask = np.ones(errors.shape, dtype=bool)
    checked = int(mask.sum())
    if checked == 0:
        return GradCheckReport(
            name=name,
            shape=tuple(a.shape),
            dtype=str(np.dtype(dtype)),
            worst_index=None,
            analytic=math.nan,
            numerical=math.nan,
            rel_error=0.0,
            tolerance=tolerance,
            floor=floor,
            step=step,
            passed=True,
            kinks=list(kinks),
            note="no entry could be compared: every step crossed a ReLU kink",
            labels=labels,
        )
    worst = np.unravel_index(int(np.argmax(np.where(mask, errors, -1.0))), a.shape)
    worst = tuple(int(i) for i in worst)
    rel = float(errors[worst])
    return GradCheckReport(
        name=name,
        shape=tuple(a.shape),
        dtype=str(np.dtype(dtype)),
        worst_index=worst,
        analytic=float(a[worst]),
        numerical=float(numerical[worst]),
        rel_error=rel,
        tolerance=tolerance,
        floor=floor,
        step=step,
        passed=rel <= tolerance,
        kinks=list(kinks),
        checked=checked,
        labels=labels,
    )


def format_table(reports: Sequence[GradCheckReport]) -> str:
    """A table with one row per report: shape, entries, kinks, error, verdict.

    Args:
        reports: from ``check_model`` (or any of the checks).

    Returns:
        The table as text, with a header line and a closing summary line.
    """
    headers = ("parameter", "shape", "checked", "kinks", "max rel error", "result")
    rows = [
        (
            r.name,
            "x".join(str(d) for d in r.shape) or "scalar",
            str(r.checked),
            str(len(r.kinks)),
            "-" if r.worst_index is None and r.passed else f"{r.rel_error:.2e}",
            r.verdict,
        )
        for r in reports
    ]
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(6)]
    left = (True, False, False, False, False, True)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if is_left else c.rjust(w)
            for c, w, is_left in zip(cells, widths, left)
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(row) for row in rows]
    failed = [r.name for r in reports if not r.passed]
    if failed:
        out.append(f"FAILED: {', '.join(failed)}")
    else:
        out.append(f"all {len(reports)} parameters pass")
    return "\n".join(out)
