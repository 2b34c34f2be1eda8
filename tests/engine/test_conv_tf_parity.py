"""Parity of the convolution, max-pooling and the CNN with Keras, in float64.

Gradients of ``keras.layers.Conv2D`` and ``MaxPool2D`` under
``tf.GradientTape`` (within 1e-10 of the largest entry; max-pool's routing
exactly, ties included), the whole CNN's gradients, one Adam step, a 200-step
trajectory, and the weights through a ``.keras`` file. TensorFlow runs on the
CPU (``tf_reference`` hides GPUs), so these float64 numbers hold on any CPU.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

tf = pytest.importorskip(
    "tensorflow", reason="parity with Keras needs TensorFlow (the tf extra)"
)
pytest.importorskip("tf_reference", reason="tf_reference needs TensorFlow")

from parity import Measured, rel_err  # noqa: E402

from backprop.cnn import CNN, LENET5  # noqa: E402
from backprop.data import load_mnist  # noqa: E402
from backprop.layers import (  # noqa: E402
    conv2d_backward,
    conv2d_forward,
    maxpool_backward,
    maxpool_forward,
)
from backprop.optim import Adam  # noqa: E402
from tf_reference.convert import ConversionError  # noqa: E402
from tf_reference.keras_cnn import (  # noqa: E402
    export_cnn,
    import_cnn,
    keras_cnn,
    keras_cnn_to_params,
)
from tf_reference.paper_model import keras, paper_loss, paper_optimizer  # noqa: E402

pytestmark = pytest.mark.tf
RTOL = 1e-10
MEASURED = Measured()  # the largest error of each check, for the report


record = MEASURED.record


@pytest.fixture(scope="module", autouse=True)
def report_measured():
    yield
    MEASURED.report()


@st.composite
def conv_cases(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    padding = draw(st.sampled_from(["valid", "same"]))
    low_h, low_w = (kh, kw) if padding == "valid" else (1, 1)
    h, w = draw(st.integers(low_h, low_h + 6)), draw(st.integers(low_w, low_w + 6))
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    stride = draw(st.sampled_from([1, 2, 3]))
    return (n, h, w, c), (kh, kw, c, f), stride, padding, draw(st.integers(0, 2**31))


@given(conv_cases())
def test_conv_gradients_equal_keras_conv2d(case):
    x_shape, w_shape, stride, padding, seed = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[3])
    out, cache = conv2d_forward(x, w, b, stride, padding)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward(dout, cache)
    layer = keras.layers.Conv2D(
        w_shape[3], w_shape[:2], stride, padding, dtype="float64"
    )
    layer.build(x_shape)
    layer.set_weights([w, b])
    tx = tf.Variable(x)
    with tf.GradientTape() as tape:
        tout = layer(tx)
        loss = tf.reduce_sum(tout * dout)  # the upstream gradient is dout
    gx, gw, gb = tape.gradient(loss, [tx, layer.kernel, layer.bias])
    assert record("conv forward", rel_err(out, tout.numpy())) <= RTOL
    for name, mine, theirs in (("dx", dx, gx), ("dw", dw, gw), ("db", db, gb)):
        assert record(f"conv {name}", rel_err(mine, theirs.numpy())) <= RTOL, name


@given(
    pool=st.integers(1, 3),
    stride=st.integers(1, 3),
    n=st.integers(1, 2),
    c=st.integers(1, 3),
    extra=st.tuples(st.integers(0, 5), st.integers(0, 5)),
    levels=st.sampled_from([2, 3, 1000]),
    seed=st.integers(0, 2**31),
)
def test_maxpool_routing_equals_keras_maxpool2d_ties_included(
    pool, stride, n, c, extra, levels, seed
):
    """Few distinct values (levels 2 or 3) make ties in most windows."""
    rng = np.random.default_rng(seed)
    shape = (n, pool + extra[0], pool + extra[1], c)
    x = rng.integers(0, levels, shape).astype(np.float64)  # (N, H, W, C)
    out, cache = maxpool_forward(x, pool, stride)
    dout = rng.standard_normal(out.shape)
    dx = maxpool_backward(dout, cache)
    layer = keras.layers.MaxPool2D(pool, stride, dtype="float64")
    tx = tf.Variable(x)
    with tf.GradientTape() as tape:
        tout = layer(tx)
        loss = tf.reduce_sum(tout * dout)
    np.testing.assert_array_equal(out, tout.numpy())
    np.testing.assert_array_equal(dx, tape.gradient(loss, tx).numpy())


# --- the whole CNN --------------------------------------------------------------


def tf_loss_and_grads(model: keras.Model, x, labels, classes: int):
    """Keras's loss (in tf.function: from the logits) and gradients by engine name."""
    names = {}
    for layer in model.layers:
        if layer.weights:
            names[layer.name + ".w"], names[layer.name + ".b"] = layer.weights

    @tf.function
    def fn(x, y_true):
        with tf.GradientTape() as tape:
            loss = paper_loss(y_true, model(x))
        return loss, tape.gradient(loss, list(names.values()))

    loss, grads = fn(tf.constant(x), tf.one_hot(labels, classes, dtype=tf.float64))
    return float(loss), {n: g.numpy() for n, g in zip(names, grads)}


