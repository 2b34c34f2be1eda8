"""Cut the digits out of an image's ink: connected components, merged, specks dropped.

``backprop.app.photos.ink`` marks an image's strong ink; here it is cut into digits:

1. label the connected components of the strong ink (8-neighbours), after
   growing it by ``BRIDGE`` pixels so that a stroke broken by a hair-thin gap
   stays one piece;
2. drop specks: pieces with fewer than ``SPECK`` of the largest piece's pixels,
   or fewer than ``MIN_PIXELS``; more than ``MAX_PIECES`` pieces left are
   refused (the work grows with their square);
3. merge broken strokes: pieces whose columns overlap by at least ``OVERLAP``
   of the narrower one and that lie close above one another (the top bar of
   a 5, the halves of a broken 4) become one digit;
4. short pieces are no digits: a group shorter than ``MIN_HEIGHT`` of the
   tallest (the digits of a number are about equally tall), or ``WIDE``
   times wider than tall (a bar), joins the digit it nearly touches (a 5's
   bar floating beside its body), or is left out; but one at least
   ``SMALL_DIGIT`` of the tallest, beside the digits rather than above or
   below one, is a small digit of its own;
5. one digit (``"main"``): the one with the most ink; several (``"each"``):
   every digit, row by row (``SAME_ROW``), each row left to right; or all
   the ink that stands out, specks too, as one object (``"all"``: a
   garment, whose parts need not touch);
6. each digit's ink is its strong pixels grown into the weaker ink around
   them (``backprop.app.photos.ink.soft_ink``), never into pixels nearer another digit;
7. with ``"each"``, a piece as wide as several digits (touching ones) is cut
   along the paths through the least ink (``backprop.app.photos.touching``),
   or, where no clean cut is found, kept whole and marked ``touching``; a
   piece no wider than one digit is cut in two where a path crosses its
   strokes once, briefly (two narrow digits touching: ``pair_cut``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from backprop.app.photos.ink import Ink, soft_ink
from backprop.app.photos.touching import cuts, digits_in, pair_cut
from backprop.errors import DataError

BRIDGE = 1  # strong ink is grown by this many pixels before labelling
SPECK = 0.05  # a piece with fewer pixels than this fraction of the largest is a speck
MIN_PIXELS = 12  # ... and so is one with fewer pixels than this
OVERLAP = 0.5  # pieces whose columns overlap this much of the narrower merge
MAX_GAP = 0.5  # ... if the rows between them are at most this fraction of the taller
MIN_HEIGHT = 0.5  # a group shorter than this fraction of the tallest is no digit,
WIDE = 2.0  # ... nor one this many times as wide as it is tall (a bar):
NEAR = 0.3  # ... it joins a digit at most this fraction of that one's height away
SMALL_DIGIT = 0.3  # ... unless this tall and beside the digits: a small digit
SAME_ROW = 0.5  # a digit this much (of its height) beside a row's is in that row
# Cutting ink into digits compares pieces pairwise: more pieces than this in one
# image are refused (a page of that many is no number; 1,024 take about 5 s).
MAX_PIECES = 500


@dataclass(frozen=True)
class Digit:
    """One digit found in an image.

    Attributes:
        box: ``(top, bottom, left, right)`` of its ink, bottom and right
            exclusive, in the image's pixels.
        ink: its ink strength in that box, (h, w) float64 in [0, 1], 0
            where the ink is not the digit's.
        touching: 0 for a digit; for a piece of touching digits that could
            not be split, how many digits it seems to hold.
    """

    box: tuple[int, int, int, int]
    ink: np.ndarray
    touching: int = 0


def pieces(strong: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """The connected pieces of strong ink, specks dropped.

    Args:
        strong: the strong ink, (H, W) bool.

    Returns:
        ``(labels, boxes)``: labels (H, W) int, 0 off the ink and ``i + 1`` on
        piece ``i``; each piece's ``(top, bottom, left, right)``.
    """
    from scipy import ndimage

    eight = np.ones((3, 3), dtype=bool)
    grown = ndimage.binary_dilation(strong, eight, iterations=BRIDGE)  # (H, W)
    labels, _ = ndimage.label(grown, structure=eight)  # (H, W)
    labels[~strong] = 0
    count = np.bincount(labels.ravel())  # (N + 1,)
    count[0] = 0
    keep = np.flatnonzero(count >= max(MIN_PIXELS, SPECK * count.max()))  # (K,)
    remap = np.zeros(count.size, dtype=np.int64)  # (N + 1,)
    remap[keep] = np.arange(1, keep.size + 1)
    labels = remap[labels]  # (H, W)
    boxes = [
        (s[0].start, s[0].stop, s[1].start, s[1].stop)
        for s in ndimage.find_objects(labels)
        if s is not None
    ]
    return labels, boxes


def union(boxes: Iterable[tuple[int, ...]]) -> tuple[int, int, int, int]:
    """The box around boxes ``(top, bottom, left, right)``."""
    tops, bottoms, lefts, rights = zip(*boxes)
    return min(tops), max(bottoms), min(lefts), max(rights)


def belong_together(boxes: np.ndarray) -> np.ndarray:
    """Which pairs of boxes look like parts of one digit (see the module).

    Args:
        boxes: ``(top, bottom, left, right)`` of each, (N, 4).

    Returns:
        (N, N) bool, symmetric.
    """
    top, bottom, left, right = (boxes[:, k] for k in range(4))  # (N,) each
    overlap = np.minimum.outer(right, right) - np.maximum.outer(left, left)  # (N, N)
    narrower = np.minimum.outer(right - left, right - left)  # (N, N)
    between = np.maximum.outer(top, top) - np.minimum.outer(bottom, bottom)  # (N, N)
    taller = np.maximum.outer(bottom - top, bottom - top)  # (N, N)
    return (overlap >= OVERLAP * narrower) & (between <= MAX_GAP * taller)


def merge(boxes: list[tuple[int, int, int, int]]) -> list[int]:
    """Group pieces that belong together, transitively.

    Merged pieces are looked at again as one box, which can reach further.

    Returns:
        for each piece, the index of its group (groups numbered from 0).
    """
    from scipy.sparse.csgraph import connected_components

    group = np.arange(len(boxes))  # (N,)
    while True:
        spans = np.array(
            [
                union(b for b, g in zip(boxes, group) if g == k)
                for k in range(group.max() + 1)
            ]
        )  # (G, 4)
        count, joined = connected_components(belong_together(spans), directed=False)
        if count == len(spans):
            return [int(g) for g in group]
        group = joined[group]  # (N,)


def gap(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Pixels between two boxes: the larger of the row and column gaps."""
    return max(max(a[0], b[0]) - min(a[1], b[1]), max(a[2], b[2]) - min(a[3], b[3]))


