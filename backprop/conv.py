"""Convolution and max-pooling as ``forward -> (out, cache)``, ``backward`` pairs.

Layout is Keras's ``channels_last``: images are (N, H, W, C) and kernels
(KH, KW, C, F), so a kernel copies into a ``keras.layers.Conv2D`` as it is.
Like ``tf.nn.conv2d`` (and every deep-learning library), "convolution" here is
a cross-correlation: the kernel slides over the image without being flipped,

    out[n, y, x, f] = b[f] + sum_{i, j, c} xpad[n, y*s + i, x*s + j, c] w[i, j, c, f]

The forward pass is written as ``im2col``. For each of the KH*KW kernel
offsets (i, j), the entries that this offset multiplies, one per output
position, form one strided slice of the padded input; copying the slices
into ``cols`` (KH, KW, C, OH, OW, N) turns the whole convolution into one
matrix product, (F, KH*KW*C) @ (KH*KW*C, OH*OW*N). The backward pass is the
same two steps read backwards: matrix products for the kernel's and the
columns' gradients, then ``col2im`` adds each offset's slice back where it
came from (lecture 12 derives it).

``cols`` keeps the channel and the kernel offset in front (rows of the
matrix) and the OH*OW*N positions behind (its columns), the batch last. Each
offset's slice is then copied in long contiguous runs (the N images of a
pixel lie side by side), and the products have the long axis where BLAS wants
it; the other order, (N*OH*OW, KH*KW*C) @ (KH*KW*C, F), does the same
arithmetic several times slower on a CPU, because F is small (6 or 16). The
arrays passed between layers are still indexed (N, H, W, C); in memory they
are (C, H, W, N), channel by channel and row by row, the batch innermost.

Padding ``"same"`` follows TensorFlow: the output has ceil(H / s) rows,
``pad_total = max((OH - 1) * s + KH - H, 0)`` rows of zeros are added, the
smaller half (``pad_total // 2``) on top and the rest at the bottom; likewise
for columns. ``"valid"`` adds none: OH = (H - KH) // s + 1.
"""

from __future__ import annotations

from typing import Any

from backprop.device import xp_of
from backprop.errors import ConfigError

Array = Any  # a numpy.ndarray or cupy.ndarray
PADDINGS = ("valid", "same")


