"""The first layer on the non-zero pixels only: compressed images, sparse products.

81% of MNIST's pixels are 0 (150 of 784 per image on average), and a zero
pixel adds nothing to ``x @ w`` or to ``x.T @ dz``. The training images are
kept compressed, row by row (CSR: for image r, ``indices[indptr[r]:indptr[r +
1]]`` are the positions of its non-zero pixels, ascending, and ``values`` the
uint8 pixels there), and the first layer's two products loop over those only.

The loops are shaped for the registers: a block of ``BLOCK`` output columns
is summed in a stack array that LLVM keeps in vector registers (checked in the
assembly: ``kernel.inspect_asm(sig)`` shows ``vfmadd231ps`` on ``ymm``/``zmm``
registers with the weights as a memory operand, and no store in the inner
loop), while the non-zeros of an image (forward) or of a pixel (weight
gradient) stream past. Both kernels run their rows (or pixel ranges) on all
of Numba's threads.

References: ``layers.dense_forward``'s ``x @ w`` and ``layers.dense_backward``'s
``x.T @ dout`` on ``x = data.to_inputs(pixels)[rows]``. A sum over the
non-zero terms in pixel order, with fused multiply-adds, differs from BLAS's
sum of all terms in its own order by rounding only: ``tests/engine/test_sparse.py``
bounds the difference by ``2 k eps sum_p |x_p w_p|`` for k non-zero terms.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import llvmlite.binding
import numba
import numpy as np
from numba import prange

from backprop.kernels.cpu.compile import (
    Array,
    check_shapes,
    jit,
    jit_fma,
    jit_parallel,
    stack_empty,
)

# Output columns summed in vector registers at once: 128 float32 are 8 of
# AVX-512's 32 registers, 64 are 8 of AVX2's 16 (float64 takes twice as many),
# leaving room for the broadcast pixel value.
AVX512 = "+avx512f" in llvmlite.binding.get_host_cpu_features().flatten()
BLOCK = 128 if AVX512 else 64
# Measured with ``python benchmarks/profile_step.py --densities
# 0.1,0.2,0.3,0.4,0.5,0.6,0.8`` on the 2-core AMD EPYC (Zen 4) of lecture 9,
# under a load average of 11 to 13 from other work: the sparse path (regroup,
# two products) of a 256-image batch took as long as the dense one (gather, two
# BLAS products) at 40% non-zero pixels in one run and between 20% and 30% in
# another. MNIST's batches are near 19% non-zero; with --augment near 45%.
DENSE_ABOVE = 0.30
# Ranges of batch rows that group_by_pixel counts and fills in parallel.
PARTS = numba.config.NUMBA_NUM_THREADS


class SparseImages(NamedTuple):
    """Images compressed row by row (CSR); N images of D pixels, nnz non-zeros.

    Attributes:
        indptr: int64 (N + 1,); image r's non-zeros are ``indptr[r]:indptr[r + 1]``.
        indices: int16 (int32 when D > 32767) (nnz,); their pixel positions,
            ascending within an image.
        values: uint8 (nnz,); their pixel values, 1 to 255.
        width: D, pixels per image.
    """

    indptr: Array
    indices: Array
    values: Array
    width: int


@jit_parallel
def _count_nonzero(images: Array, counts: Array) -> None:
    n, d = images.shape
    for i in prange(n):
        c = 0
        for p in range(d):
            if images[i, p] != 0:
                c += 1
        counts[i + 1] = c


@jit_parallel
def _fill_nonzero(images: Array, indptr: Array, indices: Array, values: Array) -> None:
    n, d = images.shape
    for i in prange(n):
        k = indptr[i]
        for p in range(d):
            v = images[i, p]
            if v != 0:
                indices[k] = p
                values[k] = v
                k += 1


def compress(images: Array) -> SparseImages:
    """Compress uint8 images to their non-zero pixels (CSR), on all threads.

    Replaces nothing: it is the data layout the sparse products read. The
    inverse is ``decompress``; ``tests/engine/test_sparse.py`` checks the round trip.

    Args:
        images: uint8 pixels, (N, D), C-contiguous.

    Returns:
        a ``SparseImages`` of the N images.

    Raises:
        ValueError: the images are not a 2-D uint8 array.
    """
    if images.ndim != 2 or images.dtype != np.uint8:
        raise ValueError(
            f"compress: needs uint8 images (N, D), not {images.dtype} {images.shape}"
        )
    images = np.ascontiguousarray(images)
    n, d = images.shape
    indptr = np.zeros(n + 1, np.int64)  # (N + 1,)
    _count_nonzero(images, indptr)
    np.cumsum(indptr, out=indptr)
    index_type = np.uint16 if d <= np.iinfo(np.uint16).max else np.uint32
    indices = np.empty(indptr[-1], index_type)  # (nnz,)
    values = np.empty(indptr[-1], np.uint8)  # (nnz,)
    _fill_nonzero(images, indptr, indices, values)
    return SparseImages(indptr, indices, values, d)


def decompress(sparse: SparseImages) -> Array:
    """The uint8 images (N, D) back from ``compress``'s form (for tests)."""
    n = len(sparse.indptr) - 1
    images = np.zeros((n, sparse.width), np.uint8)  # (N, D)
    rows = np.repeat(np.arange(n), np.diff(sparse.indptr))  # (nnz,)
    images[rows, sparse.indices] = sparse.values
    return images


