"""Lecture 11, exercise 1: read an image where a map sends each pixel.

Two small functions: bilinear interpolation with zeros beyond the edge, and a
rotation about the centre built on it. Grade with
``python -m exercises.grade augmentation``.
"""

from __future__ import annotations

import numpy as np


def bilinear(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Read ``image`` at real-valued positions, bilinearly.

    Args:
        image: grey levels, shape (H, W).
        rows: row positions, any shape; pixel (i, j) sits at (i, j).
        cols: column positions, the same shape as ``rows``.

    Returns:
        The interpolated values, shape of ``rows``. Pixels beyond the image
        are 0, so a position half a pixel outside reads half of the edge.
    """
    # TODO
    raise NotImplementedError("bilinear is not written yet")


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """Turn a square image about its centre ``c = (side - 1) / 2``.

    Output pixel (r, c0) reads the input, with ``bilinear``, at row
    ``c + cos(t) (r - c) - sin(t) (c0 - c)`` and column
    ``c + sin(t) (r - c) + cos(t) (c0 - c)``, t = ``degrees`` in radians.

    Args:
        image: shape (S, S).
        degrees: the angle.

    Returns:
        The turned image, shape (S, S).
    """
    # TODO
    raise NotImplementedError("rotate is not written yet")
