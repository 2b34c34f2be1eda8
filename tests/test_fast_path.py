"""The fast path (Workspace, in-place Adam) equals the reference, bit for bit."""

import math

import numpy as np
import pytest

from backprop.device import to_numpy
from backprop.losses import softmax_cross_entropy
from backprop.model import MLP, Workspace
from backprop.optim import Adam
from backprop.train import train_epoch


def assert_same_bits(a, b):
    a, b = to_numpy(a), to_numpy(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


def make_data(xp, n, d, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, d)).astype(dtype)  # (n, d), like pixels in [0, 1]
    y = rng.integers(0, 10, size=n)  # (n,)
    return xp.asarray(x), xp.asarray(y)


def reference_adam_step(opt_state, params, grads, mode, lr=1e-3, b1=0.9, b2=0.999):
    """Adam written with temporaries, the formulas of optim.Adam's docstrings."""
    opt_state["t"] += 1
    t = opt_state["t"]
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    for name, p in params.items():
        g = grads[name]
        m = opt_state.setdefault(f"m.{name}", p * 0)
        v = opt_state.setdefault(f"v.{name}", p * 0)
        m += (1 - b1) * (g - m)
        v += (1 - b2) * (g * g - v)
        if mode == "keras":
            lr_t = f32(lr) * math.sqrt(1 - f32(b2) ** t) / (1 - f32(b1) ** t)
            p -= lr_t * m / ((v**0.5) + 1e-7)
        else:
            m_hat = m / (1 - b1**t)
            v_hat = v / (1 - b2**t)
            p -= lr * m_hat / ((v_hat**0.5) + 1e-8)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes", [[12, 7, 10], [12, 9, 5, 10]])
def test_workspace_equals_reference_loss_and_grads(xp, dtype, sizes):
    model = MLP(sizes, seed=1, dtype=dtype, device="cpu" if xp is np else "gpu")
    ws = Workspace(model, batch_size=16)
    for n in (16, 5):  # a full batch, then a smaller one in the same buffers
        x, y = make_data(xp, n, sizes[0], dtype, seed=n)
        loss_ref, grads_ref = model.loss_and_grads(x, y)
        logits_ref, _ = model.forward(x)
        loss, logits, grads = ws.loss_and_grads(x, y)
        assert_same_bits(loss, loss_ref)
        assert_same_bits(logits, logits_ref)
        assert list(grads) == list(grads_ref)
        for name in grads_ref:
            assert_same_bits(grads[name], grads_ref[name])


def test_workspace_reuses_its_arrays(xp):
    model = MLP([6, 4, 10], seed=0, device="cpu" if xp is np else "gpu")
    ws = Workspace(model, batch_size=8)
    x, y = make_data(xp, 8, 6, "float32")
    _, logits1, grads1 = ws.loss_and_grads(x, y)
    first = {k: to_numpy(v).copy() for k, v in grads1.items()}
    _, logits2, grads2 = ws.loss_and_grads(2 * x, y)
    assert all(grads2[k] is grads1[k] for k in grads1)  # the same buffers
    assert logits2.base is logits1.base
    assert not np.array_equal(to_numpy(grads2["dense1.w"]), first["dense1.w"])


def test_workspace_loss_matches_losses_module(xp):
    model = MLP(
        [5, 3, 10], seed=2, dtype="float64", device="cpu" if xp is np else "gpu"
    )
    ws = Workspace(model, batch_size=4)
    logits = xp.asarray(np.random.default_rng(0).normal(size=(4, 10)) * 30)  # (4, 10)
    labels = xp.asarray([0, 3, 9, 3])
    loss = ws.loss(logits, labels)
    dlogits = ws.douts[-1]
    loss_ref, dlogits_ref = softmax_cross_entropy(logits, labels)
    assert_same_bits(loss, loss_ref)
    assert_same_bits(dlogits, dlogits_ref)


def test_workspace_gather_copies_rows(xp):
    model = MLP([6, 4, 10], seed=0, device="cpu" if xp is np else "gpu")
    ws = Workspace(model, batch_size=8)
    x, y = make_data(xp, 20, 6, "float32")
    batch = xp.asarray([19, 0, 7])
    xb, yb = ws.gather(x, y, batch)
    assert_same_bits(xb, x[batch])
    assert_same_bits(yb, y[batch])


@pytest.mark.parametrize("mode", ["keras", "algorithm1"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_in_place_adam_equals_the_formulas(mode, dtype):
    rng = np.random.default_rng(5)
    params = {"w": rng.normal(size=(6, 3)).astype(dtype), "b": np.zeros(3, dtype)}
    ref_params = {k: v.copy() for k, v in params.items()}
    opt, ref_state = Adam(mode=mode), {"t": 0}
    for _ in range(4):
        grads = {k: rng.normal(size=v.shape).astype(dtype) for k, v in params.items()}
        opt.step(params, grads)
        reference_adam_step(ref_state, ref_params, grads, mode)
    for name in params:
        assert_same_bits(params[name], ref_params[name])
        assert_same_bits(opt.m[name], ref_state[f"m.{name}"])
        assert_same_bits(opt.v[name], ref_state[f"v.{name}"])


def test_train_epoch_equals_the_reference_loop(xp):
    device = "cpu" if xp is np else "gpu"
    x, y = make_data(xp, 70, 12, "float64")
    fast = MLP([12, 8, 10], seed=3, dtype="float64", device=device)
    slow = MLP.from_params(fast.params, device=device)
    fast_opt, ref_state = Adam(), {"t": 0}
    rng_fast, rng_slow = np.random.default_rng(9), np.random.default_rng(9)
    for _ in range(2):
        train_epoch(fast, fast_opt, x, y, 32, rng_fast)  # 32, 32, then 6 rows
        order = xp.asarray(rng_slow.permutation(70))
        for i in range(3):
            batch = order[i * 32 : (i + 1) * 32]
            _, grads = slow.loss_and_grads(x[batch], y[batch])
            reference_adam_step(ref_state, slow.params, grads, "keras")
    for name in fast.params:
        assert_same_bits(fast.params[name], slow.params[name])
