"""Lecture 12's graded exercise: the solution passes, the stub is all TODO, and
each planted slip is named, with its hint.

The checks run in this process (``exercises.runner.run_in_process``), with the
same round trip through ``exercises.wire`` as from the grader's child process.
A planted slip is the solution's ``conv2d_backward`` wrapped so that one
thing goes wrong, as it would in a student's.
"""

from __future__ import annotations

import importlib
import io
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from exercises import grade  # noqa: E402
from exercises.registry import EXERCISES  # noqa: E402
from exercises.runner import run_in_process  # noqa: E402

CHECKS = EXERCISES["conv_backward"].checks()
SOLUTION = importlib.import_module("exercises.solutions.conv_backward")


def run(module: types.ModuleType) -> tuple[int, str]:
    """Grade a module in this process: ``(passed, printed text)``."""
    out, passed = io.StringIO(), 0
    for j, outcome in run_in_process(CHECKS, module):
        word, text = grade.judged(CHECKS[j], outcome)
        grade.report(word, CHECKS[j].description, text, out)
        passed += word == "PASS"
    return passed, out.getvalue()


def planted(backward) -> types.ModuleType:
    """The solution module with ``conv2d_backward`` replaced."""
    module = types.ModuleType("planted_conv_backward")
    module.__dict__.update(vars(SOLUTION))
    module.conv2d_backward = backward
    return module


def report_of(text: str, check: str) -> str:
    """The lines printed for one failed check."""
    assert f"FAIL  {check}" in text, text
    return re.split(r"\n  (?=\S)", text[text.index(f"FAIL  {check}") :])[0]


def test_the_solution_passes_and_the_stub_is_all_todo():
    passed, text = run(SOLUTION)
    assert passed == len(CHECKS) == 4, text
    passed, text = run(importlib.import_module("exercises.conv_backward"))
    assert passed == 0 and text.count("  TODO  ") == 4, text


def test_it_is_registered_as_lecture_12_and_grades_in_a_child(capsys):
    exercise = EXERCISES["conv_backward"]
    assert (exercise.lecture, exercise.chapter) == (12, "12")
    assert list(EXERCISES)[-1] == "conv_backward"  # the last lecture's
    assert grade.main(["conv_backward", "--solution"]) == 0
    assert "4 of 4 checks pass: all checks pass" in capsys.readouterr().out


def test_a_flipped_kernel_is_named_with_its_hint():
    def flipped(dout, cache):
        xpad, w, *rest = cache
        dx, _, _ = SOLUTION.conv2d_backward(dout, (xpad, w[::-1, ::-1], *rest))
        _, dw, db = SOLUTION.conv2d_backward(dout, cache)
        return dx, dw, db

    passed, text = run(planted(flipped))
    assert passed == 2, text  # db and dw still right
    report = report_of(text, "dx: dout through the kernel, padding cropped")
    assert "hint: the kernel is flipped" in report
    assert re.search(r"dx\[0, \d+, \d+, \d+\] is \S+, the engine's is ", report)
    assert "entries differ (input (2, 5, 5, 1), kernel (3, 3, 1, 2)" in report
    assert "off by one" not in report


def test_a_padding_off_by_one_is_named_with_its_hint():
    def rounded_up(dout, cache):
        xpad, w, stride, top, left, x_shape = cache
        # the slip: ceil(pad_total / 2) on top, as if the extra row went first
        total = xpad.shape[1] - x_shape[1]  # pad_total of the rows
        wrong_top = (total + 1) // 2  # top is total // 2
        return SOLUTION.conv2d_backward(
            dout, (xpad, w, stride, wrong_top, left, x_shape)
        )

    passed, text = run(planted(rounded_up))
    assert passed == 2, text
    report = report_of(text, "dx: dout through the kernel, padding cropped")
    assert "the padding is off by one" in report and "+1 row(s)" in report
    assert "(input (2, 6, 7, 3), kernel (4, 4, 3, 2), stride 1" in report
    assert "kernel is flipped" not in report


def test_a_flipped_kernel_gradient_gets_its_hint():
    def dw_flipped(dout, cache):
        dx, dw, db = SOLUTION.conv2d_backward(dout, cache)
        return dx, dw[::-1, ::-1], db

    passed, text = run(planted(dw_flipped))
    assert passed == 2, text  # db and dx
    report = report_of(text, "dw: the input correlated with dout")
    assert "flipped in both directions" in report and "dw[" in report
    report = report_of(text, "passes the gradient checker")
    assert "the gradient checker disagrees" in report and "w (" in report


def test_a_wrong_shape_is_one_line():
    def no_channels(dout, cache):
        dx, dw, db = SOLUTION.conv2d_backward(dout, cache)
        return dx, dw, np.zeros(1)

    _, text = run(planted(no_channels))
    assert (
        "FAIL  db: dout summed over every position: db has shape (1,), expected (2,)"
        " (input (2, 5, 5, 1)" in text
    ), text
    assert "could not be checked" not in text


@pytest.mark.parametrize(
    "change, check, words",
    [
        (
            lambda dx, dw, db: (dx, dw, -db),
            "db: dout summed over every position",
            ["db[0] is", "with the sign flipped"],
        ),
        (
            lambda dx, dw, db: (dx, dw / 2, db),
            "dw: the input correlated with dout",
            ["0.5 times the expected values"],
        ),
        (
            lambda dx, dw, db: (np.where(dx > 1, np.nan, dx), dw, db),
            "dx: dout through the kernel, padding cropped",
            [" is nan, the engine's is "],
        ),
        (
            lambda dx, dw, db: (dx, dw, [db]),
            "db: dout summed over every position",
            ["db has shape (1, 2), expected (2,)"],
        ),
        (
            lambda dx, dw, db: (dx, None, db),
            "dw: the input correlated with dout",
            [
                "dw (input (2, 5, 5, 1), kernel (3, 3, 1, 2), stride 1, padding "
                "'valid') is None, expected an array of numbers"
            ],
        ),
    ],
    ids=["db-sign", "dw-half", "dx-nan", "db-extra-axis", "dw-none"],
)
def test_other_slips_name_their_entry_or_mistake(change, check, words):
    def wrong(dout, cache):
        return change(*SOLUTION.conv2d_backward(dout, cache))

    passed, text = run(planted(wrong))
    assert passed < len(CHECKS)
    report = report_of(text, check)
    for word in words:
        assert word in report, f"{word!r} not in:\n{report}"
    assert "could not be checked" not in text, text


def test_a_backward_that_returns_two_arrays_is_named():
    def pair(dout, cache):
        dx, dw, _ = SOLUTION.conv2d_backward(dout, cache)
        return dx, dw

    passed, text = run(planted(pair))
    assert passed == 0
    assert "conv2d_backward's result is a tuple of 2, expected a tuple of 3" in text
