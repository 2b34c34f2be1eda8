"""The CNN: MLP's interface, its gradients, its initialisers, its errors.

The whole model's gradient is checked by central differences in float64 with
exact kink detection: an entry is set aside when its step switches a ReLU or
moves a max-pool window's maximum to another entry.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from backprop import gradcheck
from backprop.cnn import CNN, LENET5, describe, param_shapes
from backprop.device import to_numpy
from backprop.errors import ConfigError
from backprop.loop import ReferenceStep, train_epoch
from backprop.losses import softmax_cross_entropy
from backprop.model import MLP
from backprop.optim import Adam
from backprop.params import is_view_of

SMALL = (("conv", 3, 3, "same"), ("pool", 2), ("conv", 2, 4, "valid", 2), ("dense", 5))


def state_arrays(model: CNN, caches: list[tuple]) -> list[np.ndarray]:
    """Arrays whose "> 0" pattern is the model's piecewise-linear state: each
    ReLU's output, and for each pool which entry of each window is its maximum."""
    arrays = []
    for cache in caches:
        if cache[0] == "pool":  # which offset of each window is its first maximum
            _, first, pool, _ = cache[1]
            arrays += [(first == k).astype(float) for k in range(pool * pool)]
        elif cache[2] is not None:
            arrays.append(cache[2])
    return arrays


def check_cnn(
    model: CNN, x, y, max_entries: int | None = None
) -> list[gradcheck.GradCheckReport]:
    """Check every parameter's gradient against central differences of the loss."""
    _, grads = model.loss_and_grads(x, y)
    rng = np.random.default_rng(0)

    def loss(_):
        return float(softmax_cross_entropy(model.forward(x)[0], y)[0])

    def state(_):
        return state_arrays(model, model.forward(x)[1])

    return [
        gradcheck.check_gradient(
            loss,
            p,
            grads[name],
            name=name,
            pre_activations=state,
            indices=gradcheck.sample_indices(tuple(p.shape), max_entries, rng),
        )
        for name, p in model.params.items()
    ]


