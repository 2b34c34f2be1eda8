"""Solution of lecture 1, exercise 1: an IDX header, and image preparation."""

from __future__ import annotations

import numpy as np


def parse_header(data: bytes) -> tuple[int, tuple[int, ...]]:
    """The type code and the shape stored in the header of IDX bytes.

    Args:
        data: the decompressed bytes of an IDX file.

    Returns:
        ``(type_code, shape)``.

    Raises:
        ValueError: the first two bytes are not zero, or d is 0.
    """
    if len(data) < 4 or data[0] or data[1] or data[3] == 0:
        raise ValueError("not an IDX file: bad magic number")
    type_code, ndim = data[2], data[3]
    if len(data) < 4 + 4 * ndim:
        raise ValueError("not an IDX file: truncated header")
    shape = tuple(
        int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim)
    )
    return type_code, shape


def flatten_and_scale(images: np.ndarray) -> np.ndarray:
    """Images as rows of float32 pixels in [0, 1].

    Args:
        images: uint8, shape (N, rows, cols).

    Returns:
        float32, shape (N, rows * cols).
    """
    rows = images.reshape(len(images), -1)  # (N, rows * cols)
    return rows.astype(np.float32) / np.float32(255)  # (N, rows * cols)
