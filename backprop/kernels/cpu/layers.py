"""The batch gather, and the layers' elementwise work around the products.

References: ``x[batch]`` of ``data.to_inputs``' floats, the bias of
``layers.dense_forward``, ``layers.relu_forward`` and ``layers.relu_backward``.
"""

from __future__ import annotations

import math
from typing import Any

from backprop.kernels.cpu.compile import Array, check_shapes, jit

# --- data ---------------------------------------------------------------------


@jit
def _gather_scale(images: Array, rows: Array, out: Array, scale: Any) -> None:
    n, d = images.shape
    for i in range(rows.shape[0]):
        r = rows[i]
        if r < 0 or r >= n:
            raise IndexError("gather_scale: a row index is out of range")
        for j in range(d):
            out[i, j] = out.dtype.type(images[r, j]) / scale


def gather_scale(images: Array, rows: Array, out: Array) -> Array:
    """Gather a batch of images and scale them to [0, 1] in one pass.

    ``out[i, j] = float(images[rows[i], j]) / 255`` in ``out``'s dtype.
    Replaces ``x[batch]`` on the float array that ``data.load_dataset`` makes
    (``pixels.astype(dtype) / np.asarray(255, dtype)``), so the training set
    can stay uint8; the result is bit-identical to
    ``(images.astype(dtype) / np.asarray(255, dtype))[rows]``.

    Args:
        images: uint8 pixels, shape (N, D).
        rows: int64 indices into ``images``, shape (b,), each in [0, N).
        out: float buffer, shape (B, D) with B >= b; its first b rows are
            overwritten.

    Returns:
        ``out[:b]``, shape (b, D).

    Raises:
        ValueError: ``out`` has fewer than b rows or not D columns.
        IndexError: a row index is out of range.
    """
    b = rows.shape[0]
    if b > out.shape[0] or out.shape[1] != images.shape[1]:
        raise ValueError(
            f"gather_scale: {b} rows of {images.shape[1]} pixels do not fit "
            f"an out buffer of shape {out.shape}"
        )
    _gather_scale(images, rows, out, out.dtype.type(255))
    return out[:b]


# --- layers -------------------------------------------------------------------


@jit
def _bias_relu(z: Array, b: Array) -> None:
    zero = z.dtype.type(0)
    n, h = z.shape
    for i in range(n):
        for j in range(h):
            s = z[i, j] + b[j]
            z[i, j] = s if (s > zero or math.isnan(s)) else zero


def bias_relu(z: Array, b: Array) -> Array:
    """Add the bias and apply ReLU, in place: ``z[i, j] = max(z[i, j] + b[j], 0)``.

    Replaces the ``+ b`` of ``layers.dense_forward`` followed by
    ``layers.relu_forward`` (``np.maximum(x, 0)``), on ``z = x @ w`` from BLAS.
    Bit-identical to ``np.maximum(z + b, 0)``: NaN propagates (the training
    loop's NaN guard needs it to survive), and a zero sum of either sign gives
    +0.0, which is what ``np.maximum(-0.0, 0)`` returns (it returns its second
    argument when the two compare equal).

    Args:
        z: pre-activations without the bias, shape (N, H); overwritten.
        b: biases, shape (H,).

    Returns:
        ``z``, now the activations, shape (N, H).

    Raises:
        ValueError: the shapes do not match.
    """
    check_shapes("bias_relu", b.shape == z.shape[1:], z=z, b=b)
    _bias_relu(z, b)
    return z


@jit
def _bias_add(z: Array, b: Array) -> None:
    n, h = z.shape
    for i in range(n):
        for j in range(h):
            z[i, j] = z[i, j] + b[j]


def bias_add(z: Array, b: Array) -> Array:
    """Add the bias in place: ``z[i, j] += b[j]``.

    Replaces the ``+ b`` of ``layers.dense_forward`` for the logits layer (no
    ReLU after it). Bit-identical to ``z + b``.

    Args:
        z: ``x @ w``, shape (N, H); overwritten.
        b: biases, shape (H,).

    Returns:
        ``z``, shape (N, H).

    Raises:
        ValueError: the shapes do not match.
    """
    check_shapes("bias_add", b.shape == z.shape[1:], z=z, b=b)
    _bias_add(z, b)
    return z


@jit
def _relu_backward_bias_grad(dout: Array, out: Array, db: Array) -> None:
    zero = dout.dtype.type(0)
    n, h = dout.shape
    for j in range(h):
        db[j] = zero
    for i in range(n):  # rows in order, as NumPy's axis-0 sum adds them
        for j in range(h):
            if not out[i, j] > zero:
                dout[i, j] = zero
            db[j] += dout[i, j]


def relu_backward_bias_grad(dout: Array, out: Array, db: Array) -> Array:
    """Mask the gradient by ReLU and sum it into the bias gradient, in one pass.

    ``dout[i, j] = dout[i, j] if out[i, j] > 0 else 0``, then
    ``db[j] = sum_i dout[i, j]``. Replaces ``layers.relu_backward`` and the
    ``db = dout.sum(axis=0)`` of ``layers.dense_backward`` for the layer below
    the ReLU. The mask is bit-identical (NaN in ``out`` gives 0, as
    ``np.where(out > 0, ...)`` does). ``db`` adds the rows in order, starting
    from +0.0, in the arrays' dtype: bit-identical to NumPy's
    ``dout.sum(axis=0)`` of a C-contiguous array with H >= 2 (NumPy adds whole
    rows there); for H == 1 NumPy sums pairwise and the two agree within the
    usual summation error bound.

    Args:
        dout: gradient with respect to the ReLU's output, shape (N, H);
            overwritten with the gradient with respect to its input.
        out: the ReLU's output from the forward pass, shape (N, H).
        db: output buffer for the bias gradient, shape (H,).

    Returns:
        ``dout``, masked, shape (N, H).

    Raises:
        ValueError: the shapes do not match.
    """
    ok = out.shape == dout.shape and db.shape == dout.shape[1:]
    check_shapes("relu_backward_bias_grad", ok, dout=dout, out=out, db=db)
    _relu_backward_bias_grad(dout, out, db)
    return dout
