"""ReLU and max-pooling in one pass, forward and backward.

References: ``layers.relu_forward`` then ``conv.maxpool_forward`` (the
forward), ``conv.maxpool_backward`` then ``layers.relu_backward`` (the
backward), as ``backprop.cnn.CNN`` runs them after each convolution.

The two commute where it matters: the largest of a window's ReLU outputs is
the ReLU of its largest input, and the first position holding it (row-major,
where ``maxpool_backward`` sends the gradient) is the first position of the
largest input when that is positive; when it is not, every output of the
window is 0 and ``relu_backward`` stops its gradient. So one pass over the
convolution's output gives the pooled values and, for each window, the offset
``i * pool + j`` of the input that gets its gradient, or -1 for none; the
backward pass adds ``dout`` there and leaves 0 everywhere else. A NaN is
handled as NumPy handles it: it makes the window's output NaN, and the
gradient goes where ``maxpool_backward`` sends it (the first maximum before
the NaN), if that input is positive.

The forward pass only compares and copies, so its output equals the
reference's bit for bit; so does the backward pass when windows do not
overlap (stride >= pool: each input gets at most one ``dout``). Where they
overlap (stride < pool), an input's gradients from several windows are added
in another order than ``maxpool_backward``'s: equal to the last bit or so.

Arrays are indexed (N, H, W, C) like the reference's, and laid out in memory
as (C, H, W, N), as ``conv.conv2d_forward`` makes them: the kernels run over
that memory, the batch innermost.
"""

from __future__ import annotations

import math

import numpy as np

from backprop.errors import ConfigError
from backprop.kernels.cpu.compile import Array, jit

MAX_POOL = 11  # a window's offsets i * pool + j must fit in int8


@jit
def _relu_maxpool(z: Array, pool: int, stride: int, out: Array, first: Array) -> None:
    c_count, _, _, n_count = z.shape
    _, oh, ow, _ = out.shape
    zero = z.dtype.type(0)
    for c in range(c_count):
        for y in range(oh):
            for x in range(ow):
                best, at = out[c, y, x], first[c, y, x]  # (N,) each
                row = z[c, y * stride, x * stride]  # (N,): offset (0, 0)
                for n in range(n_count):
                    best[n] = row[n]
                    at[n] = 0
                for i in range(pool):  # row-major, and only a larger value
                    for j in range(pool):  # takes over: ties keep the first
                        if i == 0 and j == 0:
                            continue
                        row = z[c, y * stride + i, x * stride + j]  # (N,)
                        for n in range(n_count):
                            v = row[n]
                            if v > best[n]:
                                best[n] = v
                                at[n] = i * pool + j
                            elif math.isnan(v):  # np.maximum propagates NaN
                                best[n] = v
                for n in range(n_count):  # the ReLU: no gradient unless > 0
                    if math.isnan(best[n]):  # the first maximum before the NaN
                        i, j = at[n] // pool, at[n] % pool
                        if not z[c, y * stride + i, x * stride + j, n] > zero:
                            at[n] = -1
                    elif not best[n] > zero:
                        at[n] = -1
                        best[n] = zero  # +0.0, as np.maximum(-0.0, 0) gives


def relu_maxpool_forward(
    z: Array, pool: int = 2, stride: int = 2
) -> tuple[Array, tuple]:
    """ReLU, then max-pooling over ``pool`` x ``pool`` windows ("valid"), in one pass.

    Replaces ``relu_forward`` then ``maxpool_forward``; the output equals
    ``maxpool_forward(relu_forward(z)[0], pool, stride)[0]`` bit for bit.

    Args:
        z: a convolution's output, (N, H, W, C), best laid out as (C, H, W, N)
            in memory (else it is copied so).
        pool: window height and width.
        stride: step between windows.

    Returns:
        out: (N, OH, OW, C), laid out as (C, OH, OW, N); OH = (H - pool) //
        stride + 1.
        cache: ``(z_shape, first, pool, stride)``; ``first`` (C, OH, OW, N)
        int8 is the offset ``i * pool + j`` in each window of the input that
        gets the window's gradient, or -1 where none does.
    """
    if not 1 <= pool <= MAX_POOL:
        raise ConfigError(f"pool {pool} is out of range: 1 to {MAX_POOL}")
    n, h, w, c = z.shape
    oh, ow = (h - pool) // stride + 1, (w - pool) // stride + 1
    zt = np.ascontiguousarray(z.transpose(3, 1, 2, 0))  # (C, H, W, N)
    out = np.empty((c, oh, ow, n), dtype=z.dtype)  # (C, OH, OW, N)
    first = np.empty((c, oh, ow, n), dtype=np.int8)  # (C, OH, OW, N)
    _relu_maxpool(zt, pool, stride, out, first)
    return out.transpose(3, 1, 2, 0), (z.shape, first, pool, stride)


@jit
def _relu_maxpool_backward(
    dout: Array, first: Array, pool: int, stride: int, dz: Array
) -> None:
    c_count, oh, ow, n_count = first.shape
    for c in range(c_count):
        for y in range(oh):
            for x in range(ow):
                for n in range(n_count):
                    at = first[c, y, x, n]
                    if at >= 0:
                        i, j = at // pool, at % pool
                        dz[c, y * stride + i, x * stride + j, n] += dout[c, y, x, n]


def relu_maxpool_backward(dout: Array, cache: tuple) -> Array:
    """Gradient of ``relu_maxpool_forward``: each window's ``dout`` to its input.

    Replaces ``maxpool_backward`` then ``relu_backward``; equal to them bit for
    bit when windows do not overlap (stride >= pool).

    Args:
        dout: gradient of the loss with respect to ``out``, (N, OH, OW, C).
        cache: from ``relu_maxpool_forward``.

    Returns:
        dz: (N, H, W, C), laid out as (C, H, W, N).
    """
    (n, h, w, c), first, pool, stride = cache
    dt = np.ascontiguousarray(dout.transpose(3, 1, 2, 0))  # (C, OH, OW, N)
    dz = np.zeros((c, h, w, n), dtype=dout.dtype)  # (C, H, W, N)
    _relu_maxpool_backward(dt, first, pool, stride, dz)
    return dz.transpose(3, 1, 2, 0)