def scale_table(dtype: Any) -> Array:
    """Each uint8 value's input, ``v / 255`` in ``dtype``, as ``to_inputs`` makes it."""
    dt = np.dtype(dtype)
    return np.arange(256, dtype=dt) / dt.type(255)  # (256,)


@jit
def _batch_nonzeros(indptr: Array, rows: Array) -> int:
    n = indptr.shape[0] - 1
    total = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        if r < 0 or r >= n:
            raise IndexError("sparse: a row index is out of range")
        total += indptr[r + 1] - indptr[r]
    return total


def batch_density(sparse: SparseImages, rows: Array) -> float:
    """The fraction of non-zero pixels among the images ``rows`` (b,).

    Raises:
        IndexError: a row index is out of range.
    """
    nonzeros = _batch_nonzeros(sparse.indptr, rows)
    return nonzeros / max(1, len(rows) * sparse.width)


# --- the forward product ------------------------------------------------------


@jit_fma
def _image_times_w(
    lo: Any, hi: Any, indices: Array, values: Array, scale: Array, w: Array, h_i: Array
) -> None:
    """``h_i = x_i @ w`` from one image's non-zeros lo:hi, BLOCK columns at once."""
    h = h_i.shape[0]
    full = h - h % BLOCK  # columns in whole blocks
    acc = numba.carray(stack_empty(BLOCK, w.dtype), BLOCK)  # vector registers
    for j0 in range(0, full, BLOCK):
        for j in range(BLOCK):
            acc[j] = 0
        for k in range(lo, hi):  # the image's non-zero pixels p
            x_ip = scale[values[k]]
            w_p = w[indices[k], j0 : j0 + BLOCK]
            for j in range(BLOCK):
                acc[j] += x_ip * w_p[j]  # h[i, :] += x[i, p] * w[p, :]
        for j in range(BLOCK):
            h_i[j0 + j] = acc[j]
    tail = h_i[full:]  # the columns after the last whole block
    tail[:] = 0
    for k in range(lo, hi):
        x_ip = scale[values[k]]
        w_p = w[indices[k], full:]
        for j in range(tail.shape[0]):
            tail[j] += x_ip * w_p[j]


@jit_parallel
def _sparse_forward(
    indptr: Array,
    indices: Array,
    values: Array,
    rows: Array,
    scale: Array,
    w: Array,
    out: Array,
) -> None:
    for i in prange(rows.shape[0]):  # each image on one thread
        lo, hi = np.uint64(indptr[rows[i]]), np.uint64(indptr[rows[i] + 1])
        _image_times_w(lo, hi, indices, values, scale, w, out[i])


