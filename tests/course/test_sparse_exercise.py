"""Lecture 9's graded exercise ``sparse_forward``: the solution passes, the stub
is all TODO, and each planted mistake is named by its hint.

The checks run in this process (``exercises.runner.run_in_process``), with the
same round trip through ``exercises.wire`` as from the grader's child process.
A planted mistake is the reference solution with one line changed, as a student
would write it, loaded from a temporary file.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import load_file_as_module

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from exercises import grade  # noqa: E402
from exercises.registry import EXERCISES  # noqa: E402
from exercises.runner import run_in_process  # noqa: E402

SOLUTION = ROOT / "exercises" / "solutions" / "sparse_forward.py"
CHECKS = EXERCISES["sparse_forward"].checks()
COMPRESS, FORWARD, EMPTY = (c.description for c in CHECKS)


def run(module: types.ModuleType) -> tuple[int, str]:
    """Grade a module in this process: ``(passed, printed text)``."""
    out, passed = io.StringIO(), 0
    for j, outcome in run_in_process(CHECKS, module):
        word, text = grade.judged(CHECKS[j], outcome)
        grade.report(word, CHECKS[j].description, text, out)
        passed += word == "PASS"
    return passed, out.getvalue()


def planted(tmp_path: Path, old: str, new: str) -> types.ModuleType:
    """The solution with the line ``old`` (found once) replaced by ``new``."""
    source = SOLUTION.read_text()
    assert source.count(old) == 1, f"{old!r} is not a line of the solution"
    path = tmp_path / "exercises" / "sparse_forward.py"  # where a student's is
    path.parent.mkdir()
    path.write_text(source.replace(old, new))
    return load_file_as_module(path, "planted_sparse_forward")


def report_of(text: str, check: str) -> str:
    """The lines printed for one failed check."""
    assert f"FAIL  {check}" in text, text
    return re.split(r"\n  (?=\S)", text[text.index(f"FAIL  {check}") :])[0]


def test_the_solution_passes_and_the_stub_is_all_todo():
    passed, text = run(importlib.import_module("exercises.solutions.sparse_forward"))
    assert passed == len(CHECKS) == 3, text
    passed, text = run(importlib.import_module("exercises.sparse_forward"))
    assert passed == 0 and text.count("  TODO  ") == 3, text


def test_it_is_registered_in_lecture_9_and_grades_in_a_child(capsys):
    assert EXERCISES["sparse_forward"].chapter == "9"
    names = list(EXERCISES)
    assert names.index("flops") < names.index("sparse_forward")
    assert names.index("sparse_forward") < names.index("sanity_checks")
    assert grade.main(["sparse_forward", "--solution"]) == 0
    assert "3 of 3 checks pass: all checks pass" in capsys.readouterr().out


INDPTR = "indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)"
RETURN = "return indptr, cols.astype(np.int64), x[rows, cols]"
NONZERO = "rows, cols = np.nonzero(x)"
LOOP = "for k in range(indptr[r], indptr[r + 1]):"
ADD = "out[i, :] += values[k] * w[indices[k], :]"
ZEROS = "out = np.zeros((len(rows), w.shape[1]), dtype=w.dtype)"

# Each mistake: the line changed, what it becomes, the checks that fail, and
# words of the first one's report.
MISTAKES = {
    "indptr without its leading 0": (
        INDPTR,
        "indptr = np.cumsum(counts).astype(np.int64)",
        [COMPRESS],
        ["indptr has 9 entries, not N + 1 = 10", "the leading 0 is missing"],
    ),
    "indptr holds the counts": (
        INDPTR,
        "indptr = np.concatenate([[0], counts]).astype(np.int64)",
        [COMPRESS],
        ["indptr holds each row's count", "running sum"],
    ),
    "indptr of floats": (
        INDPTR,
        "indptr = np.concatenate([[0.0], np.cumsum(counts)])",
        [COMPRESS],
        ["indptr holds float64 entries, expected integers", ".astype(np.int64)"],
    ),
    "indices hold the rows": (
        RETURN,
        "return indptr, rows.astype(np.int64), x[rows, cols]",
        [COMPRESS],
        ["indices holds each entry's row; it must hold its column"],
    ),
    "column-major order": (
        NONZERO,
        "cols, rows = np.nonzero(x.T)",
        [COMPRESS],
        ["column-major order", "np.nonzero(x.T)", "row by row"],
    ),
    "values in another order": (
        RETURN,
        "return indptr, cols.astype(np.int64), np.sort(x[rows, cols])",
        [COMPRESS],
        ["putting the entries back does not give x (row 0 differs)", "own column"],
    ),
    "image i, not image rows[i]": (
        LOOP,
        "for k in range(indptr[i], indptr[i + 1]):",
        [EMPTY, FORWARD],
        ["empty image (rows[0] = 2) gave", "image 0's product", "not rows[i]'s"],
    ),
    "assigned, not added": (
        ADD,
        "out[i, :] = values[k] * w[indices[k], :]",
        [FORWARD],
        ["rows [0, 1, 2, 3]: largest error", "only each image's last pixel counts"],
    ),
    "one entry past the row's end": (
        LOOP,
        "for k in range(indptr[r], min(indptr[r + 1] + 1, len(values))):",
        [FORWARD, EMPTY],
        ["rows [0, 1, 2, 3]", "also took the next one's first pixel"],
    ),
    "image i (the dense check)": (
        LOOP,
        "for k in range(indptr[i], indptr[i + 1]):",
        [FORWARD, EMPTY],
        ["rows [2]: largest error", "image i's pixels were used, not image rows[i]"],
    ),
    "out in float64": (
        ZEROS,
        "out = np.zeros((len(rows), w.shape[1]))",
        [EMPTY],
        ["dtype float64, expected float32", "dtype=w.dtype"],
    ),
    "out from np.ones": (
        ZEROS,
        "out = np.ones((len(rows), w.shape[1]), dtype=w.dtype)",
        [EMPTY, FORWARD],
        ["the empty image (rows[0] = 2) gave [1. 1. 1.]", "starts from zeros"],
    ),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_planted_mistake_is_named(mistake, tmp_path):
    old, new, checks, words = MISTAKES[mistake]
    passed, text = run(planted(tmp_path, old, new))
    assert passed == len(CHECKS) - len(checks), text
    report = report_of(text, checks[0])
    for check in checks[1:]:
        report_of(text, check)
    for word in words:
        assert word in report, f"{word!r} not in:\n{report}"
    assert "could not be checked" not in text, text


def test_an_error_in_a_later_case_comes_after_the_first_cases_verdict(tmp_path):
    """Reading past the end raises on the last image; the first case still
    gets its hint, and the error is named with the case it happened in."""
    module = planted(tmp_path, LOOP, "for k in range(indptr[r], indptr[r + 1] + 1):")
    with np.errstate(all="ignore"):
        _, text = run(module)
    assert "also took the next one's first pixel" in report_of(text, FORWARD)

    solution = importlib.import_module("exercises.solutions.sparse_forward")

    def fails_on_one_row(indptr, indices, values, rows, w):
        if len(rows) == 1:
            raise IndexError("index 9 is out of bounds")
        return solution.sparse_forward(indptr, indices, values, rows, w)

    module = types.ModuleType("planted_sparse_forward")
    module.__dict__.update(vars(solution))
    module.sparse_forward = fails_on_one_row
    _, text = run(module)
    assert (
        "FAIL  sparse_forward equals the dense product: rows [2]: raised "
        "IndexError: index 9 is out of bounds" in text
    ), text
