"""Grade an exercise: run its checks and print what is right and what is wrong.

    python -m exercises.grade leaky_relu             # your exercises/leaky_relu.py
    python -m exercises.grade leaky_relu --solution  # the reference solution
    python -m exercises.grade leaky_relu --file alice/leaky_relu.py  # any file
    python -m exercises.grade --list                 # every exercise
    python -m exercises.grade all                    # all of yours, and a tally

Exit status: 0 when every check passes; 1 when one fails, is not written yet,
or could not be graded; 2 for a bad command line; 130 after Ctrl-C.

How it works: the student's file is never imported here. Each exercise runs in
a child process (``exercises.runner``, ``exercises.worker``) that calls the
student's functions and sends back what they returned, as data; each check's
expected values are computed and compared in this process
(``exercises.checks``). A check that runs past ``--time-limit``, a file that
calls ``sys.exit`` or crashes, costs that check (or, at import, the exercise),
and grading goes on.

Adding an exercise (e.g. ``conv_backward``) takes two things besides the stub
``exercises/conv_backward.py`` and its solution
``exercises/solutions/conv_backward.py``:

1. an entry in ``exercises/registry.py``:
   ``Exercise("conv_backward", 12, "the backward pass of a convolution")``;
2. a module ``exercises/checks/conv_backward.py`` that defines ``CHECKS``, a
   tuple of ``Check(description, run, judge)``: ``run(module)`` calls the
   student's functions and returns their results (arrays, numbers, lists and
   dicts of them), ``judge(outputs)`` recomputes the inputs from the same
   seeds, compares with the expected values (``exercises.checks.mistakes``
   names shape mismatches and the known mistakes) and raises ``Wrong`` or
   returns a short detail. ``tests/course/test_exercises.py`` then grades the
   solution (every check must pass) and the stub (every check must be TODO).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib.util
import re
import signal
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from exercises.registry import EXERCISES, Exercise

if TYPE_CHECKING:  # the runner imports NumPy: not before Ctrl-C is handled
    from exercises.runner import Outcome

HERE = Path(__file__).resolve().parent
PROG = "python -m exercises.grade"
DEFAULT_LIMIT = 60.0  # seconds for the import and for each check
SHOWN_PRINTS = 10  # lines of the student's own output shown after the checks
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x1b]")


def clean(text: str) -> str:
    """A message from the student's process without terminal control codes."""
    return _CONTROL.sub("?", text)


@dataclass
class Result:
    """How one exercise went.

    Attributes:
        passed: checks that passed.
        total: checks graded (a skipped one counts as neither).
        graded: False when the exercise could not be graded here.
        reason: why not, when it was not.
    """

    passed: int
    total: int
    graded: bool = True
    reason: str = ""

    @property
    def ok(self) -> bool:
        """Graded, and every check passed."""
        return self.graded and self.total > 0 and self.passed == self.total


def judged(check: Any, outcome: Outcome) -> tuple[str, str]:
    """The verdict on one check: ``(word, text)``, the word PASS, FAIL or TODO."""
    from exercises.checks.core import Wrong

    if outcome.status == "todo":
        return "TODO", f"not written yet ({outcome.message})"
    if outcome.status != "outputs":
        return "FAIL", outcome.message
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import numpy as np

            with np.errstate(all="ignore"):
                detail = check.judge(outcome.value)
    except NotImplementedError as exc:
        return "TODO", f"not written yet ({exc})"
    except Wrong as exc:
        return "FAIL", str(exc)
    except Exception as exc:  # noqa: BLE001 - a result of an unexpected form
        return "FAIL", (
            f"what your code returned could not be checked "
            f"({type(exc).__name__}: {exc})"
        )
    return "PASS", str(detail) if detail else ""


def report(word: str, description: str, text: str, out: TextIO) -> None:
    """Print one check's verdict; a long text goes on indented lines."""
    text = clean(text)
    if word == "PASS":
        print(f"  PASS  {description}" + (f" ({text})" if text else ""), file=out)
    elif "\n" in text:
        text = text.replace("\n", "\n        ")
        print(f"  {word}  {description}:\n        {text}", file=out)
    else:
        print(f"  {word}  {description}: {text}", file=out)


def missing_needs(exercise: Exercise) -> list[str]:
    """The optional packages this exercise needs that are not installed."""
    return [p for p in exercise.needs if importlib.util.find_spec(p) is None]