@st.composite
def small_cnns(draw):
    """A random small CNN with random (non-zero) biases, a batch and labels."""
    conv1 = ("conv", draw(st.integers(1, 5)), draw(st.integers(1, 3)), "same",
             draw(st.sampled_from([1, 2])))  # fmt: skip
    conv2 = ("conv", draw(st.integers(1, 3)), draw(st.integers(1, 3)),
             draw(st.sampled_from(["valid", "same"])), 1)  # fmt: skip
    pool = ("pool", draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    layers = (conv1, pool, conv2, ("dense", draw(st.integers(2, 6))))
    shape = (draw(st.integers(5, 9)), draw(st.integers(5, 9)), draw(st.integers(1, 2)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    try:
        model = CNN(layers, input_shape=shape, dtype="float64", init="he", rng=rng)
    except ConfigError:  # a "valid" kernel larger than its input
        assume(False)
    for name, p in model.params.items():
        if name.endswith(".b"):
            p[...] = rng.normal(0, 0.3, p.shape)
    n = draw(st.integers(1, 3))
    x = rng.standard_normal((n, math.prod(shape)))  # (N, H*W*C)
    return model, x, rng.integers(0, layers[-1][1], n)


@given(small_cnns())
def test_cnn_gradients_pass_the_checker(case):
    model, x, y = case
    for report in check_cnn(model, x, y):
        assert report.passed, str(report)


def test_lenet_gradients_pass_the_checker_on_sampled_entries():
    model = CNN(dtype="float64", init="he", seed=3)
    rng = np.random.default_rng(0)
    x, y = rng.random((2, 784)), np.array([3, 7])
    for report in check_cnn(model, x, y, max_entries=12):
        assert report.passed, str(report)


def test_a_wrong_backward_is_caught():
    """The check is not vacuous: a kernel gradient off by a flip fails it."""
    model = CNN(SMALL, input_shape=(7, 7, 2), dtype="float64", init="he", seed=1)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((2, 98)), np.array([0, 4])
    original = model.backward

    def flipped_backward(dlogits, caches):
        grads = original(dlogits, caches)
        grads["conv1.w"] = grads["conv1.w"][::-1, ::-1].copy()
        return grads

    model.backward = flipped_backward
    reports = {r.name: r for r in check_cnn(model, x, y)}
    assert not reports["conv1.w"].passed
    assert all(r.passed for name, r in reports.items() if name != "conv1.w")


def test_lenet_shapes_and_parameter_count():
    model = CNN()
    shapes = {name: tuple(p.shape) for name, p in model.params.items()}
    assert shapes == {
        "conv1.w": (5, 5, 1, 6),
        "conv1.b": (6,),
        "conv2.w": (5, 5, 6, 16),
        "conv2.b": (16,),
        "dense1.w": (400, 120),
        "dense1.b": (120,),
        "dense2.w": (120, 84),
        "dense2.b": (84,),
        "dense3.w": (84, 10),
        "dense3.b": (10,),
    }
    assert model.flat.size == 61706 and model.layers == LENET5
    assert is_view_of(model.params, model.flat, np)
    assert describe(LENET5).startswith("conv5x5x6same-pool2-conv5x5x16valid")


def test_params_are_views_into_the_flat_buffer():
    model = CNN(SMALL, input_shape=(6, 6, 1))
    model.flat[...] = 0.5
    assert all(float(p.max()) == 0.5 for p in model.params.values())
    model.params["conv2.w"][...] = 2.0  # (2, 2, 3, 4): 48 entries
    assert float(model.flat.sum()) == 0.5 * (model.flat.size - 48) + 2.0 * 48


def test_from_params_round_trip_and_spec():
    model = CNN(SMALL, input_shape=(7, 6, 2), seed=4, dtype="float64")
    params = {k: to_numpy(v).copy() for k, v in model.params.items()}
    copy = CNN.from_params(params, **model.spec)
    x = np.random.default_rng(0).random((3, 84))
    np.testing.assert_array_equal(copy.forward(x)[0], model.forward(x)[0])
    assert copy.layers == model.layers and copy.input_shape == (7, 6, 2)
    params["conv1.w"][...] = 9.0
    assert not np.any(to_numpy(copy.params["conv1.w"]) == 9.0)  # copied in


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.pop("conv2.b"), "are not those of the CNN"),
        (lambda p: p.update({"conv1.w": np.zeros((3, 3, 1, 4))}), "needs"),
        (lambda p: p.update({"dense1.b": p["dense1.b"].astype(np.int64)}), "must all"),
    ],
)
def test_from_params_rejects_what_does_not_fit(change, message):
    params = {k: v.copy() for k, v in CNN(SMALL, input_shape=(6, 6, 1)).params.items()}
    change(params)
    with pytest.raises(ConfigError, match=message):
        CNN.from_params(params, layers=SMALL, input_shape=(6, 6, 1))


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ((("dense", 10), ("conv", 3, 2)), "after a dense layer"),
        ((("conv", 3, 2),), "last layer must be"),
        ((("conv", 3, 2, "full"), ("dense", 3)), "bad layer"),
        ((("pool", 0), ("dense", 3)), "bad layer"),
        ((("lstm", 3), ("dense", 3)), "bad layer"),
        ((("conv", 9, 2), ("dense", 3)), "larger than its 6x6 input"),
    ],
)
def test_bad_layers_are_one_clear_error(layers, message):
    with pytest.raises(ConfigError, match=message):
        CNN(layers, input_shape=(6, 6, 1))


def test_unknown_init_and_dtype():
    with pytest.raises(ConfigError, match="unknown init"):
        CNN(init="lecun")
    with pytest.raises(ConfigError, match="unknown dtype"):
        CNN(dtype="float16")


