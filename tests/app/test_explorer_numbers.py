"""The explorer's numbers where the model is sure: they still read, and move.

A clearly drawn digit can make a float32 model's ``p`` exactly 1.0, its loss
0.0 and its own dL/dlogit 0.0; the explorer then also sends ``1 - p`` and
``-log p`` in float64 (``session.precise``), and computes the hidden
gradients with the engine's own ``MLP.backward(..., return_hidden=True)``.
"""

from __future__ import annotations

import numpy as np
import pytest

from backprop.app.explorer.session import Session, backward, precise
from backprop.layers import relu_backward
from backprop.losses import softmax, softmax_cross_entropy
from backprop.model import MLP


def test_backward_returns_the_hidden_gradients_of_every_layer():
    rng = np.random.default_rng(0)
    model = MLP([12, 7, 5, 4], seed=3, dtype="float64")
    x, y = rng.random((6, 12)), rng.integers(0, 4, 6)  # (N, D), (N,)
    logits, caches = model.forward(x)
    _, dlogits = softmax_cross_entropy(logits, y)  # (N, C)
    grads, dhidden = model.backward(dlogits, caches, return_hidden=True)
    plain = model.backward(dlogits, caches)
    assert plain.keys() == grads.keys()
    for name in plain:
        np.testing.assert_array_equal(grads[name], plain[name])
    w2, w3 = model.params["dense2.w"], model.params["dense3.w"]
    h2 = caches[1][1]  # (N, 5): relu output of layer 2
    dh2 = dlogits @ w3.T  # (N, 5)
    dh1 = np.where(h2 > 0, dh2, 0) @ w2.T  # (N, 7)
    assert [d.shape for d in dhidden] == [(6, 7), (6, 5)]
    np.testing.assert_allclose(dhidden[1], dh2, rtol=1e-12)
    np.testing.assert_allclose(dhidden[0], dh1, rtol=1e-12)
    # and dL/dh is the gradient the finite differences see at h
    eps, (i, j) = 1e-6, (2, 3)
    w, b = model.params["dense2.w"], model.params["dense2.b"]

    def loss_at(h1: np.ndarray) -> float:
        h2 = np.maximum(h1 @ w + b, 0)
        z = h2 @ w3 + model.params["dense3.b"]
        return float(softmax_cross_entropy(z, y)[0])

    h1 = caches[0][1].copy()
    h1[i, j] += eps
    up = loss_at(h1)
    h1[i, j] -= 2 * eps
    assert (up - loss_at(h1)) / (2 * eps) == pytest.approx(dhidden[0][i, j], rel=1e-6)


def test_the_explorers_backward_is_the_engines():
    model = MLP([784, 16, 10], seed=1)
    x = np.random.default_rng(1).random(784)
    answer = backward(model, x, 4)
    xb = x.reshape(1, -1).astype(np.float32)  # (1, 784)
    loss, grads = model.loss_and_grads(xb, np.array([4]))
    assert answer["loss"] == float(loss)
    for name in grads:
        np.testing.assert_array_equal(answer["grads"][name], grads[name])
    logits, caches = model.forward(xb)
    dlogits = softmax(logits) - np.eye(10, dtype=np.float32)[4]  # (1, 10)
    dh = dlogits @ model.params["dense2.w"].T  # (1, 16)
    np.testing.assert_allclose(answer["grad_hidden"][0], dh[0], rtol=1e-5, atol=1e-8)
    dz1 = relu_backward(dh, caches[0][1])[0]  # (16,)
    np.testing.assert_allclose(answer["grad_pre1"], dz1, rtol=1e-5, atol=1e-8)
    assert np.count_nonzero(answer["grad_pre1"]) == np.count_nonzero(caches[0][1])


def test_precise_reads_where_float32_says_one():
    logits = np.array([0.0, 22.0, 1.0, -3.0], dtype=np.float32)  # (C,)
    p32 = softmax(logits[None])[0]
    assert p32[1] == 1.0  # float32 cannot tell
    numbers = precise(logits)
    z = logits.astype(np.float64)
    rest = np.exp(z[[0, 2, 3]] - 22).sum()  # the others' share, ~2.8e-10
    assert numbers["complement"][1] == pytest.approx(rest / (1 + rest), rel=1e-12)
    assert numbers["losses"][1] == pytest.approx(np.log1p(rest), rel=1e-12)
    for c in (0, 2, 3):
        log_p = z[c] - 22 - np.log1p(rest)
        assert numbers["losses"][c] == pytest.approx(-log_p, rel=1e-12)
        assert numbers["complement"][c] == pytest.approx(1 - np.exp(log_p), rel=1e-12)


def sure_session() -> tuple[Session, np.ndarray]:
    """A model sure, in float32, that the example is a 7; and the example."""
    model = MLP([784, 16, 10], seed=2)
    model.params["dense2.b"][7] = 25.0
    x = np.random.default_rng(2).random(784) * 0.5  # (784,)
    return Session(model, [str(d) for d in range(10)]), x


def test_on_a_sure_digit_a_step_moves_what_the_page_shows():
    session, x = sure_session()
    before = session.backward(x, 7)
    assert before["probabilities"][7] == 1.0 and before["grad_logits"][7] == 0.0
    assert 0 < before["complement"][7] < 1e-8 and 0 < before["losses"][7] < 1e-8
    assert all(0 < abs(g) < 1e-8 for c, g in enumerate(before["grad_logits"]) if c != 7)
    step = session.step(x, 7)
    assert step["probabilities"][7] == step["probabilities_before"][7] == 1.0
    assert step["complement_before"][7] == before["complement"][7]
    assert step["complement"][7] < step["complement_before"][7]  # it moved
    assert step["losses"][7] < step["losses_before"][7]
    # a wrong class has a loss and gradients of order 1
    wrong = session.backward(x, 3)
    assert wrong["losses"][3] > 10 and max(map(abs, wrong["grad_logits"])) > 0.9
