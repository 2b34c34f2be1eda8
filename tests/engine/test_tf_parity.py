"""Parity of the engine with the paper's TensorFlow code.

Gradients (hypothesis), Adam steps, the loss's clip trap, a full-epoch
trajectory, and 20-epoch accuracy. TensorFlow runs on the CPU (importing
``tf_reference`` hides GPUs): on recent NVIDIA GPUs it would compute float32
matrix products in TF32, far outside these tolerances.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

tf = pytest.importorskip(
    "tensorflow", reason="TensorFlow is not installed (the tf extra)"
)
tf_reference = pytest.importorskip(
    "tf_reference", reason="tf_reference is not importable"
)

from parity import Measured, rel_err  # noqa: E402

from backprop.data import load_mnist  # noqa: E402
from backprop.layers import (  # noqa: E402
    dense_backward,
    dense_forward,
    relu_backward,
    relu_forward,
)
from backprop.losses import (  # noqa: E402
    KERAS_EPSILON,
    cross_entropy_backward,
    cross_entropy_forward,
    one_hot,
    softmax_backward,
    softmax_cross_entropy,
    softmax_forward,
)
from backprop.model import MLP  # noqa: E402
from backprop.optim import Adam  # noqa: E402
from tf_reference.convert import module_variables, params_to_module  # noqa: E402
from tf_reference.paper_model import paper_loss, paper_optimizer  # noqa: E402
from tf_reference.tape_training import main as tf_main  # noqa: E402
from tf_reference.tape_training import train_step  # noqa: E402

pytestmark = pytest.mark.tf

# Tolerances, relative to the largest magnitude of the reference gradient.
RTOL = {"float64": 1e-10, "float32": 2e-5}
MEASURED = Measured()  # the largest error of each check, for the report


record = MEASURED.record


@pytest.fixture(scope="module", autouse=True)
def report_measured():
    yield
    MEASURED.report()


dtypes = st.sampled_from(["float64", "float32"])


def engine_paper_grads(model: MLP, x, labels, clip_eps=KERAS_EPSILON):
    """The engine's gradients along the paper's eager path: softmax, clipped CE."""
    logits, caches = model.forward(x)
    probs, softmax_cache = softmax_forward(logits)
    loss, ce_cache = cross_entropy_forward(probs, labels, clip_eps=clip_eps)
    dlogits = softmax_backward(cross_entropy_backward(ce_cache), softmax_cache)
    return loss, model.backward(dlogits, caches)


def tf_grads(model, x, labels, compiled: bool):
    """TensorFlow's loss and gradients by engine name, eager or in tf.function."""
    variables = module_variables(model)
    y_true = tf.one_hot(labels, model.layers[-1].units, dtype=x.dtype)

    def loss_and_grads(x, y_true):
        with tf.GradientTape() as tape:
            loss = paper_loss(y_true, model(x))
        return loss, tape.gradient(loss, list(variables.values()))

    fn = tf.function(loss_and_grads) if compiled else loss_and_grads
    loss, grads = fn(tf.constant(x), y_true)
    return float(loss), {n: g.numpy() for n, g in zip(variables, grads)}


# --- gradients, layer by layer ------------------------------------------------


@given(
    n=st.integers(1, 8),
    d=st.integers(1, 12),
    h=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
    dtype=dtypes,
)
def test_dense_gradients_equal_tape(n, d, h, seed, dtype):
    rng = np.random.default_rng(seed)
    x, w, b, dout = (
        rng.standard_normal(shape).astype(dtype)
        for shape in ((n, d), (d, h), (h,), (n, h))
    )
    out, cache = dense_forward(x, w, b)
    dx, dw, db = dense_backward(dout, cache)
    tx, tw, tb = (tf.Variable(a) for a in (x, w, b))
    with tf.GradientTape() as tape:
        tout = tx @ tw + tb
        loss = tf.reduce_sum(tout * dout)  # the upstream gradient is dout
    gx, gw, gb = tape.gradient(loss, [tx, tw, tb])
    assert rel_err(out, tout.numpy()) <= RTOL[dtype]
    for name, mine, theirs in (("dx", dx, gx), ("dw", dw, gw), ("db", db, gb)):
        err = record(f"dense {name} ({dtype})", rel_err(mine, theirs.numpy()))
        assert err <= RTOL[dtype], name


