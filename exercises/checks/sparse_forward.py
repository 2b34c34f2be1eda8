"""Checks of lecture 9's exercise ``sparse_forward``, against the dense product.

``compress`` is checked by putting its entries back; ``sparse_forward`` gets
the grader's own CSR of the inputs, so that a wrong ``compress`` fails one
check only. The reference is ``x[rows] @ w``. A sum over the non-zero terms
only, in another order, differs from BLAS's by rounding alone: within
``2 k eps sum_p |x_p w_p|`` for k non-zero terms (eps of the dtype). A wrong
product is compared with what the usual slips give, and named.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from exercises.checks.core import Check, Wrong, array_of, dict_of, expect, parts
from exercises.checks.mistakes import checked_array
from exercises.checks.tensor_ops import attempt

FORWARD_CASES = ((1, [0, 1, 2, 3]), (2, [2]), (3, [8, 4, 4, 0, 2, 7, 1, 5, 6]))
EMPTY_ROWS = [2, 0]  # an empty image, then one with pixels


def images(seed: int, n: int = 9, d: int = 30) -> np.ndarray:
    """(n, d) float64 inputs in [0, 1], about 20% non-zero; row 2 is empty."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, d)) * (rng.random((n, d)) < 0.2)  # (n, d)
    x[2] = 0.0
    x[4] = rng.random(d) + 0.1  # and one fully dense row
    return x


