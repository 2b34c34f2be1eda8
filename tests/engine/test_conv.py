"""Convolution and max-pooling: gradient checks, shapes, padding, ties, bad input.

The gradient checks are central differences in float64 (``backprop.gradcheck``)
on random shapes drawn by hypothesis: batch 1 and more, one channel and
several, odd sizes, stride 1 and 2, both paddings, kernels 1x1 to 5x5.
The parity with TensorFlow is in ``test_conv_tf_parity.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backprop import gradcheck
from backprop.conv import output_size, pad_input
from backprop.errors import ConfigError
from backprop.layers import (
    conv2d_backward,
    conv2d_forward,
    maxpool_backward,
    maxpool_forward,
)


@st.composite
def conv_cases(draw):
    """A random convolution: shapes, stride, padding and float64 values."""
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    padding = draw(st.sampled_from(["valid", "same"]))
    low_h, low_w = (kh, kw) if padding == "valid" else (1, 1)
    h, w = draw(st.integers(low_h, low_h + 6)), draw(st.integers(low_w, low_w + 6))
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.sampled_from([1, 2]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, h, w, c))  # (N, H, W, C)
    k = rng.standard_normal((kh, kw, c, f))  # (KH, KW, C, F)
    b = rng.standard_normal(f)  # (F,)
    return x, k, b, stride, padding, rng


@given(conv_cases())
def test_conv_gradients_pass_the_checker(case):
    x, w, b, stride, padding, rng = case
    out, cache = conv2d_forward(x, w, b, stride, padding)
    dout = rng.standard_normal(out.shape)  # (N, OH, OW, F)
    dx, dw, db = conv2d_backward(dout, cache)
    reports = gradcheck.check_layer(
        lambda x, w, b: conv2d_forward(x, w, b, stride, padding)[0],
        {"x": x, "w": w, "b": b},
        dout,
        {"x": dx, "w": dw, "b": db},
    )
    for report in reports:
        assert report.passed, str(report)
        assert report.rel_error < 1e-7


@given(conv_cases())
def test_conv_equals_the_direct_sliding_dot_product(case):
    """im2col computes the definition: out[n,y,x,f] = b[f] + sum xpad * w."""
    x, w, b, stride, padding, _ = case
    out, _ = conv2d_forward(x, w, b, stride, padding)
    kh, kw, _, f = w.shape
    xpad = pad_input(x, kh, kw, stride, padding)
    n, oh, ow, _ = out.shape
    direct = np.empty_like(out)
    for y in range(oh):
        for x_ in range(ow):
            window = xpad[
                :, y * stride : y * stride + kh, x_ * stride : x_ * stride + kw
            ]
            direct[:, y, x_] = np.einsum("nijc,ijcf->nf", window, w) + b
    np.testing.assert_allclose(out, direct, rtol=1e-12, atol=1e-12)


@given(conv_cases())
def test_input_gradient_is_a_full_convolution_with_the_flipped_kernel(case):
    """For stride 1, dx = full correlation of dout with the kernel flipped in
    both directions (and its in/out channels swapped), cropped to the input."""
    x, w, b, _, padding, rng = case
    out, cache = conv2d_forward(x, w, b, 1, padding)
    dout = rng.standard_normal(out.shape)
    dx, _, _ = conv2d_backward(dout, cache)
    kh, kw = w.shape[:2]
    flipped = w[::-1, ::-1].transpose(0, 1, 3, 2)  # (KH, KW, F, C)
    full = np.pad(dout, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
    dxpad, _ = conv2d_forward(full, flipped, np.zeros(x.shape[3]), 1, "valid")
    _, top = output_size(x.shape[1], kh, 1, padding)
    _, left = output_size(x.shape[2], kw, 1, padding)
    expected = dxpad[:, top : top + x.shape[1], left : left + x.shape[2]]
    np.testing.assert_allclose(dx, expected, rtol=1e-12, atol=1e-12)


@st.composite
def pool_cases(draw):
    """Max-pool inputs whose entries differ by 1e-2 or more: no tie, no kink."""
    pool, stride = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(pool, pool + 6)), draw(st.integers(pool, pool + 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.permutation(n * h * w * c) * 1e-2  # distinct, 1e-2 apart
    return values.reshape(n, h, w, c), pool, stride, rng


@given(pool_cases())
def test_maxpool_gradient_passes_the_checker(case):
    x, pool, stride, rng = case
    out, cache = maxpool_forward(x, pool, stride)
    dout = rng.standard_normal(out.shape)
    (report,) = gradcheck.check_layer(
        lambda x: maxpool_forward(x, pool, stride)[0],
        {"x": x},
        dout,
        {"x": maxpool_backward(dout, cache)},
    )
    assert report.passed, str(report)


@given(pool_cases())
def test_maxpool_forward_is_the_window_maximum(case):
    x, pool, stride, _ = case
    out, _ = maxpool_forward(x, pool, stride)
    n, oh, ow, c = out.shape
    assert (oh, ow) == (
        (x.shape[1] - pool) // stride + 1,
        (x.shape[2] - pool) // stride + 1,
    )
    for y in range(oh):
        for x_ in range(ow):
            window = x[
                :, y * stride : y * stride + pool, x_ * stride : x_ * stride + pool
            ]
            np.testing.assert_array_equal(out[:, y, x_], window.max(axis=(1, 2)))


def test_maxpool_tie_sends_the_gradient_to_the_first_maximum_row_major():
    x = np.zeros((1, 4, 4, 1))
    x[0, 2:, 2:, 0] = [[1.0, 3.0], [3.0, 3.0]]  # bottom-right window: tie of three
    dout = np.arange(1.0, 5.0).reshape(1, 2, 2, 1)
    out, cache = maxpool_forward(x, 2, 2)
    dx = maxpool_backward(dout, cache)[0, :, :, 0]
    expected = np.zeros((4, 4))
    expected[0, 0], expected[0, 2], expected[2, 0] = 1.0, 2.0, 3.0  # all-zero windows
    expected[2, 3] = 4.0  # the 3.0 at row 2, column 3 comes first
    np.testing.assert_array_equal(dx, expected)
    assert dx.sum() == dout.sum()  # every window routes its gradient exactly once


def test_overlapping_windows_add_their_gradients():
    x = np.zeros((1, 3, 3, 1))
    x[0, 1, 1, 0] = 5.0  # the maximum of all four 2x2 windows (stride 1)
    out, cache = maxpool_forward(x, 2, 1)
    dx = maxpool_backward(np.ones_like(out), cache)
    assert dx[0, 1, 1, 0] == 4.0 and dx.sum() == 4.0


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [
        (28, 5, 1, (28, 2)),  # pad 2 + 2
        (4, 4, 1, (4, 1)),  # even kernel: 3 rows, 1 on top and 2 below
        (7, 3, 2, (4, 1)),  # ceil(7/2) = 4, pad_total = 3*2 + 3 - 7 = 2
        (8, 3, 2, (4, 0)),  # pad_total = 3*2 + 3 - 8 = 1: all of it below
        (5, 1, 3, (2, 0)),  # pad_total = max(3 + 1 - 5, 0) = 0
    ],
)
def test_same_padding_is_tensorflows(size, kernel, stride, expected):
    assert output_size(size, kernel, stride, "same") == expected


def test_valid_output_size():
    assert output_size(28, 5, 1, "valid") == (24, 0)
    assert output_size(9, 3, 2, "valid") == (4, 0)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "b_shape", "kwargs", "message"),
    [
        ((1, 5, 5, 2), (3, 3, 1, 4), (4,), {}, "do not fit"),
        ((1, 5, 5, 1), (3, 3, 1, 4), (3,), {}, "do not fit"),
        ((1, 5, 5, 1), (3, 3, 1, 4), (4,), {"padding": "full"}, "unknown padding"),
        ((1, 2, 5, 1), (3, 3, 1, 4), (4,), {}, "larger than the input"),
        ((1, 5, 5, 1), (3, 3, 1, 4), (4,), {"stride": 0}, "must be >= 1"),
    ],
)
def test_bad_convolutions_are_one_clear_error(
    x_shape, w_shape, b_shape, kwargs, message
):
    with pytest.raises(ConfigError, match=message):
        conv2d_forward(
            np.zeros(x_shape), np.zeros(w_shape), np.zeros(b_shape), **kwargs
        )


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    x = rng.random((2, 6, 6, 2), dtype=np.float32)
    w = rng.random((3, 3, 2, 4), dtype=np.float32)
    out, cache = conv2d_forward(x, w, np.zeros(4, np.float32), 2, "same")
    grads = conv2d_backward(np.ones_like(out), cache)
    pooled, pool_cache = maxpool_forward(out, 2, 1)
    assert out.dtype == pooled.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads)
    assert maxpool_backward(pooled, pool_cache).dtype == np.float32


def test_first_layer_skips_the_input_gradient():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 5, 5, 1)), rng.standard_normal((3, 3, 1, 2))
    out, cache = conv2d_forward(x, w, np.zeros(2))
    dx, dw, db = conv2d_backward(np.ones_like(out), cache, input_grad=False)
    assert dx is None
    _, dw_full, db_full = conv2d_backward(np.ones_like(out), cache)
    np.testing.assert_array_equal(dw, dw_full)
    np.testing.assert_array_equal(db, db_full)