@given(
    n=st.integers(1, 8),
    h=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
    dtype=dtypes,
)
def test_relu_gradient_equals_tape_including_exact_zeros(n, h, seed, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h)).astype(dtype)
    x[rng.random((n, h)) < 0.2] = 0.0  # ReLU'(0) is taken as 0 by both
    dout = rng.standard_normal((n, h)).astype(dtype)
    out, cache = relu_forward(x)
    dx = relu_backward(dout, cache)
    tx = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.nn.relu(tx) * dout)
    (gx,) = tape.gradient(loss, [tx])
    np.testing.assert_array_equal(out, tf.nn.relu(x).numpy())
    np.testing.assert_array_equal(dx, gx.numpy())  # a mask: no rounding at all


@given(
    n=st.integers(1, 8),
    c=st.integers(2, 10),
    scale=st.floats(0.1, 40.0),
    seed=st.integers(0, 2**32 - 1),
    dtype=dtypes,
)
def test_fused_softmax_cross_entropy_equals_tape_with_logits(n, c, scale, seed, dtype):
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal((n, c))).astype(dtype)
    labels = rng.integers(0, c, n)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    tl = tf.Variable(logits)
    with tf.GradientTape() as tape:
        tloss = tf.reduce_mean(
            tf.nn.softmax_cross_entropy_with_logits(one_hot(labels, c, dtype), tl)
        )
    (g,) = tape.gradient(tloss, [tl])
    assert abs(float(loss) - float(tloss)) <= RTOL[dtype] * max(1.0, float(tloss))
    err = record(f"fused softmax-CE dlogits ({dtype})", rel_err(dlogits, g.numpy()))
    assert err <= RTOL[dtype]


@given(
    n=st.integers(1, 8),
    c=st.integers(2, 10),
    scale=st.floats(0.1, 40.0),
    seed=st.integers(0, 2**32 - 1),
    dtype=dtypes,
)
def test_clipped_chain_equals_eager_keras_loss(n, c, scale, seed, dtype):
    """softmax -> CE(clip_eps=1e-7) reproduces the paper's eager loss, saturated too."""
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal((n, c))).astype(dtype)
    labels = rng.integers(0, c, n)
    probs, s_cache = softmax_forward(logits)
    loss, ce_cache = cross_entropy_forward(probs, labels, clip_eps=KERAS_EPSILON)
    dlogits = softmax_backward(cross_entropy_backward(ce_cache), s_cache)
    tl = tf.Variable(logits)
    with tf.GradientTape() as tape:
        tloss = paper_loss(one_hot(labels, c, dtype), tf.nn.softmax(tl))
    (g,) = tape.gradient(tloss, [tl])
    assert abs(float(loss) - float(tloss)) <= RTOL[dtype] * max(1.0, float(tloss))
    err = record(f"clipped chain dlogits ({dtype})", rel_err(dlogits, g.numpy()))
    assert err <= RTOL[dtype]


@given(
    n=st.integers(1, 8),
    c=st.integers(2, 10),
    seed=st.integers(0, 2**32 - 1),
)
def test_clipped_cross_entropy_on_unnormalised_probabilities(n, c, seed):
    """Keras divides rows by their sum before the clip; the engine too."""
    rng = np.random.default_rng(seed)
    probs = rng.random((n, c)) * rng.choice([1e-9, 1.0, 3.0], (n, 1))  # (n, c)
    probs[rng.random((n, c)) < 0.3] = 1e-12  # some entries below the clip
    labels = rng.integers(0, c, n)
    loss, cache = cross_entropy_forward(probs, labels, clip_eps=KERAS_EPSILON)
    dprobs = cross_entropy_backward(cache)
    tp = tf.Variable(probs)
    with tf.GradientTape() as tape:
        tloss = paper_loss(one_hot(labels, c, "float64"), tp)
    (g,) = tape.gradient(tloss, [tp])
    assert abs(float(loss) - float(tloss)) <= 1e-12 * max(1.0, float(tloss))
    err = record(
        "clipped CE dprobs, unnormalised (float64)", rel_err(dprobs, g.numpy())
    )
    assert err <= 1e-10


