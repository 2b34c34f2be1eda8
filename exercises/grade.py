"""Grade an exercise: run its checks and print what is right and what is wrong.

    python -m exercises.grade leaky_relu             # your exercises/leaky_relu.py
    python -m exercises.grade leaky_relu --solution  # the reference solution
    python -m exercises.grade --list                 # every exercise
    python -m exercises.grade all                    # all of yours, one line each

Exit status: 0 when every check passes, 1 when one fails or is not written
yet, 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from types import ModuleType
from typing import TextIO

from exercises.checks import EXERCISES, Exercise, Skipped, Wrong
from exercises.checks_conv import CONV_BACKWARD

EXERCISES[CONV_BACKWARD.name] = CONV_BACKWARD  # lecture 12's, in its own module


def load(name: str, solution: bool) -> ModuleType:
    """Import the student's module ``exercises.NAME`` (or the solution)."""
    package = "exercises.solutions" if solution else "exercises"
    return importlib.import_module(f"{package}.{name}")


def where_it_broke(exc: BaseException) -> str:
    """The last line of the traceback that is in the graded module."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "/exercises/" in f.filename and "checks.py" not in f.filename
    ]
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {f.filename.split('/exercises/')[-1]}:{f.lineno}: {f.line})"


def grade(
    exercise: Exercise, module: ModuleType, out: TextIO | None = None
) -> tuple[int, int]:
    """Run an exercise's checks on a module and print one verdict per check.

    Args:
        exercise: what to check.
        module: the student's (or the solution's) module.
        out: where to print (default: standard output).

    Returns:
        ``(passed, total)``; a skipped check counts as neither.
    """
    out = sys.stdout if out is None else out
    passed = total = 0
    for description, check in exercise.checks:
        try:
            detail = check(module)
        except Skipped as exc:
            print(f"  SKIP  {description}: {exc}", file=out)
            continue
        except NotImplementedError as exc:
            total += 1
            print(f"  TODO  {description}: not written yet ({exc})", file=out)
            continue
        except Wrong as exc:
            total += 1
            text = str(exc).replace("\n", "\n        ")
            print(f"  FAIL  {description}:\n        {text}", file=out)
            continue
        except Exception as exc:  # the student's code raised: show where
            total += 1
            print(
                f"  FAIL  {description}: raised {type(exc).__name__}: {exc}"
                f"{where_it_broke(exc)}",
                file=out,
            )
            continue
        total += 1
        passed += 1
        print(f"  PASS  {description}" + (f" ({detail})" if detail else ""), file=out)
    return passed, total


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags."""
    p = argparse.ArgumentParser(
        prog="python -m exercises.grade",
        description="Grade an exercise of the course notes with the gradient "
        "checker and tests.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "name",
        nargs="?",
        choices=[*EXERCISES, "all"],
        help="the exercise (its file is exercises/NAME.py), or all",
    )
    p.add_argument(
        "--solution",
        action="store_true",
        help="grade the reference solution in exercises/solutions/ instead",
    )
    p.add_argument("--list", action="store_true", help="list the exercises and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list or args.name is None:
        for e in EXERCISES.values():
            print(f"lecture {e.lecture}  {e.name:20s} {e.title}")
        return 0 if args.list else 2
    names = list(EXERCISES) if args.name == "all" else [args.name]
    all_passed = True
    for name in names:
        exercise = EXERCISES[name]
        where = f"exercises/{'solutions/' if args.solution else ''}{name}.py"
        print(f"grading {where} (lecture {exercise.lecture}: {exercise.title})")
        try:
            module = load(name, args.solution)
        except Exception as exc:  # a syntax error in the student's file
            print(f"  FAIL  {where} does not import: {type(exc).__name__}: {exc}")
            all_passed = False
            continue
        passed, total = grade(exercise, module)
        verdict = "all checks pass" if passed == total else "not yet"
        print(f"{passed} of {total} checks pass: {verdict}\n")
        all_passed &= passed == total
    return 0 if all_passed else 1


if __name__ == "__main__":
    sys.exit(main())