def output_size(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """Output length along one axis and the zeros added before it.

    Args:
        size: input length (H or W).
        kernel: kernel length (KH or KW).
        stride: step between windows.
        padding: ``"valid"`` or ``"same"`` (TensorFlow's meaning).

    Returns:
        ``(out, before)``: the output length and the padding before the
        input; the padding after it is ``(out - 1) * stride + kernel - size
        - before`` (possibly negative with "valid": rows never read).

    Raises:
        ConfigError: an unknown padding, a stride below 1, or a "valid"
            kernel larger than the input.
    """
    if padding not in PADDINGS:
        raise ConfigError(f"unknown padding {padding!r}; choose valid or same")
    if stride < 1 or kernel < 1:
        raise ConfigError(f"kernel {kernel} and stride {stride} must be >= 1")
    if padding == "valid":
        if kernel > size:
            raise ConfigError(f"kernel {kernel} is larger than the input {size}")
        return (size - kernel) // stride + 1, 0
    out = -(-size // stride)  # ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2


def pad_input(x: Array, kh: int, kw: int, stride: int, padding: str) -> Array:
    """``x`` with TensorFlow's zero padding around its rows and columns.

    Args:
        x: images, (N, H, W, C).
        kh: kernel height.
        kw: kernel width.
        stride: the convolution's stride.
        padding: ``"valid"`` or ``"same"``.

    Returns:
        xpad: (N, Hp, Wp, C), at least (N, (OH - 1) * s + KH, (OW - 1) * s +
        KW, C); in memory a (C, Hp, Wp, N) array, the batch innermost.
    """
    xp = xp_of(x)
    n, h, w, c = x.shape
    oh, top = output_size(h, kh, stride, padding)
    ow, left = output_size(w, kw, stride, padding)
    hp = max((oh - 1) * stride + kh, top + h)  # "valid" may leave rows unread
    wp = max((ow - 1) * stride + kw, left + w)
    xpad = xp.zeros((c, hp, wp, n), dtype=x.dtype)  # (C, Hp, Wp, N)
    xpad[:, top : top + h, left : left + w, :] = x.transpose(3, 1, 2, 0)
    return xpad.transpose(3, 1, 2, 0)  # (N, Hp, Wp, C), a view


def offset_slices(i: int, j: int, oh: int, ow: int, stride: int) -> tuple[slice, slice]:
    """The rows and columns that kernel offset (i, j) reads for every output.

    Output ``(y, x)`` reads input ``(y*s + i, x*s + j)``, so offset (i, j)
    reads rows ``i, i + s, ..., i + (OH - 1) s`` and the like columns: one
    strided slice of OH x OW entries.
    """
    rows = slice(i, i + (oh - 1) * stride + 1, stride)  # OH rows
    columns = slice(j, j + (ow - 1) * stride + 1, stride)  # OW columns
    return rows, columns


def im2col(xpad: Array, kh: int, kw: int, stride: int, oh: int, ow: int) -> Array:
    """What each kernel offset multiplies, for every output position.

    Args:
        xpad: padded images, (N, Hp, Wp, C).
        kh: kernel height.
        kw: kernel width.
        stride: step between windows.
        oh: output height.
        ow: output width.

    Returns:
        cols: (KH, KW, C, OH, OW, N); ``cols[i, j, c, y, x, n]`` is
        ``xpad[n, y*s + i, x*s + j, c]``: channel c of the images, shifted by
        the offset (i, j) and read every s-th row and column.
    """
    xp = xp_of(xpad)
    n, _, _, c = xpad.shape
    images = xpad.transpose(3, 1, 2, 0)  # (C, Hp, Wp, N)
    cols = xp.empty((kh, kw, c, oh, ow, n), dtype=xpad.dtype)  # (KH,KW,C,OH,OW,N)
    for i in range(kh):
        for j in range(kw):
            rows, columns = offset_slices(i, j, oh, ow, stride)
            cols[i, j] = images[:, rows, columns, :]  # (C, OH, OW, N)
    return cols


def col2im(dcols: Array, xpad_shape: tuple, stride: int) -> Array:
    """Add each offset's gradient back where ``im2col`` copied it from.

    Args:
        dcols: gradients of the columns, (KH, KW, C, OH, OW, N).
        xpad_shape: shape of the padded input, (N, Hp, Wp, C).
        stride: step between windows.

    Returns:
        dxpad: (N, Hp, Wp, C); an entry read by several offsets receives the
        sum of their gradients.
    """
    xp = xp_of(dcols)
    kh, kw, c, oh, ow, n = dcols.shape
    _, hp, wp, _ = xpad_shape
    dimages = xp.zeros((c, hp, wp, n), dtype=dcols.dtype)  # (C, Hp, Wp, N)
    for i in range(kh):
        for j in range(kw):
            rows, columns = offset_slices(i, j, oh, ow, stride)
            # one offset reads each entry at most once, so += is a true sum
            dimages[:, rows, columns, :] += dcols[i, j]  # (C, OH, OW, N)
    return dimages.transpose(3, 1, 2, 0)  # (N, Hp, Wp, C)


def conv2d_forward(
    x: Array, w: Array, b: Array, stride: int = 1, padding: str = "valid"
) -> tuple[Array, tuple]:
    """2-D convolution (cross-correlation, as in TensorFlow) plus a bias.

    Args:
        x: images, (N, H, W, C).
        w: kernels, (KH, KW, C, F), Keras's ``Conv2D`` layout.
        b: biases, (F,).
        stride: step between windows, the same along rows and columns.
        padding: ``"valid"`` or ``"same"`` (see the module docstring).

    Returns:
        out: (N, OH, OW, F).
        cache: ``(x_shape, xpad_shape, cols, w, stride, padding)`` for the
            backward pass.

    Raises:
        ConfigError: shapes that do not fit, or a bad stride or padding.
    """
    n, h, wd, c = x.shape
    kh, kw, kc, f = w.shape
    if kc != c or b.shape != (f,):
        raise ConfigError(
            f"conv2d: input {tuple(x.shape)}, kernel {tuple(w.shape)} and bias "
            f"{tuple(b.shape)} do not fit (N, H, W, C), (KH, KW, C, F), (F,)"
        )
    oh, _ = output_size(h, kh, stride, padding)
    ow, _ = output_size(wd, kw, stride, padding)
    xpad = pad_input(x, kh, kw, stride, padding)  # (N, Hp, Wp, C)
    cols = im2col(xpad, kh, kw, stride, oh, ow)  # (KH, KW, C, OH, OW, N)
    matrix = cols.reshape(kh * kw * c, oh * ow * n)  # (KH*KW*C, OH*OW*N)
    out = w.reshape(kh * kw * c, f).T @ matrix  # (F, OH*OW*N)
    out += b[:, None]  # (F, OH*OW*N)
    out = out.reshape(f, oh, ow, n).transpose(3, 1, 2, 0)  # (N, OH, OW, F), a view
    return out, (x.shape, xpad.shape, cols, w, stride, padding)


def conv2d_backward(
    dout: Array, cache: tuple, *, input_grad: bool = True
) -> tuple[Array | None, Array, Array]:
    """Gradients of the convolution.

    The forward pass is ``out = W.T @ cols + b``, with ``W`` the kernel as a
    (KH*KW*C, F) matrix and ``cols`` a (KH*KW*C, OH*OW*N) matrix, so the
    dense layer's three rules apply to it:

    * ``db = dout`` summed over every position: (F,).
    * ``dW = cols @ dout``: entry ``dw[i, j, c, f] = sum_{n,y,x}
      xpad[n, y*s + i, x*s + j, c] dout[n, y, x, f]``, the correlation of the
      input with ``dout``.
    * ``dcols = W @ dout.T``, then ``col2im`` adds every offset's slice back
      into place. For stride 1 this sum is the "full" convolution of ``dout``
      (padded by KH-1 and KW-1) with the kernel flipped in both directions:
      ``dxpad[n, p, q, c] = sum_{i,j,f} dout[n, p-i, q-j, f] w[i, j, c, f]``.
      The padding's gradient is dropped by cropping.

    Args:
        dout: gradient of the loss with respect to ``out``, (N, OH, OW, F).
        cache: from ``conv2d_forward``.
        input_grad: compute ``dx``; the first layer of a network skips it.

    Returns:
        dx: (N, H, W, C), or None when ``input_grad`` is False.
        dw: (KH, KW, C, F).
        db: (F,).
    """
    x_shape, xpad_shape, cols, w, stride, padding = cache
    n, oh, ow, f = dout.shape
    kh, kw, c, _ = w.shape
    dout_t = dout.transpose(3, 1, 2, 0).reshape(f, oh * ow * n)  # (F, OH*OW*N)
    db = dout_t.sum(axis=1)  # (F,)
    matrix = cols.reshape(kh * kw * c, oh * ow * n)  # (KH*KW*C, OH*OW*N)
    dw = (matrix @ dout_t.T).reshape(kh, kw, c, f)  # (KH, KW, C, F)
    if not input_grad:
        return None, dw, db
    dcols = w.reshape(kh * kw * c, f) @ dout_t  # (KH*KW*C, OH*OW*N)
    dcols = dcols.reshape(kh, kw, c, oh, ow, n)  # (KH, KW, C, OH, OW, N)
    dxpad = col2im(dcols, xpad_shape, stride)  # (N, Hp, Wp, C)
    _, h, wd, _ = x_shape
    _, top = output_size(h, kh, stride, padding)
    _, left = output_size(wd, kw, stride, padding)
    dx = dxpad[:, top : top + h, left : left + wd, :]  # (N, H, W, C)
    return dx, dw, db


def maxpool_forward(x: Array, pool: int = 2, stride: int = 2) -> tuple[Array, tuple]:
    """Max-pooling over ``pool`` x ``pool`` windows, no padding (Keras "valid").

    Args:
        x: images, (N, H, W, C).
        pool: window height and width.
        stride: step between windows.

    Returns:
        out: (N, OH, OW, C) with OH = (H - pool) // stride + 1.
        cache: ``(x_shape, first, pool, stride)``; ``first`` (N, OH, OW, C)
        is the offset ``i * pool + j`` of the first maximum of each window.
    """
    xp = xp_of(x)
    _, h, w, _ = x.shape
    oh, _ = output_size(h, pool, stride, "valid")
    ow, _ = output_size(w, pool, stride, "valid")
    out = first = None
    for i in range(pool):  # row-major, and only a larger value takes over:
        for j in range(pool):  # ties keep the first maximum
            rows, columns = offset_slices(i, j, oh, ow, stride)
            window = x[:, rows, columns, :]  # (N, OH, OW, C): offset (i, j) of each
            if out is None:  # laid out in memory like x, so the loops run in order
                out = xp.empty_like(window)  # (N, OH, OW, C)
                out[...] = window
                first = xp.zeros_like(window, dtype=xp.int8)  # (N, OH, OW, C)
                continue
            larger = window > out  # (N, OH, OW, C)
            first[larger] = i * pool + j
            xp.maximum(out, window, out=out)  # (N, OH, OW, C)
    return out, (x.shape, first, pool, stride)


def maxpool_backward(dout: Array, cache: tuple) -> Array:
    """Gradient of max-pooling: each window's ``dout`` goes to its maximum.

    Ties: when several entries of a window equal its maximum, the whole
    gradient goes to the first of them in row-major order (smallest row, then
    smallest column), which is where TensorFlow's ``MaxPoolGrad`` sends it
    (``tests/engine/test_conv_tf_parity.py`` checks it on windows of equal values).
    Overlapping windows (stride < pool) add their gradients.

    Args:
        dout: gradient of the loss with respect to ``out``, (N, OH, OW, C).
        cache: from ``maxpool_forward``.

    Returns:
        dx: (N, H, W, C).
    """
    xp = xp_of(dout)
    x_shape, first, pool, stride = cache
    n, h, w, c = x_shape
    _, oh, ow, _ = first.shape
    dx = xp.zeros((c, h, w, n), dtype=dout.dtype).transpose(3, 1, 2, 0)  # (N,H,W,C)
    if not dout.transpose(3, 1, 2, 0).flags.c_contiguous:  # e.g. from a dense layer
        dout = dout.transpose(3, 1, 2, 0).copy().transpose(3, 1, 2, 0)  # like dx
    for i in range(pool):
        for j in range(pool):
            rows, columns = offset_slices(i, j, oh, ow, stride)
            mine = first == i * pool + j  # (N, OH, OW, C): windows whose max is here
            dx[:, rows, columns, :] += xp.where(mine, dout, 0)  # (N, OH, OW, C)
    return dx
