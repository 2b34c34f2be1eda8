"""Lecture 9, exercise 2: the first layer's product on the non-zero pixels only.

81% of MNIST's pixels are 0, and ``x @ w`` multiplies every one of them. Keep
each image as the positions and values of its non-zero pixels (CSR:
``indices[indptr[r]:indptr[r + 1]]`` are image r's non-zero positions,
ascending, ``values[...]`` the pixels there), then compute the product from
those alone::

    h[i, :] += x[i, p] * w[p, :]      for every non-zero pixel p of image rows[i]

This is what ``backprop.kernels.cpu.sparse_forward`` does (compiled by Numba,
with the sums of a row kept in vector registers); here plain loops are
enough. ``@numba.njit`` on your function makes it fast, if you like.

Grade with ``python -m exercises.grade sparse_forward``.
"""

from __future__ import annotations

import numpy as np


def compress(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The non-zero entries of each row of ``x``, row by row (CSR).

    Args:
        x: inputs, (N, D), float.

    Returns:
        indptr: int64 (N + 1,); row r's entries are ``indptr[r]:indptr[r + 1]``.
        indices: int64 (nnz,); their column positions, ascending within a row.
        values: (nnz,), ``x``'s dtype; the entries themselves.
    """
    # TODO
    raise NotImplementedError("compress is not written yet")


def sparse_forward(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    rows: np.ndarray,
    w: np.ndarray,
) -> np.ndarray:
    """``x[rows] @ w`` from the compressed rows of ``x``.

    Args:
        indptr: from ``compress(x)``, (N + 1,).
        indices: from ``compress(x)``, (nnz,).
        values: from ``compress(x)``, (nnz,).
        rows: int indices of the batch's rows of ``x``, (b,).
        w: weights, (D, H).

    Returns:
        out: (b, H), ``w``'s dtype; an image with no non-zero pixel gives a
        row of zeros.
    """
    # TODO
    raise NotImplementedError("sparse_forward is not written yet")
