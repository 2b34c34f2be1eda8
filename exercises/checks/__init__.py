"""The checks of the graded exercises: one module per exercise, named after it.

Each module defines ``CHECKS``, a tuple of ``Check(description, run, judge)``
(``exercises.checks.core``): ``run`` calls the student's functions in the
grader's child process and returns what they gave back, ``judge`` compares
that with the expected values in the grader's own process.
``exercises.checks.mistakes`` compares arrays and names the known mistakes.
"""

from exercises.checks.core import Check, Wrong, expect

__all__ = ["Check", "Wrong", "expect"]