def sparse_forward(
    sparse: SparseImages, rows: Array, scale: Array, w: Array, out: Array
) -> Array:
    """The first layer's product ``x[rows] @ w`` from the non-zero pixels only.

    Replaces ``layers.dense_forward``'s ``x @ w`` on the batch
    ``x = data.to_inputs(pixels)[rows]``: ``out[i, :] = sum_p x[i, p] w[p, :]``
    over image ``rows[i]``'s non-zero pixels p, in ascending p, with fused
    multiply-adds. Each image runs on one thread, so the result does not
    depend on the number of threads.

    Args:
        sparse: the training images, from ``compress``.
        rows: int64 image indices, (b,), each in [0, N).
        scale: ``scale_table(w.dtype)``, (256,).
        w: the first layer's weights, (D, H), C-contiguous.
        out: float buffer, (B, H) with B >= b; its first b rows are overwritten.

    Returns:
        ``out[:b]``, (b, H).

    Raises:
        ValueError: the shapes do not match.
        IndexError: a row index is out of range.
    """
    b = len(rows)
    ok = w.shape[0] == sparse.width and out.shape[1] == w.shape[1] and b <= len(out)
    check_shapes("sparse_forward", ok, w=w, out=out, rows=rows)
    _batch_nonzeros(sparse.indptr, rows)  # checks the row indices
    _sparse_forward(sparse.indptr, sparse.indices, sparse.values, rows, scale, w, out)
    return out[:b]


# --- the weight gradient ------------------------------------------------------


class PixelGroups(NamedTuple):
    """A batch's non-zeros regrouped by pixel, batch rows ascending.

    The batch's rows are split into ``PARTS`` ranges, one per thread, and each
    range's non-zeros are grouped by pixel (CSC) in a segment of its own, so
    that the threads never write next to each other.

    Attributes:
        starts: int64 (PARTS, D + 1); part t's non-zeros of pixel p are
            ``starts[t, p]:starts[t, p + 1]``.
        who: uint32 (nnz,); the batch row i of each.
        xs: float (nnz,); its input ``x[i, p]``.
        size: b, the batch's rows.
    """

    starts: Array
    who: Array
    xs: Array
    size: int


@jit_parallel
def _group_by_pixel(
    indptr: Array,
    indices: Array,
    values: Array,
    rows: Array,
    scale: Array,
    starts: Array,
    who: Array,
    xs: Array,
) -> None:
    b = rows.shape[0]
    parts, d = starts.shape[0], starts.shape[1] - 1
    for t in prange(parts):  # each part: a range of the batch's rows
        i0, i1 = t * b // parts, (t + 1) * b // parts
        base = 0  # the non-zeros of the rows before this part
        for i in range(i0):
            base += indptr[rows[i] + 1] - indptr[rows[i]]
        slot = starts[t]  # (D + 1,): count, then the next free slot
        slot[:] = 0
        for i in range(i0, i1):
            for k in range(indptr[rows[i]], indptr[rows[i] + 1]):
                slot[indices[k] + 1] += 1
        slot[0] = base
        for p in range(d):
            slot[p + 1] += slot[p]
        for i in range(i0, i1):
            for k in range(indptr[rows[i]], indptr[rows[i] + 1]):
                e = slot[indices[k]]
                who[e] = i
                xs[e] = scale[values[k]]
                slot[indices[k]] = e + 1
        for p in range(d, 0, -1):  # the next free slot of p is p + 1's start
            slot[p] = slot[p - 1]
        slot[0] = base