# --- gradients of the whole model ---------------------------------------------


@st.composite
def models(draw):
    """Random sizes, weights, a batch and labels; logits sometimes saturated."""
    sizes = [draw(st.integers(1, 12))]
    sizes += draw(st.lists(st.integers(1, 12), min_size=1, max_size=2))
    sizes.append(draw(st.integers(2, 8)))
    n = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([0.1, 1.0, 4.0]))
    dtype = draw(dtypes)
    rng = np.random.default_rng(seed)
    params = {}
    for i, (d, h) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"dense{i}.w"] = (scale * rng.standard_normal((d, h))).astype(dtype)
        params[f"dense{i}.b"] = (scale * rng.standard_normal(h)).astype(dtype)
    x = rng.standard_normal((n, sizes[0])).astype(dtype)
    labels = rng.integers(0, sizes[-1], n)
    return MLP.from_params(params), x, labels


@given(models())
def test_model_gradients_equal_tape_in_tf_function(case):
    """Fused engine loss == Keras inside tf.function (the logits path)."""
    model, x, labels = case
    loss, grads = model.loss_and_grads(x, labels)
    tf_loss, tf_g = tf_grads(params_to_module(model.params), x, labels, compiled=True)
    tol = RTOL[model.dtype]
    assert abs(float(loss) - tf_loss) <= tol * max(1.0, tf_loss)
    for name in model.params:
        err = record(f"model, fused ({model.dtype})", rel_err(grads[name], tf_g[name]))
        assert err <= tol, name


@given(models())
def test_model_gradients_equal_tape_eager(case):
    """Engine with the clipped loss == the paper's eager step, saturated or not."""
    model, x, labels = case
    loss, grads = engine_paper_grads(model, x, labels)
    tf_loss, tf_g = tf_grads(params_to_module(model.params), x, labels, compiled=False)
    tol = RTOL[model.dtype]
    assert abs(float(loss) - tf_loss) <= tol * max(1.0, tf_loss)
    for name in model.params:
        err = record(
            f"model, clipped ({model.dtype})", rel_err(grads[name], tf_g[name])
        )
        assert err <= tol, name


# --- the clip trap: what Keras does in each mode --------------------------------

# Row 0 is confidently right (p ~ 1 - 2e-9), row 1 ordinary, row 2 confidently
# wrong (p[label] ~ 6e-9): the clip moves rows 0 and 2.
TRAP_LOGITS = np.array([[20.0, 0.0, -1.0], [0.0, 1.0, 2.0], [-18.0, 0.0, 1.0]])
TRAP_LABELS = np.array([0, 2, 0])


def keras_loss_and_grad(compiled: bool, through_identity: bool = False):
    y_true = tf.constant(one_hot(TRAP_LABELS, 3, "float64"))

    def fn(logits):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            probs = tf.nn.softmax(logits)
            if through_identity:
                probs = tf.identity(probs)  # no longer the output of a Softmax op
            loss = paper_loss(y_true, probs)
        return loss, tape.gradient(loss, logits)

    fn = tf.function(fn) if compiled else fn
    loss, grad = fn(tf.constant(TRAP_LOGITS))
    return float(loss), grad.numpy()


