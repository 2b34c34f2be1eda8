"""Layer forward/backward on small cases computed by hand."""

import numpy as np

from backprop.device import to_numpy
from backprop.layers import dense_backward, dense_forward, relu_backward, relu_forward


def test_dense_forward_by_hand(xp):
    x = xp.asarray([[1.0, 2.0], [3.0, -1.0]])  # (2, 2)
    w = xp.asarray([[1.0, 0.0, -1.0], [2.0, 1.0, 0.5]])  # (2, 3)
    b = xp.asarray([0.5, -1.0, 0.0])
    out, cache = dense_forward(x, w, b)
    # row 0: [1+4, 0+2, -1+1] + b ; row 1: [3-2, 0-1, -3-0.5] + b
    np.testing.assert_array_equal(to_numpy(out), [[5.5, 1.0, 0.0], [1.5, -2.0, -3.5]])
    assert cache[0] is x and cache[1] is w


def test_dense_backward_by_hand(xp):
    x = xp.asarray([[1.0, 2.0], [3.0, -1.0]])
    w = xp.asarray([[1.0, 0.0, -1.0], [2.0, 1.0, 0.5]])
    b = xp.zeros(3)
    _, cache = dense_forward(x, w, b)
    dout = xp.asarray([[1.0, 0.0, 2.0], [0.0, -1.0, 1.0]])
    dx, dw, db = dense_backward(dout, cache)
    # dx = dout @ w.T ; dw = x.T @ dout ; db = column sums
    np.testing.assert_array_equal(to_numpy(dx), [[-1.0, 3.0], [-1.0, -0.5]])
    np.testing.assert_array_equal(to_numpy(dw), [[1.0, -3.0, 5.0], [2.0, 1.0, 3.0]])
    np.testing.assert_array_equal(to_numpy(db), [1.0, -1.0, 3.0])


def test_dense_backward_can_skip_input_gradient(xp):
    x, w, b = xp.ones((4, 3)), xp.ones((3, 2)), xp.zeros(2)
    _, cache = dense_forward(x, w, b)
    dx, dw, db = dense_backward(xp.ones((4, 2)), cache, input_grad=False)
    assert dx is None
    assert dw.shape == (3, 2) and db.shape == (2,)


def test_relu_forward_and_backward_by_hand(xp):
    x = xp.asarray([[-2.0, 0.0, 3.0], [1.5, -0.1, 0.0]])
    out, cache = relu_forward(x)
    np.testing.assert_array_equal(to_numpy(out), [[0, 0, 3.0], [1.5, 0, 0]])
    dout = xp.asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    dx = relu_backward(dout, cache)
    # the gradient passes only where the input was > 0; at exactly 0 it is 0
    np.testing.assert_array_equal(to_numpy(dx), [[0, 0, 3.0], [4.0, 0, 0]])
    assert dx.dtype == dout.dtype


def test_layers_keep_float32(xp):
    x = xp.ones((2, 3), dtype=np.float32)
    w = xp.ones((3, 4), dtype=np.float32)
    b = xp.zeros(4, dtype=np.float32)
    out, cache = dense_forward(x, w, b)
    out, relu_cache = relu_forward(out)
    dx = relu_backward(xp.ones_like(out), relu_cache)
    grads = dense_backward(dx, cache)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads)
