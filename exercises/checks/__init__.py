"""The checks of the graded exercises: one module per exercise, named after it.

Each module defines ``CHECKS``, a tuple of ``Check(description, run, judge)``
(``exercises.checks.core``): ``run`` calls the student's functions in the
grader's child process and returns what they gave back, ``judge`` compares
that with the expected values in the grader's own process.
``exercises.checks.mistakes`` compares arrays and names the known mistakes.
A module that is no exercise's holds what several checks share
(``core``, ``mistakes``, ``engine_gradients``), or the second half of one
exercise's checks (``tensor_ops``, ``tensor_graph``, for ``tensor_autodiff``).
"""

from exercises.checks.core import Check, Wrong, expect

__all__ = ["Check", "Wrong", "expect"]
