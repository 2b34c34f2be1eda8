"""Softmax and cross-entropy on hand-computed cases; fused vs unfused routes."""

import math

import numpy as np
import pytest

from backprop.device import to_numpy
from backprop.losses import (
    KERAS_EPSILON,
    cross_entropy_backward,
    cross_entropy_forward,
    log_softmax,
    one_hot,
    softmax,
    softmax_backward,
    softmax_cross_entropy,
    softmax_forward,
)


def test_softmax_by_hand(xp):
    logits = xp.asarray([[0.0, math.log(3.0)], [1.0, 1.0]])
    np.testing.assert_allclose(to_numpy(softmax(logits)), [[0.25, 0.75], [0.5, 0.5]])
    np.testing.assert_allclose(
        to_numpy(log_softmax(logits)),
        [[math.log(0.25), math.log(0.75)], [math.log(0.5)] * 2],
    )


def test_softmax_cross_entropy_by_hand(xp):
    # two rows, three classes; p = softmax([0, ln 2, ln 5]) = [1/8, 2/8, 5/8]
    logits = xp.asarray([[0.0, math.log(2.0), math.log(5.0)]] * 2)
    labels = xp.asarray([2, 0])
    loss, dlogits = softmax_cross_entropy(logits, labels)
    expected = -(math.log(5 / 8) + math.log(1 / 8)) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-12)
    p = np.array([1 / 8, 2 / 8, 5 / 8])
    np.testing.assert_allclose(
        to_numpy(dlogits),
        [(p - [0, 0, 1]) / 2, (p - [1, 0, 0]) / 2],
        rtol=1e-12,
    )


def test_loss_is_stable_for_huge_logits(xp):
    logits = xp.asarray([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]])
    loss, dlogits = softmax_cross_entropy(logits, xp.asarray([1, 1]))
    assert np.isfinite(float(loss))
    assert float(loss) == pytest.approx(1e4, rel=1e-12)  # row 0 is off by 2e4 / 2
    assert np.isfinite(to_numpy(dlogits)).all()


def test_unfused_chain_equals_fused_gradient(xp):
    rng = np.random.default_rng(0)
    logits = xp.asarray(rng.normal(size=(5, 4)))
    labels = xp.asarray(rng.integers(0, 4, size=5))
    loss, dlogits = softmax_cross_entropy(logits, labels)
    probs, s_cache = softmax_forward(logits)
    loss2, ce_cache = cross_entropy_forward(probs, labels)
    dlogits2 = softmax_backward(cross_entropy_backward(ce_cache), s_cache)
    assert float(loss2) == pytest.approx(float(loss), rel=1e-12)
    np.testing.assert_allclose(to_numpy(dlogits2), to_numpy(dlogits), atol=1e-15)


def test_keras_clip_changes_nothing_when_probabilities_are_moderate(xp):
    probs = xp.asarray([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = xp.asarray([2, 1])
    exact, c1 = cross_entropy_forward(probs, labels)
    clipped, c2 = cross_entropy_forward(probs, labels, clip_eps=KERAS_EPSILON)
    assert float(clipped) == pytest.approx(float(exact), rel=1e-12)
    # the renormalisation adds a term orthogonal to p, so the gradients differ
    # entrywise but agree once pushed through softmax
    np.testing.assert_allclose(
        to_numpy(softmax_backward(cross_entropy_backward(c2), probs)),
        to_numpy(softmax_backward(cross_entropy_backward(c1), probs)),
        atol=1e-15,
    )


def test_keras_clip_saturates_loss_and_stops_gradient(xp):
    probs = xp.asarray([[1.0, 0.0], [0.5, 0.5]])
    labels = xp.asarray([1, 0])
    loss, cache = cross_entropy_forward(probs, labels, clip_eps=KERAS_EPSILON)
    # row 0 picks a clipped 0 -> -log(1e-7); row 1 -> -log(0.5)
    assert float(loss) == pytest.approx(
        (-math.log(KERAS_EPSILON) - math.log(0.5)) / 2, rel=1e-9
    )
    dprobs = to_numpy(cross_entropy_backward(cache))
    assert dprobs[0, 1] == 0.0  # clipped entry passes no gradient
    assert dprobs[1, 0] != 0.0


def test_one_hot(xp):
    np.testing.assert_array_equal(
        to_numpy(one_hot(xp.asarray([2, 0]), 3)), [[0, 0, 1], [1, 0, 0]]
    )
