"""Solutions of the exercises.

Grade one with ``python -m exercises.grade NAME --solution``.
"""
