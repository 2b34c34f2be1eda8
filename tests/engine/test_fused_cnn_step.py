"""The CNN's fused ReLU + max-pool kernels and step against the reference they replace.

``relu_maxpool_forward``/``backward`` (``backprop.kernels.cpu.pool``) must give
what ``relu_forward`` then ``maxpool_forward`` (and ``maxpool_backward`` then
``relu_backward``) give, bit for bit: no arithmetic is done, only
comparisons and copies. ``FusedCNNStep`` must then train exactly as
``ReferenceStep`` does.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

pytest.importorskip("numba", reason="the fused kernels need Numba")

from backprop.cnn import CNN, LENET5  # noqa: E402
from backprop.conv import maxpool_backward, maxpool_forward  # noqa: E402
from backprop.errors import ConfigError  # noqa: E402
from backprop.kernels import kernels_for, make_step  # noqa: E402
from backprop.kernels.cnn_step import FusedCNNStep  # noqa: E402
from backprop.layers import relu_backward, relu_forward  # noqa: E402
from backprop.loop import ReferenceStep, train_epoch  # noqa: E402
from backprop.optim import Adam  # noqa: E402

CPU = kernels_for(np)


def reference(z, dout_of, pool, stride):
    """Pooled output and dz by the lectures' functions."""
    relu, relu_cache = relu_forward(z)
    out, cache = maxpool_forward(relu, pool, stride)
    dz = relu_backward(maxpool_backward(dout_of(out), cache), relu_cache)
    return out, dz