@pytest.mark.parametrize("init", ["paper", "he", "glorot"])
def test_initialisers_have_the_right_spread(init):
    model = CNN(init=init, seed=0, dtype="float64")
    w = model.params["conv2.w"]  # fan_in 150, fan_out 400
    expected = {"paper": 0.1 * 0.8796, "he": math.sqrt(2 / 150), "glorot": None}[init]
    if expected is None:
        limit = math.sqrt(6 / (150 + 400))
        assert float(np.abs(w).max()) <= limit and float(w.std()) == pytest.approx(
            limit / math.sqrt(3), rel=0.1
        )
    else:
        assert float(w.std()) == pytest.approx(expected, rel=0.1)
    assert float(np.abs(model.params["conv2.b"]).max()) == 0.0


def test_dense_only_cnn_draws_what_the_mlp_draws():
    """Kernel draws reuse the MLP's initialisers: a dense-only CNN is the MLP."""
    for init in ("paper", "he", "glorot"):
        cnn = CNN((("dense", 7), ("dense", 3)), input_shape=(2, 3, 1), init=init)
        mlp = MLP([6, 7, 3], init=init)
        np.testing.assert_array_equal(cnn.flat, mlp.flat)


def test_predict_proba_is_chunked_softmax_and_images_are_accepted():
    model = CNN(seed=2, dtype="float64")
    x = np.random.default_rng(2).random((7, 784))
    whole = model.predict_proba(x, batch_size=512)
    chunked = model.predict_proba(x, batch_size=3)
    np.testing.assert_allclose(whole, chunked, rtol=1e-12)
    np.testing.assert_allclose(whole.sum(axis=1), 1.0)
    images = model.predict_proba(x.reshape(7, 28, 28, 1))
    np.testing.assert_array_equal(images, whole)
    assert model.predict(x).shape == (7,)
    assert model.predict_proba(x[:0]).shape == (0, 10)


def test_float32_model_computes_in_float32():
    model = CNN(seed=0)
    x = np.random.default_rng(0).random((4, 784), dtype=np.float32)
    loss, grads, logits = model.loss_and_grads(x, np.arange(4), return_logits=True)
    assert logits.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    assert list(grads) == list(model.params)


def test_trains_with_adam_and_the_reference_step():
    """train_epoch and ReferenceStep, as they are, fit a small learnable set."""
    rng = np.random.default_rng(0)
    n, side = 64, 8
    y = rng.integers(0, 4, n)
    x = rng.random((n, side, side)) * 0.2
    for i, k in enumerate(y):
        x[i, 2 * k : 2 * k + 2, :] = 1.0  # class k lights rows 2k and 2k+1
    x = np.round(x.reshape(n, side * side) * 255).astype(np.uint8)  # pixels
    layers = (("conv", 3, 4, "same"), ("pool", 2), ("dense", 16), ("dense", 4))
    model = CNN(layers, input_shape=(side, side, 1), dtype="float64", init="he")
    opt = Adam(lr=1e-2)
    losses = []
    for epoch in range(1, 16):
        step = ReferenceStep(model, opt, x, y)
        loss, accuracy = train_epoch(model, opt, x, y, 16, rng, step=step, epoch=epoch)
        losses.append(loss)
        assert is_view_of(model.params, model.flat, np)  # Adam wrote in place
    assert losses[-1] < 0.2 * losses[0]
    assert accuracy == 1.0
    assert {f"m.{name}" for name in model.params} <= set(opt.state_dict())


def test_param_shapes_follow_the_layers():
    shapes = param_shapes(
        (("conv", 4, 3, "same", 2), ("pool", 3, 1), ("dense", 5)), (9, 8, 2)
    )
    # same, stride 2: 5x4; pool 3 stride 1: 3x2; 3*2*3 = 18 inputs to dense1
    assert shapes == {
        "conv1.w": (4, 4, 2, 3),
        "conv1.b": (3,),
        "dense1.w": (18, 5),
        "dense1.b": (5,),
    }
