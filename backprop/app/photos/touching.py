"""Split digits that touch: one piece of ink as wide as several digits.

``backprop.app.photos.segment`` cuts ink into connected pieces, so two digits
written so close that their strokes touch come out as one piece. Such a
piece is told by its width:

1. a digit is at most about as wide as it is tall (of MNIST's first 3,000
   test digits 1.7% are more than 1.2 times as wide as tall, 0.7% more than
   1.3 times), so a piece more than ``WIDE`` times as wide as tall
   holds several; so does one more than ``SOMEWHAT`` times as wide as tall
   whose width over height is ``NEIGHBOURS`` times the median of the other
   digits' (at least two of them) in the number;
2. it holds ``round(width / (DIGIT_WIDTH * height))`` digits, at least two;
3. it is cut at the minima of its vertical projection (the ink summed down
   each column), each cut searched for within ``WINDOW`` of a digit's width
   around where equal widths would put it;
4. a cut through more ink than ``CUT_INK`` of the fullest column's, or a
   part with fewer than ``MIN_PIXELS`` pixels of ink, is no clean cut: the
   piece is kept whole and marked as not split (``Digit.touching``), to be
   reported, never read as one digit nor dropped.

Two touching digits no wider than one (a 1 beside another digit) are not
found: their width is a single digit's.
"""

from __future__ import annotations

import numpy as np

WIDE = 1.2  # a piece this many times as wide as tall holds several digits
NEIGHBOURS = 1.7  # ... and one this many times the others' median width over height
SOMEWHAT = 1.0  # ... if at least this many times as wide as tall
DIGIT_WIDTH = 0.8  # a digit's width, as a fraction of its height, when counting
WINDOW = 0.25  # each cut is searched for this fraction of a digit's width around
CUT_INK = 0.6  # a cut through more than this of the fullest column's ink fails
MIN_PIXELS = 12  # a part with fewer inked pixels than this is no digit


def digits_in(boxes: list[tuple[int, int, int, int]]) -> list[int]:
    """How many digits each piece seems to hold, by its width (see the module).

    Args:
        boxes: each piece's ``(top, bottom, left, right)``, one number's pieces.

    Returns:
        for each piece, 1, or the number of touching digits it holds.
    """
    shapes = np.array([(r - lft) / max(b - t, 1) for t, b, lft, r in boxes])  # (N,)
    counts = []
    for k, shape in enumerate(shapes):  # each one's width over height
        others = np.delete(shapes, k)  # (N - 1,)
        typical = float(np.median(others)) if others.size >= 2 else np.inf
        if shape > WIDE or (shape > SOMEWHAT and shape > NEIGHBOURS * typical):
            counts.append(max(2, round(shape / DIGIT_WIDTH)))
        else:
            counts.append(1)
    return counts


def cuts(ink: np.ndarray, count: int) -> list[int] | None:
    """The columns where a piece of ``count`` touching digits is cut.

    Args:
        ink: the piece's ink, (h, w) in [0, 1].
        count: how many digits it holds, at least 2.

    Returns:
        the ``count - 1`` columns, increasing (each starts a part), or None
        when no clean cut is found (see the module).
    """
    column = ink.sum(axis=0)  # (w,), the vertical projection
    width = column.size
    step = width / count
    found = []
    for j in range(1, count):
        low = max(1, round(j * step - WINDOW * step))
        high = min(width - 1, round(j * step + WINDOW * step) + 1)
        if high <= low:
            return None
        at = low + int(np.argmin(column[low:high]))
        if column[at] > CUT_INK * column.max():
            return None
        found.append(at)
    edges = [0, *found, width]
    for a, b in zip(edges[:-1], edges[1:]):
        if b <= a or np.count_nonzero(ink[:, a:b]) < MIN_PIXELS:
            return None
    return found