def same_bits(a, b):
    """Equal, with the same sign of zero and NaN where the other has NaN."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


def maps(draw_seed, n, h, w, c, dtype, levels):
    """(N, H, W, C) laid out as a convolution makes it: (C, H, W, N) in memory.
    ``levels`` small integers make ties and zeros common."""
    rng = np.random.default_rng(draw_seed)
    z = rng.integers(-levels, levels + 1, (c, h, w, n)).astype(dtype)  # (C, H, W, N)
    return z.transpose(3, 1, 2, 0)  # (N, H, W, C)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(1, 3),
    h=st.integers(2, 9),
    w=st.integers(2, 9),
    c=st.integers(1, 3),
    pool=st.integers(1, 3),
    stride=st.integers(1, 3),
    dtype=st.sampled_from(["float32", "float64"]),
    levels=st.sampled_from([1, 3, 1000]),
)
def test_fused_relu_pool_equals_relu_then_pool(
    seed, n, h, w, c, pool, stride, dtype, levels
):
    """Values, ties (the gradient to the first maximum), all-negative windows
    (no gradient), odd sizes and every stride: equal bit for bit; where
    windows overlap (stride < pool) the gradients are equal to rounding."""
    assume(pool <= min(h, w))
    z = maps(seed, n, h, w, c, dtype, levels)
    rng = np.random.default_rng(seed + 1)

    def dout_of(out):
        return rng.standard_normal(out.shape).astype(dtype)  # (N, OH, OW, C)

    want, want_dz = reference(z, dout_of, pool, stride)
    rng = np.random.default_rng(seed + 1)
    got, cache = CPU.relu_maxpool_forward(z, pool, stride)
    got_dz = CPU.relu_maxpool_backward(dout_of(got), cache)
    same_bits(got, want)
    if stride >= pool:
        same_bits(got_dz, want_dz)
    else:
        np.testing.assert_allclose(got_dz, want_dz, rtol=1e-6, atol=1e-6)


def test_any_memory_layout_and_nan():
    """A C-contiguous (N, H, W, C) input gives the same answers; a NaN in a
    window makes its output NaN, as ``np.maximum`` does (the training loop's
    guard looks for it), and its gradient goes where the reference sends it:
    to the first maximum before the NaN, if that is positive."""
    z = maps(3, 2, 6, 6, 3, "float32", 5)
    want, _ = CPU.relu_maxpool_forward(z)
    got, _ = CPU.relu_maxpool_forward(np.ascontiguousarray(z))
    same_bits(got, want)
    z = np.array(z)  # (N, H, W, C), a copy
    z[1, 2:4, 2:4, 0] = [[1.0, np.nan], [0.5, 0.2]]  # a positive first maximum
    z[0, 2:4, 2:4, 1] = [[np.nan, 3.0], [0.5, 0.2]]  # NaN first
    z[0, 0:2, 0:2, 2] = [[-1.0, np.nan], [-2.0, -3.0]]  # nothing positive
    rng = np.random.default_rng(0)
    dout = rng.standard_normal((2, 3, 3, 3)).astype("float32")  # (N, OH, OW, C)
    want, want_dz = reference(z, lambda out: dout, 2, 2)
    got, cache = CPU.relu_maxpool_forward(z)
    got_dz = CPU.relu_maxpool_backward(dout, cache)
    assert np.isnan(got).sum() == 3 and np.isnan(want).sum() == 3
    same_bits(got, want)
    same_bits(got_dz, want_dz)
    assert got_dz[1, 2, 2, 0] == dout[1, 1, 1, 0]  # the 1.0 before the NaN


def test_a_pool_too_large_for_the_offsets_is_refused():
    """Offsets ``i * pool + j`` are kept in int8: a 12x12 window is refused
    in one line instead of wrapping round and losing gradients."""
    z = maps(0, 1, 12, 12, 1, "float32", 3)
    assert CPU.relu_maxpool_forward(z, 11, 11)[0].shape == (1, 1, 1, 1)
    with pytest.raises(ConfigError, match="pool 12 is out of range: 1 to 11"):
        CPU.relu_maxpool_forward(z, 12, 12)


NETWORKS = {
    "lenet5": LENET5,
    "conv without a pool": (("conv", 3, 4, "same", 1), ("conv", 3, 2, "valid", 2),
                            ("dense", 10)),
    "pool first, pool after pool": (("pool", 2, 1), ("conv", 3, 3, "same", 1),
                                    ("pool", 2, 2), ("pool", 2, 1), ("dense", 10)),
    "overlapping pool": (("conv", 3, 3, "valid", 1), ("pool", 3, 1),
                         ("dense", 7), ("dense", 10)),
    "dense only": (("dense", 12), ("dense", 10)),
}  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_fused_forward_and_backward_equal_the_cnns(name, dtype):
    """``cnn_step.forward``/``backward`` against ``CNN.loss_and_grads`` on
    networks with every arrangement of layers: bit for bit, or to rounding
    where pooling windows overlap."""
    from backprop.kernels.cnn_step import backward, forward
    from backprop.losses import softmax_cross_entropy

    model = CNN(NETWORKS[name], input_shape=(16, 16, 1), seed=0, dtype=dtype)
    rng = np.random.default_rng(1)
    x = rng.random((5, 256)).astype(dtype)  # (N, 256)
    y = rng.integers(0, 10, 5)  # (N,)
    loss, grads, logits = model.loss_and_grads(x, y, return_logits=True)
    got_logits, caches = forward(model, x, CPU)
    got_loss, dlogits = softmax_cross_entropy(got_logits, y)
    got = backward(model, dlogits, caches, CPU)
    same_bits(got_logits, logits)
    same_bits(got_loss, loss)
    assert list(got) == list(grads)
    for key in grads:
        if name == "overlapping pool":  # normwise, as test_backends.py
            scale = np.abs(grads[key]).max()
            tolerance = 1e-5 if dtype == "float32" else 1e-12
            assert np.abs(got[key] - grads[key]).max() <= tolerance * scale, key
        else:
            same_bits(got[key], grads[key])


def training_set(n=96, seed=0):
    rng = np.random.default_rng(seed)
    pixels = (rng.random((n, 784)) < 0.2) * rng.integers(0, 256, (n, 784))
    return pixels.astype(np.uint8), rng.integers(0, 10, n).astype(np.int64)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_cnn_step_trains_exactly_as_the_reference(dtype):
    """Two epochs of LeNet-5 on random images: every step's loss and correct
    count, and the final weights, equal the reference step's bit for bit."""
    pixels, labels = training_set()
    results = {}
    for name in ("reference", "fused"):
        model = CNN(LENET5, seed=0, dtype=dtype)
        opt = Adam(1e-3)
        step = make_step(name, model, opt, pixels, labels, 32)
        assert isinstance(step, FusedCNNStep if name == "fused" else ReferenceStep)
        rng = np.random.default_rng(1)
        history = [
            train_epoch(model, opt, pixels, labels, 32, rng, step=step)
            for _ in range(2)
        ]
        results[name] = (history, model.flat.copy())
    assert results["fused"][0] == results["reference"][0]
    same_bits(results["fused"][1], results["reference"][1])
