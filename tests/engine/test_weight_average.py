"""``WeightAverage`` (``--ema``): the formula, TensorFlow's, and ``averaged``.

TensorFlow's ``tf.train.ExponentialMovingAverage(decay, num_updates=step)``,
applied after each optimizer step, keeps ``average -= (1 - d) * (average -
weights)`` with ``d = min(decay, (1 + step) / (10 + step))`` (the weights
themselves at the first step); the engine's average must equal it.
"""

from __future__ import annotations

import numpy as np
import pytest

from backprop.errors import ConfigError
from backprop.optim import Adam, WeightAverage, averaged

SHAPES = {"dense1.w": (7, 5), "dense1.b": (5,), "dense2.w": (5, 3), "dense2.b": (3,)}


def problem(steps: int, seed: int = 0):
    """Float64 starting weights and ``steps`` sets of gradients."""
    rng = np.random.default_rng(seed)
    start = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    grads = [
        {k: rng.standard_normal(s) for k, s in SHAPES.items()} for _ in range(steps)
    ]
    return start, grads


def engine_run(start, grads, momentum, lr=0.01):
    """Adam's weights and their average after every gradient is applied."""
    params = {k: v.copy() for k, v in start.items()}
    opt, average = Adam(lr=lr), WeightAverage(momentum)
    for g in grads:
        opt.step(params, g)
        average.update(params, opt.t)
    return params, average


def test_the_average_is_the_formula_written_out():
    start, grads = problem(100)
    params = {k: v.copy() for k, v in start.items()}
    opt, average = Adam(lr=0.01), WeightAverage(0.9)
    by_hand, decays = None, []
    for t, g in enumerate(grads, start=1):
        opt.step(params, g)
        average.update(params, opt.t)
        assert opt.t == t  # the step count the average is given
        if by_hand is None:
            by_hand = {k: v.copy() for k, v in params.items()}  # the first step
        else:
            d = min(0.9, (1 + t) / (10 + t))
            decays.append(d)
            by_hand = {k: d * by_hand[k] + (1 - d) * params[k] for k in params}
    for k in SHAPES:  # d in float32 against float64 here: 1e-8 of the step apart
        np.testing.assert_allclose(average.params[k], by_hand[k], rtol=0, atol=1e-7)
        assert np.shares_memory(average.params[k], average.flat)
    assert decays[0] == 0.25 and decays[-1] == 0.9  # warm-up to step 80
    assert average.decay(2) == pytest.approx(0.25)
    assert average.decay(100) == pytest.approx(0.9)
    # it lags the weights: after 100 noisy steps they are not the same
    assert not np.allclose(average.params["dense1.w"], params["dense1.w"])


def test_momentum_zero_is_the_weights_themselves():
    start, grads = problem(5)
    params, average = engine_run(start, grads, 0.0)
    for k in SHAPES:
        np.testing.assert_array_equal(average.params[k], params[k])


@pytest.mark.parametrize("momentum", [1.0, -0.1, 1.5])
def test_a_momentum_outside_0_1_is_refused(momentum):
    with pytest.raises(ConfigError, match="momentum must be in"):
        WeightAverage(momentum)


def test_averaged_swaps_the_average_in_and_puts_the_weights_back():
    start, grads = problem(10)
    params, average = engine_run(start, grads, 0.9)
    own = {k: v.copy() for k, v in params.items()}
    with averaged(params, average):
        for k in SHAPES:
            np.testing.assert_array_equal(params[k], average.params[k])
    for k in SHAPES:
        np.testing.assert_array_equal(params[k], own[k])
    with pytest.raises(RuntimeError), averaged(params, average):
        raise RuntimeError("the block failed")
    for k in SHAPES:  # put back even when the block raises
        np.testing.assert_array_equal(params[k], own[k])
    with averaged(params, None):  # no average: the weights as they are
        np.testing.assert_array_equal(params["dense1.w"], own["dense1.w"])
    with averaged(params, WeightAverage(0.9)):  # an average before any step
        np.testing.assert_array_equal(params["dense1.w"], own["dense1.w"])


@pytest.mark.parametrize("momentum", [0.9, 0.999])
def test_the_average_equals_tensorflows_exponential_moving_average(momentum):
    tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed")
    start, grads = problem(50, seed=1)
    variables = {k: tf.Variable(v) for k, v in start.items()}
    keras_adam = tf.optimizers.Adam(learning_rate=0.01, epsilon=1e-7)
    step = tf.Variable(0, dtype=tf.int64)
    ema = tf.train.ExponentialMovingAverage(momentum, num_updates=step)
    for g in grads:
        keras_adam.apply_gradients([(tf.constant(g[k]), variables[k]) for k in SHAPES])
        step.assign_add(1)
        ema.apply(list(variables.values()))
    stepped = {k: v.numpy() for k, v in variables.items()}
    tf_average = {k: ema.average(v).numpy() for k, v in variables.items()}
    params, average = engine_run(start, grads, momentum)
    for k in SHAPES:
        np.testing.assert_allclose(params[k], stepped[k], rtol=0, atol=1e-12)
        np.testing.assert_allclose(average.params[k], tf_average[k], rtol=0, atol=1e-12)
        assert not np.allclose(tf_average[k], stepped[k])  # a real average
