"""What the TensorFlow parity tests share: the error they measure, and its report.

``rel_err`` is the error of every comparison with TensorFlow, relative to the
reference's largest magnitude; ``Measured`` keeps the largest of each kind of
check, which the module prints after its tests (``pytest -s`` shows it), so
the numbers a lecture or a note quotes come from a run anyone can repeat.
"""

from __future__ import annotations

import numpy as np


def rel_err(engine, reference) -> float:
    """max |engine - reference| / max |reference| (0 when both are all zero)."""
    engine, reference = np.asarray(engine), np.asarray(reference)
    assert engine.shape == reference.shape
    scale = max(float(np.abs(reference).max(initial=0.0)), np.finfo(np.float64).tiny)
    return float(np.abs(engine.astype(np.float64) - reference).max(initial=0.0)) / scale


class Measured:
    """The largest error of each check of one test module."""

    def __init__(self) -> None:
        self.largest: dict[str, float] = {}

    def record(self, name: str, err: float) -> float:
        """Keep ``err`` if it is the largest of ``name`` so far; return it."""
        self.largest[name] = max(self.largest.get(name, 0.0), err)
        return err

    def report(self) -> None:
        """Print the largest error of every check."""
        if self.largest:
            print("\nlargest errors measured:")
            for name, err in sorted(self.largest.items()):
                print(f"  {name}: {err:.3g}")
