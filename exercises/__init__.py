"""Exercises of the course notes (docs/), graded by ``python -m exercises.grade``.

Each module here is a stub a student edits: its functions raise
``NotImplementedError`` until they are written. The solutions live apart, in
``exercises/solutions/``, and ``python -m exercises.grade NAME --solution``
grades them, which is how the test suite knows every exercise can be passed.

The grader: ``grade`` (the command), ``registry`` (the list of exercises),
``checks/`` (one module of checks per exercise), and ``runner``, ``worker`` and
``wire``, which run a student's file in a child process and bring back what
its functions returned, as data.
"""
