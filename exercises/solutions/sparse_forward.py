"""Solution of lecture 9, exercise 2: the first layer's product on the non-zeros."""

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
    rows, cols = np.nonzero(x)  # (nnz,) each, row-major: columns ascending
    counts = np.bincount(rows, minlength=len(x))  # (N,)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)  # (N + 1,)
    return indptr, cols.astype(np.int64), x[rows, cols]


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
    out = np.zeros((len(rows), w.shape[1]), dtype=w.dtype)  # (b, H)
    for i, r in enumerate(rows):
        for k in range(indptr[r], indptr[r + 1]):  # row r's non-zero pixels p
            out[i, :] += values[k] * w[indices[k], :]  # h[i] += x[i, p] * w[p]
    return out