def test_eager_keras_clips_the_probabilities():
    loss, grad = keras_loss_and_grad(compiled=False)
    exact_loss, exact_grad = softmax_cross_entropy(TRAP_LOGITS, TRAP_LABELS)
    probs = softmax_forward(TRAP_LOGITS)[0]
    clipped = np.clip(probs / probs.sum(1, keepdims=True), 1e-7, 1 - 1e-7)
    assert loss == pytest.approx(-np.log(clipped[[0, 1, 2], TRAP_LABELS]).mean(), 1e-14)
    assert (
        loss < float(exact_loss) - 1.0
    )  # the wrong row's -log(6e-9) became -log(1e-7)
    # the clipped rows pass no gradient at all; the ordinary row is softmax - onehot
    np.testing.assert_array_equal(grad[[0, 2]], 0.0)
    np.testing.assert_allclose(grad[1], exact_grad[1], rtol=1e-12)
    assert np.abs(exact_grad[2]).max() > 0.2  # the exact gradient of that row is large
    # and the engine's clip option reproduces it exactly
    engine_loss, _ = cross_entropy_forward(probs, TRAP_LABELS, clip_eps=KERAS_EPSILON)
    assert float(engine_loss) == pytest.approx(loss, rel=1e-15)


def test_tf_function_keras_uses_the_logits_behind_the_softmax():
    loss, grad = keras_loss_and_grad(compiled=True)
    exact_loss, exact_grad = softmax_cross_entropy(TRAP_LOGITS, TRAP_LABELS)
    assert loss == pytest.approx(float(exact_loss), rel=1e-14)  # no clip
    np.testing.assert_allclose(grad, exact_grad, rtol=1e-10, atol=1e-17)
    # ... only when its input is a Softmax op: through an Identity it clips again
    eager_loss, _ = keras_loss_and_grad(compiled=False)
    loss_id, grad_id = keras_loss_and_grad(compiled=True, through_identity=True)
    assert loss_id == pytest.approx(eager_loss, rel=1e-14)
    np.testing.assert_array_equal(grad_id[[0, 2]], 0.0)


# --- Adam ---------------------------------------------------------------------

SHAPES = {"dense1.w": (7, 5), "dense1.b": (5,), "dense2.w": (5, 3), "dense2.b": (3,)}
ADAM_SETTINGS = [
    pytest.param(dict(lr=1e-3, beta1=0.9, beta2=0.999), id="paper"),
    pytest.param(dict(lr=0.01, beta1=0.8, beta2=0.99), id="other"),
]


def run_adams(steps: int, settings: dict, *engine_modes: str):
    """``steps`` Adam updates of the same float64 parameters by Keras and the engine.

    Returns:
        start, the gradients, Keras's parameters, the engine's by mode.
    """
    rng = np.random.default_rng(steps)
    start = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    grads = [
        {k: rng.standard_normal(s) for k, s in SHAPES.items()} for _ in range(steps)
    ]
    variables = {k: tf.Variable(v) for k, v in start.items()}
    keras_adam = tf.optimizers.Adam(
        learning_rate=settings["lr"],
        beta_1=settings["beta1"],
        beta_2=settings["beta2"],
        epsilon=1e-7,
    )
    engines = {mode: Adam(**settings, mode=mode) for mode in engine_modes}
    params = {mode: {k: v.copy() for k, v in start.items()} for mode in engine_modes}
    for g in grads:
        keras_adam.apply_gradients([(tf.constant(g[k]), variables[k]) for k in SHAPES])
        for mode in engine_modes:
            engines[mode].step(params[mode], g)
    keras_params = {k: v.numpy() for k, v in variables.items()}
    return start, grads, keras_params, params


