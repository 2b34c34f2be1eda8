"""The MLP's parameters and API, initialisers, optimizers and checkpoints."""

import math

import numpy as np
import pytest

import backprop as bp
from backprop.app.runs import (
    Checkpoint,
    atomic_write_text,
    load_checkpoint,
    save_checkpoint,
)
from backprop.device import to_numpy
from backprop.errors import ConfigError
from backprop.init import glorot_uniform, he_normal, truncated_normal


def test_paper_model_has_named_keras_shaped_params():
    model = bp.MLP([784, 128, 10], seed=0, dtype="float64", device="cpu")
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == {
        "dense1.w": (784, 128),
        "dense1.b": (128,),
        "dense2.w": (128, 10),
        "dense2.b": (10,),
    }
    assert all(v.dtype == np.float64 for v in model.params.values())
    assert not model.params["dense1.b"].any()


def test_deeper_model_and_api(xp):
    device = "cpu" if xp is np else "gpu"
    model = bp.MLP([6, 5, 4, 3], seed=1, device=device)
    x = xp.asarray(np.random.default_rng(0).random((7, 6)), dtype=np.float32)
    y = xp.asarray([0, 1, 2, 0, 1, 2, 0])
    loss, grads = model.loss_and_grads(x, y)
    assert list(grads) == list(model.params)
    assert all(grads[k].shape == model.params[k].shape for k in grads)
    assert float(loss) > 0
    probs = to_numpy(model.predict_proba(x, batch_size=3))
    assert probs.shape == (7, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    assert to_numpy(model.predict(x)).tolist() == probs.argmax(axis=1).tolist()


def test_same_seed_same_weights_different_seed_different():
    a, b, c = (bp.MLP([20, 8, 3], seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.params["dense1.w"], b.params["dense1.w"])
    assert not np.array_equal(a.params["dense1.w"], c.params["dense1.w"])


def test_truncated_normal_is_resampled_within_two_stddevs():
    values = truncated_normal(np.random.default_rng(0), (200_000,), stddev=0.1)
    assert np.abs(values).max() <= 0.2
    # a unit normal truncated to [-2, 2] has stddev 0.8796
    assert values.std() == pytest.approx(0.1 * 0.8796, rel=0.01)
    assert abs(values.mean()) < 1e-3


def test_he_and_glorot_spreads():
    rng = np.random.default_rng(0)
    he = he_normal(rng, 1000, 500)
    assert he.std() == pytest.approx(math.sqrt(2 / 1000), rel=0.02)
    glorot = glorot_uniform(rng, 300, 200)
    limit = math.sqrt(6 / 500)
    assert np.abs(glorot).max() <= limit and glorot.std() == pytest.approx(
        limit / math.sqrt(3), rel=0.02
    )


def test_bad_model_arguments():
    with pytest.raises(ConfigError, match="two positive widths"):
        bp.MLP([784])
    with pytest.raises(ConfigError, match="unknown dtype"):
        bp.MLP([4, 2], dtype="float16")
    with pytest.raises(ConfigError, match="unknown init"):
        bp.MLP([4, 2], init="zeros")


def test_from_params_roundtrip_and_errors():
    model = bp.MLP([5, 4, 3], seed=0, dtype="float64")
    copy = bp.MLP.from_params({k: v.copy() for k, v in model.params.items()})
    assert copy.sizes == [5, 4, 3] and copy.dtype == "float64"
    bad = dict(model.params)
    bad["dense2.w"] = np.zeros((5, 3))
    with pytest.raises(ConfigError, match="dense2"):
        bp.MLP.from_params(bad)
    with pytest.raises(ConfigError, match="not dense1.w"):
        bp.MLP.from_params({"w": np.zeros((2, 2))})


@pytest.mark.parametrize("mode", ["keras", "algorithm1"])
def test_first_adam_step_moves_each_weight_by_about_lr(mode):
    params = {"w": np.array([1.0, -2.0, 3.0])}
    grads = {"w": np.array([0.5, -0.25, 0.1])}
    opt = bp.Adam(lr=0.01, mode=mode)
    opt.step(params, grads)
    # first step: m_hat = g and v_hat = g^2, so the move is lr * sign(g)
    np.testing.assert_allclose(params["w"], [0.99, -1.99, 2.99], rtol=0, atol=1e-6)


def test_adam_modes_differ_by_epsilon_placement():
    g = {"w": np.array([1e-6])}
    p1, p2 = {"w": np.zeros(1)}, {"w": np.zeros(1)}
    bp.Adam(lr=1.0, mode="keras").step(p1, g)
    bp.Adam(lr=1.0, mode="algorithm1").step(p2, g)
    # keras: eps 1e-7 next to the uncorrected sqrt(v) = sqrt(0.001) * 1e-6, with
    # lr and the betas rounded to float32 in the step size, as Keras does
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    lr_t = f32(1.0) * math.sqrt(1 - f32(0.999)) / (1 - f32(0.9))
    m, v = (1 - 0.9) * 1e-6, (1 - 0.999) * 1e-12
    assert p1["w"][0] == pytest.approx(-lr_t * m / (math.sqrt(v) + 1e-7), rel=1e-12)
    # the same step without the float32 rounding differs by about 1e-5 relative
    exact = -math.sqrt(0.001) / 0.1 * m / (math.sqrt(v) + 1e-7)
    assert 1e-7 < abs(p1["w"][0] / exact - 1) < 1e-4
    # algorithm1: eps 1e-8 next to the corrected sqrt(v_hat) = 1e-6
    assert p2["w"][0] == pytest.approx(-1e-6 / (1e-6 + 1e-8), rel=1e-9)


def test_adam_and_sgd_reject_bad_settings():
    with pytest.raises(ConfigError):
        bp.Adam(lr=0)
    with pytest.raises(ConfigError):
        bp.Adam(mode="adamw")
    with pytest.raises(ConfigError):
        bp.Adam(beta1=1.0)
    with pytest.raises(ConfigError):
        bp.SGD(lr=-1)


def test_sgd_step():
    params = {"w": np.array([1.0, 2.0])}
    bp.SGD(lr=0.5).step(params, {"w": np.array([2.0, -2.0])})
    np.testing.assert_array_equal(params["w"], [0.0, 3.0])


def test_adam_state_roundtrip_continues_identically():
    rng = np.random.default_rng(0)
    grads = [{"w": rng.normal(size=4)} for _ in range(6)]
    a = {"w": np.ones(4)}
    opt_a = bp.Adam()
    for g in grads:
        opt_a.step(a, g)
    b = {"w": np.ones(4)}
    opt_b = bp.Adam()
    for g in grads[:3]:
        opt_b.step(b, g)
    opt_c = bp.Adam()
    opt_c.load_state_dict(opt_b.state_dict(), b)
    for g in grads[3:]:
        opt_c.step(b, g)
    np.testing.assert_array_equal(a["w"], b["w"])


def test_checkpoint_roundtrip(tmp_path):
    model = bp.MLP([4, 3, 2], seed=0)
    rng = np.random.default_rng(9)
    ckpt = Checkpoint(
        params=model.params,
        optimizer={"t": 0},
        rng_state=rng.bit_generator.state,
        config={"hidden": [3]},
        history=[{"epoch": 1}],
    )
    save_checkpoint(tmp_path / "m.npz", ckpt)
    back = load_checkpoint(tmp_path / "m.npz")
    for k in model.params:
        np.testing.assert_array_equal(back.params[k], model.params[k])
    assert back.rng_state == rng.bit_generator.state
    assert back.history == [{"epoch": 1}] and back.optimizer["t"] == 0


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")
    with pytest.raises(AttributeError):
        atomic_write_text(path, None)  # fails inside the write
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