def attach(boxes: list[tuple[int, int, int, int]]) -> list[int]:
    """Give each short group to the tall group it touches, or drop it.

    A group shorter than ``MIN_HEIGHT`` of the tallest, or more than
    ``WIDE`` times as wide as tall, is not a digit of its own: it joins the
    nearest digit if at most ``NEAR`` of that digit's height away (the bar
    of a 5 that floats beside its body), else it is left out. Except a small
    digit: at least ``SMALL_DIGIT`` of the tallest, no bar, and beside the
    tall groups near it, not above or below one (where a broken stroke is).

    Returns:
        for each group, the group of the digit it belongs to, or -1.
    """
    heights = [box[1] - box[0] for box in boxes]
    tall = [
        g
        for g, (top, bottom, left, right) in enumerate(boxes)
        if bottom - top >= MIN_HEIGHT * max(heights)
        and right - left <= WIDE * (bottom - top)
    ]
    if not tall:  # bars only: the tallest is the digit
        tall = [int(np.argmax(heights))]
    small = [
        g
        for g, (top, bottom, left, right) in enumerate(boxes)
        if g not in tall
        and bottom - top >= SMALL_DIGIT * max(heights)
        and right - left <= WIDE * (bottom - top)
        and not any(
            min(right, boxes[t][3]) > max(left, boxes[t][2])  # columns overlap
            and gap(boxes[g], boxes[t]) <= NEAR * heights[t]
            for t in tall
        )
    ]
    digits = tall + small
    owner = []
    for g, box in enumerate(boxes):
        if g in digits:
            owner.append(g)
            continue
        near = min(digits, key=lambda t: gap(box, boxes[t]))
        owner.append(near if gap(box, boxes[near]) <= NEAR * heights[near] else -1)
    return owner