def csr(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grader's own CSR of x: indptr (N + 1,), indices and values (nnz,)."""
    rows, cols = np.nonzero(x)  # (nnz,) each
    indptr = np.searchsorted(rows, np.arange(len(x) + 1)).astype(np.int64)
    return indptr, cols.astype(np.int64), x[rows, cols]


# --- compress -----------------------------------------------------------------


def compress_run(mod: ModuleType) -> tuple[Any, ...]:
    """``(indptr, indices, values)`` of the student's ``compress``."""
    return parts(mod.compress(images(0)), 3, "compress's result")


def _integers(value: Any, what: str) -> np.ndarray:
    """A returned array of integers, one axis."""
    got = array_of(value, what)
    expect(got.ndim == 1, f"{what} has shape {got.shape}, expected one axis")
    if got.dtype.kind not in "iu":
        whole = got.dtype.kind == "f" and bool(np.all(got == np.round(got)))
        raise Wrong(
            f"{what} holds {got.dtype} entries, expected integers (int64)"
            + ("; cast them with .astype(np.int64)" if whole else "")
        )
    return got.astype(np.int64)


def _indptr_problem(indptr: np.ndarray, x: np.ndarray) -> str | None:
    """What is wrong with indptr, in the student's terms, or None."""
    n, nnz = len(x), np.count_nonzero(x)
    counts = np.count_nonzero(x, axis=1)  # (n,)
    if len(indptr) != n + 1:
        text = f"indptr has {len(indptr)} entries, not N + 1 = {n + 1}"
        if np.array_equal(indptr, np.cumsum(counts)):
            text += ": the leading 0 is missing (row 0's entries begin at 0)"
        elif np.array_equal(indptr, counts):
            text += ": these are the counts; indptr is their running sum after a 0"
        return text
    if indptr[0] != 0:
        return f"indptr[0] is {indptr[0]}, not 0"
    if np.array_equal(indptr[1:], counts):
        return "indptr holds each row's count; it is their running sum after a 0"
    if indptr[-1] != nnz:
        return f"{indptr[-1]} entries, but x has {nnz} non-zeros"
    if np.any(np.diff(indptr) < 0):
        r = int(np.argmax(np.diff(indptr) < 0))
        return f"indptr decreases from row {r} to row {r + 1}: {indptr[r : r + 2]}"
    return None


def compress_judge(result: Any) -> str:
    """Each row's non-zeros: the right count, columns ascending, values back."""
    x = images(0)
    indptr_, indices_, values_ = parts(result, 3, "compress's result")
    indptr = _integers(indptr_, "indptr")
    problem = _indptr_problem(indptr, x)
    if problem:
        raise Wrong(problem)
    nnz = int(indptr[-1])
    indices = _integers(indices_, "indices")
    values = checked_array(values_, np.zeros(nnz), "values")
    expect(len(indices) == nnz, f"indices has {len(indices)} entries, not {nnz}")
    _, cols, want_values = csr(x)
    nonzero_rows = np.nonzero(x)[0]  # (nnz,)
    if not np.array_equal(indices, cols) and np.array_equal(indices, nonzero_rows):
        raise Wrong(
            "indices holds each entry's row; it must hold its column "
            "(np.nonzero(x) returns the rows first, then the columns)"
        )
    by_columns = np.nonzero(x.T)[0]  # (nnz,): the columns in column-major order
    if not np.array_equal(indices, cols) and np.array_equal(indices, by_columns):
        raise Wrong(
            "the entries are in column-major order (as np.nonzero(x.T) gives "
            "them); CSR keeps them row by row, each row's columns ascending"
        )
    bad = (indices < 0) | (indices >= x.shape[1])
    expect(
        not bad.any(),
        f"indices[{int(np.argmax(bad))}] is outside 0..D - 1 = {x.shape[1] - 1}",
    )
    back = np.zeros_like(x)  # (n, d)
    for r in range(len(x)):
        row = indices[indptr[r] : indptr[r + 1]]
        expect(np.all(np.diff(row) > 0), f"row {r}: columns {row} are not ascending")
        back[r, row] = values[indptr[r] : indptr[r + 1]]
    if not np.array_equal(back, x):
        r = int(np.argmax(np.any(back != x, axis=1)))
        hint = ""
        if np.array_equal(np.sort(values), np.sort(want_values)):
            hint = ": the values are x's non-zeros, but not each at its own column"
        raise Wrong(f"putting the entries back does not give x (row {r} differs){hint}")
    return f"{nnz} non-zeros in {len(x)} rows, one of them empty"


# --- sparse_forward -----------------------------------------------------------


def _weights(seed: int, d: int) -> np.ndarray:
    """(d, 5) float64 weights of a forward case."""
    return np.random.default_rng(seed + 10).standard_normal((d, 5))


def forward_run(mod: ModuleType) -> list[Any]:
    """The student's product for each case, from the grader's CSR."""
    outs = []
    for j, (seed, rows) in enumerate(FORWARD_CASES):
        x = images(seed)
        w = _weights(seed, x.shape[1])
        step = lambda x=x, w=w, rows=rows: mod.sparse_forward(  # noqa: E731
            *csr(x), np.array(rows), w
        )
        # the first case's error names its line; a later one's waits its turn
        outs.append({"value": step()} if j == 0 else attempt(step))
    return outs


def slip_products(x: np.ndarray, rows: np.ndarray, w: np.ndarray) -> list[tuple]:
    """What the usual slips give instead of ``x[rows] @ w``, and their names."""
    indptr, indices, values = csr(x)
    b = len(rows)
    last = np.zeros((b, w.shape[1]))  # (b, H): out[i] = ... kept the last term only
    past = x[rows] @ w  # (b, H): the loop runs one entry past the row's end
    for i, r in enumerate(rows):
        if indptr[r + 1] > indptr[r]:
            k = indptr[r + 1] - 1
            last[i] = values[k] * w[indices[k]]
        if indptr[r + 1] < len(values):
            k = indptr[r + 1]
            past[i] += values[k] * w[indices[k]]
    return [
        (x[:b] @ w, "image i's pixels were used, not image rows[i]'s"),
        (last, "only each image's last pixel counts: add with +=, do not assign"),
        (
            past,
            "each image also took the next one's first pixel: image r's entries "
            "are range(indptr[r], indptr[r + 1]), which stops before indptr[r + 1]",
        ),
    ]


def forward_judge(outs: Any) -> str:
    """sparse_forward equals x[rows] @ w within 2 k eps, batches of 1 to 9 rows."""
    worst = 0.0
    for (seed, rows_list), value in zip(
        FORWARD_CASES, parts(outs, len(FORWARD_CASES), "the results")
    ):
        x, rows = images(seed), np.array(rows_list)
        w = _weights(seed, x.shape[1])
        want = x[rows] @ w  # (b, 5)
        value = dict_of(value, "the result")
        if "error" in value:
            raise Wrong(f"rows {rows_list}: raised {value['error']}")
        out = checked_array(value.get("value"), want, f"rows {rows_list}: out")
        out = out.astype(np.float64)
        k = np.count_nonzero(x[rows], axis=1)[:, None]  # (b, 1)
        bound = 2 * np.maximum(k, 1) * np.finfo(np.float64).eps * (x[rows] @ abs(w))
        err = np.abs(out - want)  # (b, 5)
        if np.all(err <= bound):
            worst = max(worst, float(err.max()))
            continue
        message = (
            f"rows {rows_list}: largest error {err.max():.3g} is past the "
            f"rounding bound; got\n{out}\nexpected\n{want}"
        )
        for slip, name in slip_products(x, rows, w):
            if not np.allclose(slip, want) and np.allclose(out, slip, atol=1e-12):
                message += f"\nhint: {name}"
                break
        raise Wrong(message)
    return f"largest difference {worst:.1e}"


def empty_run(mod: ModuleType) -> Any:
    """The product in float32 for an empty image and one with pixels."""
    x = images(4).astype(np.float32)
    w = np.ones((x.shape[1], 3), np.float32)
    return mod.sparse_forward(*csr(x), np.array(EMPTY_ROWS), w)


def empty_judge(value: Any) -> None:
    """An empty image gives exact zeros, and float32 weights give float32."""
    x = images(4).astype(np.float32)
    want = x[EMPTY_ROWS] @ np.ones((x.shape[1], 3), np.float32)  # (2, 3)
    out = checked_array(value, want, "out")
    expect(
        out.dtype == np.float32,
        f"dtype {out.dtype}, expected float32: make out with w's dtype "
        "(np.zeros((len(rows), H), dtype=w.dtype))",
    )
    if np.all(out[0] == 0):
        return
    hint = (
        "each row starts from zeros, and image r adds its entries indptr[r] to "
        "indptr[r + 1] - 1 only"
    )
    if np.allclose(out[0], want[1]):  # rows[1] is image 0, which i = 0 would read
        hint = "that is image 0's product: image i's pixels were used, not rows[i]'s"
    raise Wrong(f"the empty image (rows[0] = 2) gave {out[0]}, not zeros: {hint}")


CHECKS = (
    Check(
        "compress: each row's non-zeros, columns ascending",
        compress_run,
        compress_judge,
    ),
    Check("sparse_forward equals the dense product", forward_run, forward_judge),
    Check("empty images and the weights' dtype", empty_run, empty_judge),
)
