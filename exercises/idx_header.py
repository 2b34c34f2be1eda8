"""Lecture 1, exercise 1: read an IDX header, and prepare images for the network.

Grade with ``python -m exercises.grade idx_header``.
"""

from __future__ import annotations

import numpy as np


def parse_header(data: bytes) -> tuple[int, tuple[int, ...]]:
    """The type code and the shape stored in the header of IDX bytes.

    The header: two zero bytes, a type code (0x08 for unsigned bytes), the
    number of dimensions d, then d big-endian 32-bit sizes.

    Args:
        data: the decompressed bytes of an IDX file.

    Returns:
        ``(type_code, shape)``, e.g. ``(8, (60000, 28, 28))``.

    Raises:
        ValueError: the first two bytes are not zero, or d is 0.
    """
    # TODO: read the four magic bytes, then d sizes with int.from_bytes(..., "big")
    raise NotImplementedError("parse_header is not written yet")


def flatten_and_scale(images: np.ndarray) -> np.ndarray:
    """Images as rows of float32 pixels in [0, 1].

    Args:
        images: uint8, shape (N, rows, cols).

    Returns:
        float32, shape (N, rows * cols); pixel (r, c) at column ``r * cols + c``.
    """
    # TODO: reshape (row-major), convert to float32, divide by 255
    raise NotImplementedError("flatten_and_scale is not written yet")
