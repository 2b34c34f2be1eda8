"""The checks of lecture 9's exercise ``sparse_forward``, against the dense product.

The reference is ``x[rows] @ w``. A sum over the non-zero terms only, in
another order, differs from BLAS's by rounding alone: within
``2 k eps sum_p |x_p w_p|`` for k non-zero terms (eps of the dtype).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from exercises.checks import Exercise, expect


def _images(seed: int, n: int = 9, d: int = 30) -> np.ndarray:
    """(n, d) float64 inputs in [0, 1], about 20% non-zero; row 2 is empty."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, d)) * (rng.random((n, d)) < 0.2)  # (n, d)
    x[2] = 0.0
    x[4] = rng.random(d) + 0.1  # and one fully dense row
    return x


def _csr(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grader's own CSR of x, so that a wrong compress fails one check only."""
    rows, cols = np.nonzero(x)  # (nnz,) each
    indptr = np.searchsorted(rows, np.arange(len(x) + 1)).astype(np.int64)
    return indptr, cols.astype(np.int64), x[rows, cols]


def compress_round_trip(mod: ModuleType) -> None:
    """Compressed rows keep every non-zero, its column and row, columns ascending."""
    x = _images(0)
    indptr, indices, values = mod.compress(x)
    expect(len(indptr) == len(x) + 1, f"indptr has {len(indptr)} entries, not N + 1")
    expect(indptr[0] == 0, f"indptr[0] is {indptr[0]}, not 0")
    expect(
        indptr[-1] == np.count_nonzero(x),
        f"{indptr[-1]} entries, but x has {np.count_nonzero(x)} non-zeros",
    )
    back = np.zeros_like(x)  # (n, d)
    for r in range(len(x)):
        cols = np.asarray(indices[indptr[r] : indptr[r + 1]])
        expect(np.all(np.diff(cols) > 0), f"row {r}: columns {cols} are not ascending")
        back[r, cols] = values[indptr[r] : indptr[r + 1]]
    expect(np.array_equal(back, x), "putting the entries back does not give x")


def forward_matches_dense(mod: ModuleType) -> str:
    """sparse_forward equals x[rows] @ w within 2 k eps, batches of 1 to 9 rows."""
    worst = 0.0
    for seed, rows in ((1, [0, 1, 2, 3]), (2, [2]), (3, [8, 4, 4, 0, 2, 7, 1, 5, 6])):
        x = _images(seed)
        w = np.random.default_rng(seed + 10).standard_normal((x.shape[1], 5))
        rows = np.array(rows)
        out = np.asarray(mod.sparse_forward(*_csr(x), rows, w))
        want = x[rows] @ w  # (b, 5)
        expect(out.shape == want.shape, f"shape {out.shape}, expected {want.shape}")
        k = np.count_nonzero(x[rows], axis=1)[:, None]  # (b, 1)
        bound = 2 * np.maximum(k, 1) * np.finfo(np.float64).eps * (x[rows] @ abs(w))
        err = np.abs(out - want)
        expect(
            np.all(err <= bound),
            f"rows {rows.tolist()}: largest error {err.max():.3g} is past the "
            f"rounding bound; got\n{out}\nexpected\n{want}",
        )
        worst = max(worst, float(err.max()))
    return f"largest difference {worst:.1e}"


def forward_empty_and_dtype(mod: ModuleType) -> None:
    """An empty image gives exact zeros, and float32 weights give float32."""
    x = _images(4).astype(np.float32)
    w = np.ones((x.shape[1], 3), np.float32)
    out = np.asarray(mod.sparse_forward(*_csr(x), np.array([2, 0]), w))
    expect(out.dtype == np.float32, f"dtype {out.dtype}, expected float32")
    expect(np.all(out[0] == 0), f"the empty image gave {out[0]}, not zeros")


SPARSE_FORWARD = Exercise(
    "sparse_forward",
    9,
    "the first layer's product on the non-zero pixels only",
    (
        ("compress: each row's non-zeros, columns ascending", compress_round_trip),
        ("sparse_forward equals the dense product", forward_matches_dense),
        ("empty images and the weights' dtype", forward_empty_and_dtype),
    ),
)