def pure_float64_adam(start, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
    """Keras's formula with lr and the betas kept in float64 everywhere."""
    params = {k: v.copy() for k, v in start.items()}
    m = {k: np.zeros_like(v) for k, v in start.items()}
    v = {k: np.zeros_like(p) for k, p in start.items()}
    for t, g in enumerate(grads, start=1):
        lr_t = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        for k in params:
            m[k] += (1 - b1) * (g[k] - m[k])
            v[k] += (1 - b2) * (g[k] * g[k] - v[k])
            params[k] -= lr_t * m[k] / (np.sqrt(v[k]) + eps)
    return params


def max_abs_diff(a: dict, b: dict) -> float:
    return float(max(np.abs(a[k] - b[k]).max() for k in SHAPES))


PAPER_ADAM = dict(lr=1e-3, beta1=0.9, beta2=0.999)


@pytest.mark.parametrize("settings", ADAM_SETTINGS)
@pytest.mark.parametrize("steps", [1, 100])
def test_adam_keras_mode_equals_tf_optimizers_adam(steps, settings):
    _, _, keras_params, params = run_adams(steps, settings, "keras")
    err = record(
        f"Adam keras mode vs Keras, {steps} steps (float64, abs)",
        max_abs_diff(params["keras"], keras_params),
    )
    assert err <= 1e-12


def test_keras_adam_rounds_lr_and_betas_to_float32():
    """A pure-float64 Adam is off from Keras by exactly the float32 roundings."""
    lr, b1, b2 = PAPER_ADAM.values()
    start, grads, keras_params, _ = run_adams(1, PAPER_ADAM)
    f32 = lambda value: float(np.float32(value))  # noqa: E731
    factor_64 = lr * math.sqrt(1 - b2) / (1 - b1)  # the step-1 step size, float64
    factor_keras = f32(lr) * math.sqrt(1 - f32(b2)) / (1 - f32(b1))
    predicted = abs(factor_64 / factor_keras - 1)  # about 6.6e-6, mostly from b2
    pure = pure_float64_adam(start, grads)
    measured = max(
        float(np.abs((start[k] - pure[k]) / (start[k] - keras_params[k]) - 1).max())
        for k in SHAPES
    )
    record("pure-float64 Adam vs Keras, step 1 (relative)", measured)
    assert measured == pytest.approx(predicted, rel=1e-6)
    # after 100 steps the pure-float64 parameters are about 1e-7 away
    start, grads, keras_params, _ = run_adams(100, PAPER_ADAM)
    drift = record(
        "pure-float64 Adam vs Keras, 100 steps (float64, abs)",
        max_abs_diff(pure_float64_adam(start, grads), keras_params),
    )
    assert 1e-8 < drift < 1e-6


def test_adam_algorithm1_differs_from_keras():
    _, _, keras_params, params = run_adams(100, PAPER_ADAM, "keras", "algorithm1")
    diff = record(
        "Adam algorithm1 vs Keras, 100 steps (float64, abs)",
        max_abs_diff(params["algorithm1"], keras_params),
    )
    # measured here: 1.3e-6 after these 100 steps of lr 1e-3 (0 for keras mode)
    assert 1e-8 < diff < 1e-5
    assert max_abs_diff(params["keras"], keras_params) <= 1e-12


# --- trajectories on MNIST ----------------------------------------------------


@pytest.fixture(scope="module")
def mnist64():
    return load_mnist("float64")


def engine_and_tf_start(seed: int, dtype: str, n: int):
    """The engine's initial weights and first batch order for ``seed``, and a
    TensorFlow model holding the same weights."""
    rng = np.random.default_rng(seed)
    engine = MLP([784, 128, 10], rng=rng, dtype=dtype)
    order = rng.permutation(n)  # the engine's first epoch
    return engine, params_to_module(engine.params), order


@pytest.mark.slow
def test_one_epoch_float64_trajectory_matches(mnist64):
    """Same weights, same batches: per-step losses and final weights within 1e-9.

    TensorFlow's step is compiled (tf.function), so Keras computes the loss from
    the logits, as the engine's fused loss does; a full eager epoch takes
    minutes on a small CPU, so the eager (clipped) path runs the first steps
    only, against the engine's clipped loss.
    """
    (x, y), _ = mnist64
    engine, model, order = engine_and_tf_start(0, "float64", len(x))
    engine_opt, keras_opt = Adam(), paper_optimizer()
    step = tf.function(train_step)
    xt, yt = tf.constant(x), tf.constant(y)
    engine_losses, tf_losses = [], []
    for i in range(math.ceil(len(x) / 256)):
        batch = order[i * 256 : (i + 1) * 256]
        loss, grads = engine.loss_and_grads(x[batch], y[batch])
        engine_opt.step(engine.params, grads)
        engine_losses.append(float(loss))
        tf_loss, _ = step(model, keras_opt, tf.gather(xt, batch), tf.gather(yt, batch))
        tf_losses.append(float(tf_loss))
    loss_err = record(
        "trajectory, 1 epoch float64: per-step loss (abs)",
        float(np.abs(np.subtract(engine_losses, tf_losses)).max()),
    )
    final = {k: v.numpy() for k, v in module_variables(model).items()}
    weight_err = record(
        "trajectory, 1 epoch float64: final weights (abs)",
        max(float(np.abs(engine.params[k] - final[k]).max()) for k in final),
    )
    assert len(tf_losses) == 235
    assert tf_losses[-1] < 0.5 * tf_losses[0]  # it did learn
    assert loss_err <= 1e-9
    assert weight_err <= 1e-9


def test_eager_steps_match_the_engine_with_the_keras_clip(mnist64):
    (x, y), _ = mnist64
    engine, model, order = engine_and_tf_start(1, "float64", len(x))
    engine_opt, keras_opt = Adam(), paper_optimizer()
    errs = []
    for i in range(15):
        batch = order[i * 256 : (i + 1) * 256]
        loss, grads = engine_paper_grads(engine, x[batch], y[batch])
        engine_opt.step(engine.params, grads)
        tf_loss, _ = train_step(model, keras_opt, tf.constant(x[batch]), y[batch])
        errs.append(abs(float(loss) - float(tf_loss)))
    final = {k: v.numpy() for k, v in module_variables(model).items()}
    weight_err = max(float(np.abs(engine.params[k] - final[k]).max()) for k in final)
    record("eager, 15 steps float64: per-step loss (abs)", max(errs))
    record("eager, 15 steps float64: final weights (abs)", weight_err)
    assert max(errs) <= 1e-9
    assert weight_err <= 1e-9


@pytest.fixture(scope="module")
def twenty_epoch_runs(tmp_path_factory):
    """``python -m backprop.train`` and ``python -m tf_reference.train`` with the
    defaults and seed 0: the same initial weights and batch order.

    The engine runs in a subprocess while TensorFlow trains here (two CPUs).
    TensorFlow's step is compiled (--tf-function) to fit the test budget; the
    paper's eager path gives the same numbers until predictions saturate
    (see the clip tests above) and takes several times longer.
    """
    import json

    out = tmp_path_factory.mktemp("twenty")
    engine = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backprop.train",
            "--seed",
            "0",
            "--device",
            "cpu",
            "--quiet",
            "--out",
            str(out / "engine"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert (
            tf_main(
                ["--seed", "0", "--tf-function", "--quiet", "--out", str(out / "tf")]
            )
            == 0
        )
        engine_output, _ = engine.communicate(timeout=600)
    finally:
        engine.kill()
    assert engine.returncode == 0, engine_output
    return {
        name: json.loads((out / name / "history.json").read_text())
        for name in ("engine", "tf")
    }


@pytest.mark.slow
def test_twenty_epochs_float32_reach_the_same_accuracy(twenty_epoch_runs):
    engine, tf_run = twenty_epoch_runs["engine"], twenty_epoch_runs["tf"]
    assert len(engine) == len(tf_run) == 20
    # the same history.json records, but for the engine's own diagnostics
    assert set(engine[0]) - {"diagnostics"} == set(tf_run[0])
    gap = abs(engine[-1]["test_accuracy"] - tf_run[-1]["test_accuracy"])
    record("20 epochs float32: test accuracy gap (points)", 100 * gap)
    assert 100 * gap <= 0.2
    # the first epoch (same weights, same batches) agrees to float32 rounding
    assert engine[0]["train_loss"] == pytest.approx(tf_run[0]["train_loss"], rel=1e-4)


@pytest.mark.slow
def test_tf_reference_reaches_the_paper_accuracy(twenty_epoch_runs):
    final = twenty_epoch_runs["tf"][-1]
    record("20 epochs float32: TensorFlow test accuracy", final["test_accuracy"])
    assert final["test_accuracy"] >= 0.97  # the paper: 0.976
