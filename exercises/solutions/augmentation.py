"""Solution of lecture 11, exercise 1: read an image where a map sends each pixel."""

from __future__ import annotations

import math

import numpy as np


def bilinear(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``image`` read at (rows, cols), bilinearly, zeros beyond the edge."""
    padded = np.pad(np.asarray(image, dtype=np.float64), 1)  # (H + 2, W + 2)
    height, width = padded.shape
    # clamp into the padding, where everything is 0, then shift by its 1
    r = np.clip(rows, -1.0, height - 2.0) + 1.0
    c = np.clip(cols, -1.0, width - 2.0) + 1.0
    r0 = np.minimum(np.floor(r).astype(int), height - 2)
    c0 = np.minimum(np.floor(c).astype(int), width - 2)
    fr, fc = r - r0, c - c0
    top = padded[r0, c0] + fc * (padded[r0, c0 + 1] - padded[r0, c0])
    bottom = padded[r0 + 1, c0] + fc * (padded[r0 + 1, c0 + 1] - padded[r0 + 1, c0])
    return top + fr * (bottom - top)


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """``image`` turned about its centre by ``degrees``, read with ``bilinear``."""
    side = image.shape[0]
    centre = (side - 1) / 2
    t = math.radians(degrees)
    r, c = np.mgrid[0:side, 0:side] - centre  # (S, S) each, about the centre
    rows = centre + math.cos(t) * r - math.sin(t) * c
    cols = centre + math.sin(t) * r + math.cos(t) * c
    return bilinear(image, rows, cols)
