"""``WeightAverage`` (``--ema``): the formula, Keras's ``use_ema``, and ``averaged``.

Keras's optimizer with ``use_ema=True`` keeps, after each step, ``average =
momentum * average + (1 - momentum) * weights`` (the weights themselves at the
first step) and ``finalize_variable_values`` writes it into the model at the
end of ``fit``; the engine's average must equal it.
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
        average.update(params)
    return params, average


def test_the_average_is_the_formula_written_out():
    start, grads = problem(30)
    params = {k: v.copy() for k, v in start.items()}
    opt, average = Adam(lr=0.01), WeightAverage(0.9)
    by_hand = None
    for g in grads:
        opt.step(params, g)
        average.update(params)
        if by_hand is None:
            by_hand = {k: v.copy() for k, v in params.items()}  # the first step
        else:
            by_hand = {k: 0.9 * by_hand[k] + 0.1 * params[k] for k in params}
    for k in SHAPES:
        np.testing.assert_allclose(average.params[k], by_hand[k], rtol=0, atol=1e-15)
        assert np.shares_memory(average.params[k], average.flat)
    # it lags the weights: after 30 noisy steps they are not the same
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


@pytest.mark.parametrize("momentum", [0.9, 0.99])
def test_the_average_equals_keras_use_ema(momentum):
    tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed")
    start, grads = problem(50, seed=1)
    variables = {k: tf.Variable(v) for k, v in start.items()}
    keras_adam = tf.optimizers.Adam(
        learning_rate=0.01, epsilon=1e-7, use_ema=True, ema_momentum=momentum
    )
    for g in grads:
        keras_adam.apply_gradients([(tf.constant(g[k]), variables[k]) for k in SHAPES])
    stepped = {k: v.numpy() for k, v in variables.items()}
    keras_adam.finalize_variable_values(list(variables.values()))
    keras_average = {k: v.numpy() for k, v in variables.items()}
    params, average = engine_run(start, grads, momentum)
    for k in SHAPES:
        np.testing.assert_allclose(params[k], stepped[k], rtol=0, atol=1e-12)
        np.testing.assert_allclose(
            average.params[k], keras_average[k], rtol=0, atol=1e-12
        )
        assert not np.allclose(keras_average[k], stepped[k])  # a real average