def grade_file(
    exercise: Exercise,
    source: Path,
    label: str,
    limit: float = DEFAULT_LIMIT,
    out: TextIO | None = None,
) -> Result:
    """Grade one file as ``exercise`` and print a line per check and a summary.

    Args:
        exercise: what to check.
        source: the student's (or the solution's) file.
        label: how to name it, e.g. ``exercises/leaky_relu.py``.
        limit: seconds its import, and each check, may take.
        out: where to print (default: standard output).
    """
    out = sys.stdout if out is None else out
    print(f"grading {label} (lecture {exercise.chapter}: {exercise.title})", file=out)
    missing = missing_needs(exercise)
    if missing:
        reason = f"needs {', '.join(missing)} (pip install -e '.[tf]')"
        if missing != ["tensorflow"]:
            reason = f"needs {', '.join(missing)}, which is not installed"
        print(f"  SKIP  not graded: {reason}\n", file=out)
        return Result(0, 0, graded=False, reason=reason)
    checks = exercise.checks()
    if not source.is_file():
        print(f"  FAIL  {label} is missing", file=out)
        print(f"0 of {len(checks)} checks pass: not yet\n", file=out)
        return Result(0, len(checks))
    from exercises.runner import ImportFailed, StartFailed, run_checks

    passed, printed = 0, []
    results = run_checks(exercise.name, str(source), label, len(checks), limit, printed)
    try:
        with contextlib.closing(results):
            for j, outcome in results:
                word, text = judged(checks[j], outcome)
                report(word, checks[j].description, text, out)
                passed += word == "PASS"
    except ImportFailed as exc:
        print(f"  FAIL  {label} could not be imported: {clean(str(exc))}", file=out)
    except StartFailed as exc:
        print(f"  SKIP  not graded: {clean(str(exc))}\n", file=out)
        return Result(0, 0, graded=False, reason="the grader could not start")
    show_printed(printed, out)
    verdict = "all checks pass" if passed == len(checks) else "not yet"
    print(f"{passed} of {len(checks)} checks pass: {verdict}\n", file=out)
    return Result(passed, len(checks))


def show_printed(lines: list[str], out: TextIO) -> None:
    """The first lines the student's code printed, marked as such."""
    if not lines:
        return
    more = f" (the first {SHOWN_PRINTS} of {len(lines)} lines)"
    print(f"  your code printed{more if len(lines) > SHOWN_PRINTS else ''}:", file=out)
    for line in lines[:SHOWN_PRINTS]:
        print(f"    | {clean(line)[:200]}", file=out)


def tally(results: dict[str, Result], out: TextIO) -> None:
    """The closing line of ``grade all``: how many pass, which fail, which not."""
    passing = [n for n, r in results.items() if r.ok]
    failing = [n for n, r in results.items() if r.graded and not r.ok]
    skipped = [f"{n} ({r.reason})" for n, r in results.items() if not r.graded]
    line = f"tally: {len(passing)} of {len(results)} exercises pass"
    if failing:
        line += f"; not yet: {', '.join(failing)}"
    if skipped:
        line += f"; not graded: {', '.join(skipped)}"
    print(line, file=out)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line."""

    def error(self, message: str) -> NoReturn:
        print(f"{PROG}: {message} (--help shows the options)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags."""
    p = _Parser(
        prog=PROG,
        description="Grade an exercise of the course notes: its checks run your "
        "code in a separate process and compare what it returns with the "
        "expected values.",
    )
    p.add_argument("name", nargs="?", help="the exercise (exercises/NAME.py), or all")
    p.add_argument(
        "--solution",
        action="store_true",
        help="grade the reference solution in exercises/solutions/ instead",
    )
    p.add_argument(
        "--file", type=Path, help="grade this file instead of exercises/NAME.py"
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_LIMIT,
        metavar="SECONDS",
        help=f"seconds the import and each check may take (default {DEFAULT_LIMIT:g})",
    )
    p.add_argument("--list", action="store_true", help="list the exercises and exit")
    return p


def list_exercises(out: TextIO) -> None:
    """One line per exercise."""
    for e in EXERCISES.values():
        print(f"lecture {e.chapter:<2}  {e.name:20s} {e.title}", file=out)


def _usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with a command line argparse accepted, or None."""
    if args.name not in (*EXERCISES, "all"):
        close = difflib.get_close_matches(args.name, list(EXERCISES), n=1)
        maybe = f" (did you mean {close[0]}?)" if close else ""
        return f"no exercise named {args.name!r}{maybe}; --list shows them all"
    if args.file is not None and (args.name == "all" or args.solution):
        return "--file grades one exercise, and not with --solution"
    if args.file is not None and not args.file.is_file():
        return f"{args.file}: no such file"
    if not 0 < args.time_limit < 86400:
        return "--time-limit must be a number of seconds above 0"
    return None


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.list:
        list_exercises(sys.stdout)
        return 0
    if args.name is None:
        list_exercises(sys.stdout)
        print(
            f"\ngrade one with `{PROG} NAME` (e.g. `{PROG} leaky_relu`), "
            f"all of yours with `{PROG} all`",
        )
        return 2
    problem = _usage_problem(args)
    if problem:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return 2
    names = list(EXERCISES) if args.name == "all" else [args.name]
    if args.name == "all":  # every judge ready before any student code runs
        for name in names:
            if not missing_needs(EXERCISES[name]):
                EXERCISES[name].checks()
    results = {}
    for name in names:
        if args.file is not None:
            source, label = args.file, str(args.file)
        else:
            folder = "solutions/" if args.solution else ""
            source, label = HERE / folder / f"{name}.py", f"exercises/{folder}{name}.py"
        results[name] = grade_file(EXERCISES[name], source, label, args.time_limit)
    if len(results) > 1:
        tally(results, sys.stdout)
    return 0 if all(r.ok for r in results.values()) else 1


class _Terminated(Exception):
    """SIGTERM arrived."""


def _on_sigterm(*_: object) -> NoReturn:
    raise _Terminated


def run() -> int:
    """``main`` with Ctrl-C and SIGTERM as one line each, and no traceback."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        sys.stdout.reconfigure(line_buffering=True)  # each verdict as it comes
        return main()
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (Ctrl-C); grading stopped", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"{PROG}: terminated; grading stopped", file=sys.stderr)
        return 143


if __name__ == "__main__":
    sys.exit(run())