@st.composite
def cnn_cases(draw):
    padding = draw(st.sampled_from(["same", "valid"]))
    conv1 = ("conv", draw(st.integers(1, 5)), draw(st.integers(1, 3)), padding,
             draw(st.integers(1, 2)))  # fmt: skip
    pool = ("pool", draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    conv2 = ("conv", draw(st.integers(1, 3)), draw(st.integers(1, 3)), "same", 1)
    layers = (conv1, pool, conv2, ("dense", draw(st.integers(2, 6))), ("dense", 3))
    shape = (
        draw(st.integers(6, 10)),
        draw(st.integers(6, 10)),
        draw(st.integers(1, 2)),
    )
    return layers, shape, draw(st.integers(1, 4)), draw(st.integers(0, 2**31))


@settings(max_examples=10)
@given(cnn_cases())
def test_cnn_gradients_equal_keras(case):
    layers, shape, n, seed = case
    rng = np.random.default_rng(seed)
    model = CNN(layers, input_shape=shape, dtype="float64", init="he", rng=rng)
    for name, p in model.params.items():
        if name.endswith(".b"):
            p[...] = rng.normal(0, 0.3, p.shape)
    x = rng.standard_normal((n, math.prod(shape)))
    labels = rng.integers(0, 3, n)
    loss, grads = model.loss_and_grads(x, labels)
    tf_loss, tf_grads = tf_loss_and_grads(
        keras_cnn(model.params, layers, shape), x, labels, 3
    )
    assert abs(float(loss) - tf_loss) <= RTOL * max(1.0, tf_loss)
    assert list(tf_grads) == list(grads)
    for name in grads:
        assert record("CNN gradients", rel_err(grads[name], tf_grads[name])) <= RTOL


@pytest.fixture(scope="module")
def mnist_small():
    (x, y), _ = load_mnist("float64")
    return x[:1024], y[:1024]


def test_lenet_gradients_and_one_adam_step_equal_keras(mnist_small):
    x, y = mnist_small[0][:32], mnist_small[1][:32]
    model = CNN(dtype="float64", seed=0)
    keras_model = keras_cnn(model.params, model.layers)
    loss, grads = model.loss_and_grads(x, y)
    tf_loss, tf_grads = tf_loss_and_grads(keras_model, x, y, 10)
    assert abs(float(loss) - tf_loss) <= 1e-12
    for name in grads:
        err = record(
            "LeNet-5 gradients, MNIST batch", rel_err(grads[name], tf_grads[name])
        )
        assert err <= RTOL, name
    Adam().step(model.params, grads)
    opt = paper_optimizer()
    variables = {
        f"{layer.name}.{p}": v
        for layer in keras_model.layers
        for p, v in zip("wb", layer.weights)
    }
    opt.apply_gradients([(tf.constant(tf_grads[k]), variables[k]) for k in grads])
    err = max(
        float(np.abs(model.params[k] - variables[k].numpy()).max()) for k in grads
    )
    record("LeNet-5 one Adam step: weights (abs)", err)
    assert err <= 1e-12


@pytest.mark.slow
def test_two_hundred_steps_follow_keras(mnist_small):
    """Same weights, same batches of 32 from 1024 images: per-step losses and
    the final weights agree within 1e-9 after 200 Adam steps."""
    x, y = mnist_small
    rng = np.random.default_rng(0)
    model = CNN(dtype="float64", rng=rng)
    keras_model = keras_cnn(model.params, model.layers)
    engine_opt, keras_opt = Adam(), paper_optimizer()
    variables = [v for layer in keras_model.layers for v in layer.weights]

    @tf.function
    def tf_step(xb, yb):
        with tf.GradientTape() as tape:
            loss = paper_loss(tf.one_hot(yb, 10, dtype=tf.float64), keras_model(xb))
        keras_opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    engine_losses, tf_losses = [], []
    order = np.concatenate([rng.permutation(len(x)) for _ in range(7)])
    for i in range(200):
        batch = order[32 * i : 32 * (i + 1)]
        loss, grads = model.loss_and_grads(x[batch], y[batch])
        engine_opt.step(model.params, grads)
        engine_losses.append(float(loss))
        tf_losses.append(float(tf_step(tf.constant(x[batch]), tf.constant(y[batch]))))
    loss_err = record(
        "200 steps: per-step loss (abs)",
        float(np.abs(np.subtract(engine_losses, tf_losses)).max()),
    )
    final = {
        f"{layer.name}.{p}": v.numpy()
        for layer in keras_model.layers
        for p, v in zip("wb", layer.weights)
    }
    weight_err = record(
        "200 steps: final weights (abs)",
        max(float(np.abs(model.params[k] - final[k]).max()) for k in final),
    )
    assert np.mean(tf_losses[-20:]) < 0.5 * np.mean(tf_losses[:20])  # it learned
    assert loss_err <= 1e-9
    assert weight_err <= 1e-9


# --- weights to and from Keras ------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weights_go_to_keras_and_come_back(tmp_path, dtype):
    model = CNN(dtype=dtype, seed=5, init="glorot")
    x = np.random.default_rng(0).random((6, 784)).astype(dtype)
    saved = export_cnn(model, tmp_path / "cnn.keras")
    np.testing.assert_allclose(
        saved(x).numpy(),
        model.predict_proba(x),
        rtol=1e-5 if dtype == "float32" else 1e-12,
    )
    back = import_cnn(tmp_path / "cnn.keras")
    assert back.layers == LENET5 and back.input_shape == (28, 28, 1)
    assert back.dtype == dtype
    for name, value in model.params.items():
        np.testing.assert_array_equal(back.params[name], value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.keras"]


def test_a_keras_cnn_built_by_hand_imports():
    """A Keras user's own Conv2D / MaxPool2D / Flatten / Dense stack."""
    model = keras.Sequential(
        [
            keras.Input((12, 12, 2)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
            keras.layers.MaxPool2D(),
            keras.layers.Conv2D(5, 4, strides=2, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(7, activation="softmax"),
        ]
    )
    params, layers, shape = keras_cnn_to_params(model)
    assert layers == (
        ("conv", 3, 4, "same", 1),
        ("pool", 2, 2),
        ("conv", 4, 5, "valid", 2),
        ("dense", 7),
    )
    assert shape == (12, 12, 2)
    engine = CNN.from_params(params, layers=layers, input_shape=shape)
    x = np.random.default_rng(1).random((3, 12, 12, 2)).astype(np.float32)
    np.testing.assert_allclose(engine.predict_proba(x), model(x).numpy(), rtol=1e-5)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (lambda: keras.layers.Conv2D(4, 3, activation="tanh"), "square, undilated"),
        (lambda: keras.layers.Conv2D(4, (3, 2), activation="relu"), "square"),
        (lambda: keras.layers.AveragePooling2D(2), "is a AveragePooling2D"),
    ],
)
def test_keras_models_the_engine_cannot_hold_are_one_line(layer, message):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layer(),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]  # fmt: skip
    )
    with pytest.raises(ConversionError, match=message) as info:
        keras_cnn_to_params(model)
    assert "\n" not in str(info.value)


def test_export_refuses_other_suffixes(tmp_path):
    with pytest.raises(ConversionError, match="must end in .keras"):
        export_cnn(CNN(), tmp_path / "cnn.h5")
    assert list(tmp_path.iterdir()) == []
