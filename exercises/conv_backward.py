"""Lecture 12, exercise 1: the backward pass of a convolution.

``conv2d_forward`` below is given: the direct sliding dot product of lecture
12, in the engine's layout (images (N, H, W, C), kernels (KH, KW, C, F)) with
TensorFlow's "valid" and "same" padding and any stride. Write
``conv2d_backward``. Derive it first (lecture 12): ``db`` sums ``dout`` over
every position, ``dw`` correlates the padded input with ``dout``, and ``dx``
adds each output's gradient back, through the kernel, onto the window it read
(for stride 1: a full convolution of ``dout`` with the flipped kernel), then
drops the padding.

Grade with ``python -m exercises.grade conv_backward``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop.conv import output_size


def conv2d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, padding: str = "valid"
) -> tuple[np.ndarray, Any]:
    """Convolution (cross-correlation) plus bias, one output position at a time.

    Args:
        x: images, (N, H, W, C).
        w: kernels, (KH, KW, C, F).
        b: biases, (F,).
        stride: step between windows.
        padding: ``"valid"`` or ``"same"`` (TensorFlow's meaning).

    Returns:
        out: (N, OH, OW, F).
        cache: ``(xpad, w, stride, top, left, x.shape)``: the padded input, the
        kernel, the stride, the rows and columns of zeros added on top and on
        the left, and the shape of ``x``.
    """
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    oh, top = output_size(h, kh, stride, padding)
    ow, left = output_size(wd, kw, stride, padding)
    hp = max((oh - 1) * stride + kh, top + h)
    wp = max((ow - 1) * stride + kw, left + wd)
    xpad = np.zeros((n, hp, wp, c), dtype=x.dtype)  # (N, Hp, Wp, C)
    xpad[:, top : top + h, left : left + wd, :] = x
    out = np.empty((n, oh, ow, f), dtype=x.dtype)  # (N, OH, OW, F)
    for y in range(oh):
        for x_ in range(ow):
            window = xpad[
                :, y * stride : y * stride + kh, x_ * stride : x_ * stride + kw
            ]
            out[:, y, x_] = np.einsum("nijc,ijcf->nf", window, w) + b  # (N, F)
    return out, (xpad, w, stride, top, left, x.shape)


def conv2d_backward(
    dout: np.ndarray, cache: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of the convolution.

    Args:
        dout: gradient of the loss with respect to ``out``, (N, OH, OW, F).
        cache: from ``conv2d_forward``.

    Returns:
        dx: (N, H, W, C).
        dw: (KH, KW, C, F).
        db: (F,).
    """
    # TODO
    raise NotImplementedError("conv2d_backward is not written yet")