def group_by_pixel(sparse: SparseImages, rows: Array, scale: Array) -> PixelGroups:
    """Regroup the batch ``rows``' non-zeros by pixel, for ``sparse_weight_grad``.

    Args:
        sparse: the training images, from ``compress``.
        rows: int64 image indices, (b,), each in [0, N).
        scale: ``scale_table(dtype)``, (256,): the inputs' dtype.

    Returns:
        the batch's ``PixelGroups``.

    Raises:
        IndexError: a row index is out of range.
    """
    nonzeros = _batch_nonzeros(sparse.indptr, rows)  # checks the row indices
    starts = np.empty((PARTS, sparse.width + 1), np.int64)  # (PARTS, D + 1)
    who = np.empty(nonzeros, np.uint32)  # (nnz,)
    xs = np.empty(nonzeros, scale.dtype)  # (nnz,)
    _group_by_pixel(
        sparse.indptr, sparse.indices, sparse.values, rows, scale, starts, who, xs
    )
    return PixelGroups(starts, who, xs, len(rows))


@jit_fma
def _pixel_times_dz(
    p: int, starts: Array, who: Array, xs: Array, dz: Array, dw_p: Array
) -> None:
    """``dw_p = x[:, p] @ dz`` from pixel p's non-zeros, BLOCK columns at once."""
    h = dw_p.shape[0]
    full = h - h % BLOCK  # columns in whole blocks
    acc = numba.carray(stack_empty(BLOCK, dz.dtype), BLOCK)  # vector registers
    for j0 in range(0, full, BLOCK):
        for j in range(BLOCK):
            acc[j] = 0
        for t in range(starts.shape[0]):  # the parts, rows ascending
            lo, hi = np.uint64(starts[t, p]), np.uint64(starts[t, p + 1])
            for e in range(lo, hi):  # the batch rows i where pixel p is non-zero
                x_ip = xs[e]
                dz_i = dz[who[e], j0 : j0 + BLOCK]
                for j in range(BLOCK):
                    acc[j] += x_ip * dz_i[j]  # dw[p, :] += x[i, p] * dz[i, :]
        for j in range(BLOCK):
            dw_p[j0 + j] = acc[j]
    tail = dw_p[full:]  # the columns after the last whole block
    tail[:] = 0
    for t in range(starts.shape[0]):
        for e in range(np.uint64(starts[t, p]), np.uint64(starts[t, p + 1])):
            x_ip = xs[e]
            dz_i = dz[who[e], full:]
            for j in range(tail.shape[0]):
                tail[j] += x_ip * dz_i[j]


@jit_parallel
def _sparse_weight_grad(
    starts: Array, who: Array, xs: Array, dz: Array, dw: Array
) -> None:
    for p in prange(dw.shape[0]):  # each pixel on one thread
        _pixel_times_dz(p, starts, who, xs, dz, dw[p])


def sparse_weight_grad(groups: PixelGroups, dz: Array, dw: Array) -> Array:
    """The first layer's weight gradient ``x[rows].T @ dz`` from the non-zeros only.

    Replaces ``layers.dense_backward``'s ``dw = x.T @ dout`` on the batch
    ``x = data.to_inputs(pixels)[rows]``: ``dw[p, :] = sum_i x[i, p] dz[i, :]``
    over the batch rows i where pixel p is non-zero, in ascending i, with
    fused multiply-adds; a pixel that is zero in every image of the batch gets
    a zero row. Each pixel runs on one thread, so the result does not depend
    on the number of threads.

    Args:
        groups: the batch's non-zeros by pixel, from ``group_by_pixel``.
        dz: gradient of the loss with respect to the layer's output, (b, H).
        dw: output buffer, (D, H); overwritten.

    Returns:
        ``dw``, (D, H).

    Raises:
        ValueError: the shapes do not match.
    """
    ok = groups.starts.shape[1] == len(dw) + 1 and dw.shape[1] == dz.shape[1]
    ok = ok and groups.size == len(dz)
    check_shapes("sparse_weight_grad", ok, dz=dz, dw=dw, starts=groups.starts)
    _sparse_weight_grad(groups.starts, groups.who, groups.xs, dz, dw)
    return dw
