"""Property-based tests (hypothesis): gradients of every layer, loss and model agree
with central differences in float64; softmax and the loss keep their invariants.

Shapes are drawn at random: batch sizes 1-16, widths 1-32, 1-3 hidden layers.
Each central difference costs two forward passes, so under the ``ci`` profile
(default: 30 examples per test, derandomized) each example checks a random sample
of ``ENTRIES`` entries of every array; ``HYPOTHESIS_PROFILE=thorough`` runs 500
examples and checks every entry.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from backprop import gradcheck as gc
from backprop.data import BUNDLED_MNIST, load_split
from backprop.device import to_numpy
from backprop.init import INITIALIZERS
from backprop.layers import dense_backward, dense_forward, relu_backward, relu_forward
from backprop.losses import (
    KERAS_EPSILON,
    cross_entropy_backward,
    cross_entropy_forward,
    softmax,
    softmax_backward,
    softmax_cross_entropy,
    softmax_forward,
)
from backprop.model import MLP

RTOL = 1e-7  # the float64 agreement the suite promises
H = gc.policy_for("float64").step
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
ENTRIES = None if THOROUGH else 40  # entries checked per array and example
seeds = st.integers(0, 2**32 - 1)  # which entries are sampled


def sample(array, seed):
    return gc.sample_indices(tuple(array.shape), ENTRIES, np.random.default_rng(seed))


# The xp fixture only hands over a module, so sharing it between examples is safe.
with_xp = settings(
    suppress_health_check=[
        *settings.default.suppress_health_check,
        HealthCheck.function_scoped_fixture,
    ]
)

batch_sizes = st.integers(1, 16)
widths = st.integers(1, 32)
classes = st.integers(2, 32)


def floats(low, high):
    return st.floats(low, high, allow_nan=False, allow_subnormal=False, width=64)


def matrix(rows, cols, low=-2.0, high=2.0):
    return arrays(np.float64, (rows, cols), elements=floats(low, high))


@st.composite
def labels_for(draw, n, c):
    return np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))


def assert_all_pass(reports):
    for r in reports:
        assert r.passed, str(r)
        assert r.tolerance == RTOL


# ---------------------------------------------------------------------------
# layers


@st.composite
def dense_inputs(draw):
    n, d, h = draw(batch_sizes), draw(widths), draw(widths)
    x = draw(matrix(n, d))
    w = draw(matrix(d, h))
    b = draw(arrays(np.float64, (h,), elements=floats(-2, 2)))
    dout = draw(matrix(n, h))
    return x, w, b, dout


@with_xp
@given(case=dense_inputs(), seed=seeds)
def test_dense_gradients_match_numerical(xp, case, seed):
    x, w, b, dout = (xp.asarray(a) for a in case)
    _, cache = dense_forward(x, w, b)
    dx, dw, db = dense_backward(dout, cache)
    reports = gc.check_layer(
        lambda x, w, b: dense_forward(x, w, b)[0],
        {"x": x, "w": w, "b": b},
        dout,
        {"x": dx, "w": dw, "b": db},
        rtol=RTOL,
        max_entries=ENTRIES,
        seed=seed,
    )
    assert_all_pass(reports)


@with_xp
@given(
    case=st.tuples(batch_sizes, widths).flatmap(
        lambda s: st.tuples(matrix(*s), matrix(*s))
    )
)
def test_relu_gradient_matches_numerical_away_from_kinks(xp, case):
    x, dout = (xp.asarray(a) for a in case)
    _, cache = relu_forward(x)
    dx = relu_backward(dout, cache)
    (report,) = gc.check_layer(
        lambda x: relu_forward(x)[0],
        {"x": x},
        dout,
        {"x": dx},
        pre_activations=lambda x: [x],
        rtol=RTOL,
    )
    assert_all_pass([report])
    host = to_numpy(x)
    kinks = set(report.kinks)
    # a step of h moves only its own input: a kink is an input within h of 0
    assert all(abs(host[k]) <= H for k in kinks)
    assert all(k in kinks for k in zip(*np.nonzero(np.abs(host) < H / 2)))


# ---------------------------------------------------------------------------
# losses


@st.composite
def logits_and_labels(draw, low=-10.0, high=10.0):
    n, c = draw(batch_sizes), draw(classes)
    return draw(matrix(n, c, low, high)), draw(labels_for(n, c))


@with_xp
@given(case=logits_and_labels(), seed=seeds)
def test_fused_loss_gradient_matches_numerical(xp, case, seed):
    logits, labels = (xp.asarray(a) for a in case)
    _, dlogits = softmax_cross_entropy(logits, labels)
    report = gc.check_gradient(
        lambda z: softmax_cross_entropy(z, labels)[0],
        logits,
        dlogits,
        name="logits",
        rtol=RTOL,
        indices=sample(logits, seed),
    )
    assert_all_pass([report])


def unfused_loss(logits, labels, clip_eps):
    probs, _ = softmax_forward(logits)
    return cross_entropy_forward(probs, labels, clip_eps=clip_eps)[0]


def unfused_gradient(logits, labels, clip_eps):
    probs, softmax_cache = softmax_forward(logits)
    _, ce_cache = cross_entropy_forward(probs, labels, clip_eps=clip_eps)
    return softmax_backward(cross_entropy_backward(ce_cache), softmax_cache)


# logits in [-5, 5] keep every probability inside Keras's clip [1e-7, 1 - 1e-7]
@with_xp
@given(
    case=logits_and_labels(-5.0, 5.0),
    clip=st.sampled_from([None, KERAS_EPSILON]),
    seed=seeds,
)
def test_unfused_chain_gradient_matches_numerical(xp, case, clip, seed):
    logits, labels = (xp.asarray(a) for a in case)
    report = gc.check_gradient(
        lambda z: unfused_loss(z, labels, clip),
        logits,
        unfused_gradient(logits, labels, clip),
        name="logits",
        rtol=RTOL,
        indices=sample(logits, seed),
    )
    assert_all_pass([report])


@with_xp
@given(case=logits_and_labels(), data=st.data(), seed=seeds)
def test_softmax_node_gradient_matches_numerical(xp, case, data, seed):
    logits = xp.asarray(case[0])
    dprobs = xp.asarray(data.draw(matrix(*case[0].shape)))
    probs, cache = softmax_forward(logits)
    report = gc.check_gradient(
        lambda z: softmax_forward(z)[0],
        logits,
        softmax_backward(dprobs, cache),
        name="logits",
        dout=dprobs,
        rtol=RTOL,
        indices=sample(logits, seed),
    )
    assert_all_pass([report])


@with_xp
@given(
    case=logits_and_labels(),
    clip=st.sampled_from([None, KERAS_EPSILON]),
    seed=seeds,
)
def test_cross_entropy_node_gradient_matches_numerical(xp, case, clip, seed):
    # positive probabilities from the logits' shape; rows need not sum to 1
    probs = xp.asarray(0.05 + np.abs(case[0]) / 10)  # in [0.05, 1.05]
    labels = xp.asarray(case[1])
    _, cache = cross_entropy_forward(probs, labels, clip_eps=clip)
    report = gc.check_gradient(
        lambda p: cross_entropy_forward(p, labels, clip_eps=clip)[0],
        probs,
        cross_entropy_backward(cache),
        name="probs",
        rtol=RTOL,
        indices=sample(probs, seed),
    )
    assert_all_pass([report])


@with_xp
@given(case=logits_and_labels(-1e4, 1e4), shift=floats(-1e3, 1e3))
def test_softmax_rows_sum_to_one(xp, case, shift):
    logits = xp.asarray(case[0])
    probs = to_numpy(softmax(logits))
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-13)
    shifted = to_numpy(softmax(logits + shift))
    np.testing.assert_allclose(shifted.sum(axis=1), 1.0, rtol=0, atol=1e-13)


@with_xp
@given(case=logits_and_labels(-30.0, 30.0), shift=floats(-1e3, 1e3))
def test_softmax_is_invariant_to_adding_a_constant(xp, case, shift):
    logits = xp.asarray(case[0])
    # shifting rounds each logit by up to eps * 1e3; exp turns that into 3e-13
    np.testing.assert_allclose(
        to_numpy(softmax(logits + shift)), to_numpy(softmax(logits)), rtol=1e-10
    )


extreme_logits = st.tuples(batch_sizes, classes).flatmap(
    lambda s: st.tuples(
        arrays(
            np.float64,
            s,
            elements=st.sampled_from([-1e4, 1e4]) | floats(-1e4, 1e4),
        ),
        labels_for(*s),
    )
)


@with_xp
@given(case=extreme_logits)
def test_loss_is_finite_for_huge_logits(xp, case):
    logits, labels = (xp.asarray(a) for a in case)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    assert math.isfinite(float(loss)) and float(loss) >= 0
    assert np.all(np.isfinite(to_numpy(dlogits)))
    keras_loss = unfused_loss(logits, labels, KERAS_EPSILON)  # clipped at 1e-7
    assert math.isfinite(float(keras_loss))
    assert float(keras_loss) <= -math.log(KERAS_EPSILON) + 1e-9


@with_xp
@given(case=logits_and_labels(-1e4, 1e4))
def test_fused_gradient_rows_sum_to_zero(xp, case):
    logits, labels = (xp.asarray(a) for a in case)
    _, dlogits = softmax_cross_entropy(logits, labels)
    n, c = case[0].shape
    row_sums = to_numpy(dlogits).sum(axis=1)
    np.testing.assert_allclose(row_sums, 0.0, rtol=0, atol=4 * c * 2.3e-16 / n)


@with_xp
@given(case=logits_and_labels())
def test_fused_gradient_equals_the_unfused_chain(xp, case):
    logits, labels = (xp.asarray(a) for a in case)
    fused_loss, fused = softmax_cross_entropy(logits, labels)
    np.testing.assert_allclose(
        to_numpy(unfused_gradient(logits, labels, None)),
        to_numpy(fused),
        rtol=1e-9,
        atol=1e-15,
    )
    assert float(unfused_loss(logits, labels, None)) == pytest.approx(
        float(fused_loss), rel=1e-12, abs=1e-13
    )


# ---------------------------------------------------------------------------
# the whole model


@st.composite
def models(draw):
    depth = draw(st.integers(1, 3))  # hidden layers
    sizes = [draw(widths) for _ in range(depth + 1)] + [draw(classes)]
    n = draw(batch_sizes)
    x = draw(matrix(n, sizes[0]))
    y = draw(labels_for(n, sizes[-1]))
    init = draw(st.sampled_from(sorted(INITIALIZERS)))
    seed = draw(st.integers(0, 2**32 - 1))
    return sizes, x, y, init, seed


@with_xp
@given(case=models())
def test_model_gradients_match_numerical(xp, case):
    sizes, x, y, init, seed = case
    model = MLP(sizes, seed=seed, dtype="float64", init=init)
    rng = np.random.default_rng(seed)
    model.params = {  # random biases too, so every path carries signal
        name: xp.asarray(
            rng.normal(0, 0.5, p.shape) if name.endswith(".b") else to_numpy(p)
        )
        for name, p in model.params.items()
    }
    reports = gc.check_model(
        model,
        xp.asarray(x),
        xp.asarray(y),
        rtol=RTOL,
        max_entries=ENTRIES,
        seed=seed,
    )
    assert [r.name for r in reports] == list(model.params)
    assert_all_pass(reports)


@pytest.fixture(scope="module")
def mnist_test_images():
    images, labels = load_split(BUNDLED_MNIST, "test")
    return images.reshape(len(images), -1) / 255.0, labels.astype(np.int64)


@given(seed=st.integers(0, 2**32 - 1))
def test_untrained_paper_model_starts_near_ln_10(mnist_test_images, seed):
    # logits of spread s give a loss of about ln 10 + s^2 / 2; the paper's
    # truncated normal (stddev 0.1) gives s of about 0.5 on MNIST
    x, y = mnist_test_images
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(x), size=256, replace=False)
    model = MLP([784, 128, 10], seed=seed, dtype="float64", init="paper")
    loss = gc.model_loss(model, x[rows], y[rows])
    assert abs(loss - math.log(10)) < 0.5