def reading_order(boxes: list[tuple[int, int, int, int]]) -> list[int]:
    """The order to read boxes in: row by row from the top, each left to right.

    A box joins the row whose rows (so far) cover at least ``SAME_ROW`` of
    its height, else it starts a row; rows are ordered by their middles.

    Args:
        boxes: ``(top, bottom, left, right)`` of each digit.

    Returns:
        the indices of ``boxes`` in reading order.
    """
    rows: list[list[int]] = []
    spans: list[list[int]] = []  # each row's [top, bottom]
    for k in sorted(range(len(boxes)), key=lambda k: boxes[k][0]):
        top, bottom = boxes[k][:2]
        for row, span in zip(rows, spans):
            if min(bottom, span[1]) - max(top, span[0]) >= SAME_ROW * (bottom - top):
                row.append(k)
                span[:] = min(top, span[0]), max(bottom, span[1])
                break
        else:
            rows.append([k])
            spans.append([top, bottom])
    rows = [rows[r] for r in np.argsort([t + b for t, b in spans], kind="stable")]
    return [k for row in rows for k in sorted(row, key=lambda k: sum(boxes[k][2:]))]


def find_digits(ink: Ink, how: str = "main") -> list[Digit]:
    """The digits in an image's ink.

    Args:
        ink: an image's ink (``backprop.app.photos.ink.find_ink``).
        how: ``"main"``: the digit with the most ink; ``"each"``: every digit
            of a number, row by row, each left to right; ``"all"``: all the
            ink as one object (a garment's parts need not touch).

    Returns:
        the digits found, at least one.

    Raises:
        DataError: no piece of ink is large enough to be a digit.
        ValueError: ``how`` is none of those.
    """
    from scipy import ndimage

    if how not in ("main", "each", "all"):
        raise ValueError(f"how must be 'main', 'each' or 'all', not {how!r}")
    if how == "all":  # all the ink that stands out, specks too, as one
        everywhere = np.ones(ink.strong.shape, dtype=bool)  # (H, W)
        whole = soft_ink(ink, everywhere, everywhere)  # (H, W)
        rows, cols = ndimage.find_objects((whole > 0).astype(np.int8))[0]
        box = (rows.start, rows.stop, cols.start, cols.stop)
        return [Digit(box=box, ink=whole[rows, cols])]  # (h, w)
    labels, spans, groups, owner = layout(ink)
    digits = sorted(set(owner) - {-1})
    if how == "main":
        mass = ndimage.sum_labels(ink.contrast, groups, [d + 1 for d in digits])
        digits = [digits[int(np.argmax(mass))]]  # the most ink wins
    else:
        digits = [digits[k] for k in reading_order([spans[d] for d in digits])]
    kept = np.where(np.isin(groups, [d + 1 for d in digits]), groups, 0)  # (H, W)
    if len(digits) > 1:  # each pixel goes to the nearest digit
        nearest = ndimage.distance_transform_edt(
            kept == 0, return_distances=False, return_indices=True
        )  # (2, H, W)
        territory = kept[nearest[0], nearest[1]]  # (H, W)
    else:
        territory = np.full_like(kept, digits[0] + 1)  # (H, W), all the digit's
    found = []
    cells = ndimage.find_objects(territory)  # each digit's box of its territory
    for d in digits:
        cell = cells[d]
        part = Ink(ink.contrast[cell], ink.strong[cell], ink.floor)  # its cell only
        digit = soft_ink(part, kept[cell] == d + 1, territory[cell] == d + 1)
        rows, cols = ndimage.find_objects((digit > 0).astype(np.int8))[0]
        top, left = cell[0].start + rows.start, cell[1].start + cols.start
        box = (top, top + rows.stop - rows.start, left, left + cols.stop - cols.start)
        found.append(Digit(box=box, ink=digit[rows, cols]))  # (h, w)
    return split_touching(found) if how == "each" else found


