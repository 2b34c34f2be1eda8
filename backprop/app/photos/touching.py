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
3. it is cut along paths from top to bottom through the least ink (each
   searched for within ``WINDOW`` of a digit's width around where equal
   widths would put it), which go round the strokes of digits whose boxes
   overlap and cross only where they touch;
4. a cut through more ink than ``CUT_INK`` of the fullest column's, or a
   part with fewer than ``MIN_PIXELS`` pixels of ink, is no clean cut: the
   piece is kept whole and marked as not split (``Digit.touching``), to be
   reported, never read as one digit nor dropped.

Two touching digits no wider than one (a 1 beside another digit) are found
by their shape instead (``pair_cut``): a path from top to bottom near the
piece's middle that crosses its strokes exactly once, and briefly (where the
two touch), and leaves two parts about as tall as the piece, each with
``MIN_PIXELS`` of ink (two strokes that do not touch at all, a 0 drawn as
two arcs, were joined by ``segment`` as one digit's and stay one). A single digit
has no such path: one through a 0, 6, 8 or 9 crosses two strokes, one
through a 2, 4 or 7 leaves a short part, one through a blot crosses ink all
the way. Measured on 200 MNIST test digits drawn one to a page and 100
touching pairs (``python tests/touching_pairs.py``).
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
PAIR = 0.7  # a piece at least this wide (over its height) may be two narrow digits:
PAIR_WINDOW = 0.25  # ... cut within this fraction of its width of its middle,
PAIR_HEIGHT = 0.75  # ... into two parts each at least this fraction as tall,
PAIR_SHARE = 0.2  # ... each with at least this share of its ink,
STROKE = 0.5  # ... where the cut crosses ink over this in exactly one stretch,
PAIR_CROSS = 0.25  # ... no longer than this fraction of the height (a touch)


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


def cuts(ink: np.ndarray, count: int) -> list[np.ndarray] | None:
    """The paths along which a piece of ``count`` touching digits is cut.

    Each path runs from the piece's top row to its bottom, at most one column
    aside per row, through as little ink as it can (a shortest path found by
    dynamic programming over the rows), kept within ``WINDOW`` of a digit's
    width around where equal widths would put the cut: so it goes round the
    strokes of digits whose boxes overlap and crosses only where they touch.

    Args:
        ink: the piece's ink, (h, w) in [0, 1].
        count: how many digits it holds, at least 2.

    Returns:
        ``count - 1`` paths, left to right, each (h,) int: in each row the
        first column of the part to its right; or None when no clean cut is
        found (see the module).
    """
    h, width = ink.shape
    step = width / count
    found = []
    for j in range(1, count):
        low = max(1, round(j * step - WINDOW * step))
        high = min(width - 1, round(j * step + WINDOW * step) + 1)
        if high <= low:
            return None
        path = cheapest_path(ink[:, low:high]) + low  # (h,)
        crossed = ink[np.arange(h), path].sum()
        if crossed > CUT_INK * ink.sum(axis=0).max():
            return None
        found.append(path)
    columns = np.arange(width)  # (w,)
    edges = [np.zeros(h, dtype=np.int64), *found, np.full(h, width)]
    for a, b in zip(edges[:-1], edges[1:]):
        inside = (columns >= a[:, None]) & (columns < b[:, None])  # (h, w)
        if np.any(b < a) or np.count_nonzero(ink[inside]) < MIN_PIXELS:
            return None
    return found


def cheapest_path(ink: np.ndarray) -> np.ndarray:
    """The top-to-bottom path through the least ink, moving at most one column a row.

    Args:
        ink: (h, w) in [0, 1].

    Returns:
        (h,) int, the path's column in each row.
    """
    h, w = ink.shape
    cost = ink.astype(np.float64).copy()  # (h, w), the least ink down to each pixel
    came = np.zeros((h, w), dtype=np.int64)  # (h, w), the column one row up
    for r in range(1, h):
        above = np.pad(cost[r - 1], 1, constant_values=np.inf)  # (w + 2,)
        options = np.stack([above[:-2], above[1:-1], above[2:]])  # (3, w)
        choice = np.argmin(options, axis=0)  # (w,), 0 1 2: left, straight, right
        came[r] = np.arange(w) + choice - 1
        cost[r] += options[choice, np.arange(w)]
    path = np.empty(h, dtype=np.int64)  # (h,)
    path[-1] = int(np.argmin(cost[-1]))
    for r in range(h - 1, 0, -1):
        path[r - 1] = came[r, path[r]]
    return path


def pair_cut(ink: np.ndarray) -> np.ndarray | None:
    """The path that cuts a piece no wider than one digit into two touching ones.

    Args:
        ink: the piece's ink, (h, w) in [0, 1].

    Returns:
        (h,) int, in each row the first column of the right part, or None
        when the piece looks like one digit (see the module).
    """
    h, w = ink.shape
    low, high = round((0.5 - PAIR_WINDOW) * w), round((0.5 + PAIR_WINDOW) * w) + 1
    if w < PAIR * h or high - low < 2:
        return None
    path = cheapest_path(ink[:, low:high]) + low  # (h,)
    crossed = ink[np.arange(h), path] > STROKE  # (h,)
    stretches = int(crossed[0]) + int(np.count_nonzero(crossed[1:] & ~crossed[:-1]))
    left = np.arange(w) < path[:, None]  # (h, w)
    for part in (np.where(left, ink, 0.0), np.where(left, 0.0, ink)):  # (h, w) each
        rows = np.flatnonzero(part.max(axis=1) > STROKE)
        if rows.size == 0 or rows[-1] - rows[0] + 1 < PAIR_HEIGHT * h:
            return None
        if part.sum() < PAIR_SHARE * ink.sum() or np.count_nonzero(part) < MIN_PIXELS:
            return None
    short = np.count_nonzero(crossed) <= PAIR_CROSS * h
    return path if stretches == 1 and short else None