def layout(ink: Ink) -> tuple[np.ndarray, list, np.ndarray, list[int]]:
    """The pieces of an image's ink grouped into digits (steps 1 to 4).

    Returns:
        ``(labels, spans, groups, owner)``: each piece's label (H, W) (see
        ``pieces``); each group's ``(top, bottom, left, right)``; (H, W) int,
        0 off the digits and ``d + 1`` on digit ``d``; for each group, the
        group of the digit it belongs to, or -1.

    Raises:
        DataError: no piece of ink is large enough to be a digit, or too many.
    """
    labels, boxes = pieces(ink.strong)
    if not boxes:
        raise DataError("no digit found: no ink stands out from the paper")
    if len(boxes) > MAX_PIECES:
        raise DataError(
            f"{len(boxes)} pieces of ink, more than the {MAX_PIECES} that one "
            "image may hold; crop it to the digits to read"
        )
    group = merge(boxes)
    spans = [
        union(b for b, g in zip(boxes, group) if g == k) for k in range(max(group) + 1)
    ]
    owner = attach(spans)
    of_piece = np.array([0, *(owner[g] + 1 for g in group)])  # (K + 1,)
    groups = of_piece[labels]  # (H, W), 0 off the digits, d + 1 on digit d
    return labels, spans, groups, owner


def count_digits(ink: Ink) -> int:
    """How many digits an image's ink seems to hold, touching ones counted.

    The digits ``find_digits(ink, "each")`` finds, a piece of touching digits
    that could not be split counted as the digits it seems to hold.

    Raises:
        DataError: no piece of ink is large enough to be a digit, or too many.
    """
    return sum(digit.touching or 1 for digit in find_digits(ink, "each"))


def split_touching(found: list[Digit]) -> list[Digit]:
    """Each piece of touching digits cut into them, or marked touching.

    Args:
        found: one number's digits, in reading order.

    Returns:
        the digits, each piece of several (one as wide as several digits, or
        one no wider than a digit that ``pair_cut`` cuts) replaced by its
        parts, left to right; a wide piece with no clean cut by itself with
        ``touching`` set.
    """
    counts = digits_in([digit.box for digit in found])
    split = []
    for digit, count in zip(found, counts):
        if count == 1:
            path = pair_cut(digit.ink)
            paths = None if path is None else [path]
        else:
            paths = cuts(digit.ink, count)
        if count == 1 and paths is None:
            split.append(digit)
        elif paths is None:
            split.append(Digit(box=digit.box, ink=digit.ink, touching=count))
        else:
            h, w = digit.ink.shape
            columns = np.arange(w)  # (w,)
            edges = [np.zeros(h, dtype=np.int64), *paths, np.full(h, w)]
            top, _, left, _ = digit.box
            for a, b in zip(edges[:-1], edges[1:]):  # (h,) each, a part's columns
                inside = (columns >= a[:, None]) & (columns < b[:, None])  # (h, w)
                part = np.where(inside, digit.ink, 0.0)  # (h, w)
                rows = np.flatnonzero(part.any(axis=1))
                cols = np.flatnonzero(part.any(axis=0))
                r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
                box = (top + r0, top + r1, left + c0, left + c1)
                split.append(Digit(box=box, ink=part[r0:r1, c0:c1]))  # (h', w')
    return split
