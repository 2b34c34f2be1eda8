"""The fused CPU kernels against the reference functions they replace.

Bit-identical where the kernel does the reference's operations in the same
order (gathering and scaling, bias + ReLU, bias, the ReLU mask and the bias
gradient, Adam). The softmax kernel's ``exp``/``log`` come from libm, and
NumPy has its own SIMD ``exp``/``log`` (used for float32 on this x86-64 AVX2
machine; float64 used libm there too); the kernel also adds each row's
exponentials in order where NumPy sums pairwise. So there the tests assert the
error bounds measured on random and extreme logits (see ``test_softmax_*``).
"""

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backprop import kernels
from backprop.errors import ConfigError
from backprop.layers import dense_backward, dense_forward, relu_backward, relu_forward
from backprop.losses import log_softmax, softmax_cross_entropy
from backprop.optim import Adam

pytest.importorskip(
    "numba", reason="the fused CPU kernels need Numba: pip install numba"
)

from backprop.kernels import cpu  # noqa: E402

DTYPES = [
    pytest.param(np.float32, id="float32"),
    pytest.param(np.float64, id="float64"),
]
SENTINEL = -12345.0  # fills the rows of a buffer beyond the batch

# Error bounds of the softmax kernel, in units of the dtype's eps; measured
# over 4,000 random batches (N < 300, C < 40, normal logits of scales 1e-3 to
# 300, uniform in +-1e4, and +-1e4 with ties) in float32 and float64:
SOFTMAX_K = 8  # dlogits: measured k <= 4.5 (see _softmax_tolerance)
SOFTMAX_SUBNORMALS = 4  # plus this many smallest subnormals; measured <= 1
LOSS_K = 4  # loss: measured <= 2.3 eps (1 + loss) in float32, and in float64
#            <= 0.95 sqrt(N) eps (1 + loss), as the kernel's float64 sum of N
#            terms is then no more precise than NumPy's pairwise mean.


def elements(dtype, lo, hi):
    """Floats in [lo, hi] representable in ``dtype`` (with +-0 and subnormals)."""
    return st.floats(lo, hi, width=np.dtype(dtype).itemsize * 8)


def assert_bits_equal(actual, expected):
    """Equal bit for bit: the same signs of zero and the same NaNs."""
    actual, expected = np.ascontiguousarray(actual), np.ascontiguousarray(expected)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    uint = f"u{actual.dtype.itemsize}"
    np.testing.assert_array_equal(actual.view(uint), expected.view(uint))


def leading_rows(data, shape, dtype):
    """A buffer of a few more rows than ``shape[0]``, and its view ``buf[:n]``.

    The view is then a short last batch of a bigger buffer, as in training.
    """
    extra = data.draw(st.integers(0, 3), label="extra rows")
    buf = np.full((shape[0] + extra, *shape[1:]), SENTINEL, dtype)
    return buf, buf[: shape[0]]


def batch_sizes(max_rows=40):
    """Batch sizes, batch 1 often (``test_batch_1_*`` makes sure of it)."""
    return st.one_of(st.just(1), st.integers(1, max_rows))


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_1_and_short_last_batch_of_the_layer_kernels(dtype):
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (9, 6)).astype(np.uint8)
    scaled = images.astype(dtype) / np.asarray(255, dtype)  # as load_dataset
    for n in (1, 3):  # batch 1, and the short last batch of a buffer of 4 rows
        rows = rng.integers(0, 9, n)
        buf = np.full((4, 6), SENTINEL, dtype)
        assert_bits_equal(cpu.gather_scale(images, rows, buf), scaled[rows])
        z, b = rng.standard_normal((n, 5)).astype(dtype), rng.standard_normal(5)
        b = b.astype(dtype)
        buf = np.full((4, 5), SENTINEL, dtype)
        buf[:n] = z
        assert_bits_equal(cpu.bias_relu(buf[:n], b), relu_forward(z + b)[0])
        buf[:n] = z
        assert_bits_equal(cpu.bias_add(buf[:n], b), z + b)
        out, dout = relu_forward(z)[0], rng.standard_normal((n, 5)).astype(dtype)
        buf[:n] = dout
        db = np.empty(5, dtype)
        dx = cpu.relu_backward_bias_grad(buf[:n], out, db)
        assert_bits_equal(dx, relu_backward(dout, out))
        assert_bits_equal(db, relu_backward(dout, out).sum(axis=0))
        assert (buf[n:] == SENTINEL).all()


# --- gather_scale -------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=25)
@given(data=st.data())
def test_gather_scale_is_the_scaled_dataset_indexed(dtype, data):
    n = data.draw(st.integers(1, 30), label="N")
    d = data.draw(st.integers(1, 50), label="D")
    images = data.draw(hnp.arrays(np.uint8, (n, d)), label="images")
    images[0, 0] = 255  # the end points of the scale
    images[-1, -1] = 0
    if data.draw(st.booleans(), label="read-only"):  # as the loaded dataset is
        images.flags.writeable = False
    b = data.draw(batch_sizes(), label="b")
    rows = np.asarray(
        data.draw(st.lists(st.integers(0, n - 1), min_size=b, max_size=b))
    )
    buf, _ = leading_rows(data, (b, d), dtype)

    got = cpu.gather_scale(images, rows.astype(np.int64), buf)

    # What backprop.data.load_dataset makes, then x[batch]:
    expected = (images.astype(dtype) / np.asarray(255, dtype))[rows]
    assert got.shape == (b, d) and np.shares_memory(got, buf)
    assert_bits_equal(got, expected)
    assert (buf[b:] == SENTINEL).all()


def test_gather_scale_checks_shapes_and_rows():
    images = np.zeros((4, 3), np.uint8)
    with pytest.raises(ValueError, match="do not fit"):
        cpu.gather_scale(images, np.arange(3), np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match="do not fit"):
        cpu.gather_scale(images, np.arange(2), np.empty((2, 4), np.float32))
    with pytest.raises(IndexError, match="out of range"):
        cpu.gather_scale(images, np.array([0, 4]), np.empty((2, 3), np.float32))


# --- bias_relu and bias_add ---------------------------------------------------


def pre_activations(data, dtype, shape, special):
    """Random values, with NaN, +-inf and +-0 mixed in when ``special``."""
    values = elements(dtype, -100, 100)
    if special:
        values = st.one_of(
            values, st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0])
        )
    return data.draw(hnp.arrays(dtype, shape, elements=values))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_bias_relu_is_dense_bias_then_relu(dtype, data):
    n, h = data.draw(batch_sizes(), label="N"), data.draw(st.integers(1, 40), label="H")
    buf, z = leading_rows(data, (n, h), dtype)
    z[...] = pre_activations(data, dtype, (n, h), special=True)
    b = pre_activations(data, dtype, (h,), special=True)

    with np.errstate(invalid="ignore"):  # inf - inf
        expected, _ = relu_forward(z + b)  # dense_forward's "+ b", then ReLU
    got = cpu.bias_relu(z, b)

    assert got is z
    assert_bits_equal(got, expected)  # NaN survives; a zero sum is +0.0
    assert (buf[n:] == SENTINEL).all()


def test_bias_relu_keeps_nan_and_gives_positive_zero():
    for dtype in (np.float32, np.float64):
        z = np.array([[np.nan, -0.0, 0.0, -1.0, 2.0, np.inf]], dtype)
        b = np.array([1.0, -0.0, -0.0, 1.0, -2.0, -np.inf], dtype)
        got = cpu.bias_relu(z.copy(), b)
        assert np.isnan(got[0, 0]) and np.isnan(got[0, 5])  # nan + 1, inf - inf
        np.testing.assert_array_equal(got[0, 1:5], [0, 0, 0, 0])
        assert not np.signbit(got[0, 1:5]).any()  # -0 + -0 = -0 becomes +0
        with np.errstate(invalid="ignore"):
            assert_bits_equal(got, np.maximum(z + b, 0))


def test_bias_relu_after_the_matrix_product_is_dense_forward_then_relu():
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((37, 20)).astype(dtype)
        w = rng.standard_normal((20, 16)).astype(dtype)
        b = rng.standard_normal(16).astype(dtype)
        buf = np.empty((64, 16), dtype)  # (B, H), batch 37 uses its first rows
        z = np.matmul(x, w, out=buf[:37])
        expected, _ = relu_forward(dense_forward(x, w, b)[0])
        assert_bits_equal(cpu.bias_relu(z, b), expected)
        logits = np.matmul(x, w, out=buf[:37])
        assert_bits_equal(cpu.bias_add(logits, b), dense_forward(x, w, b)[0])


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_bias_add_is_dense_bias(dtype, data):
    n, c = data.draw(batch_sizes(), label="N"), data.draw(st.integers(1, 12), label="C")
    buf, z = leading_rows(data, (n, c), dtype)
    z[...] = pre_activations(data, dtype, (n, c), special=True)
    b = pre_activations(data, dtype, (c,), special=True)

    with np.errstate(invalid="ignore"):  # inf - inf
        expected = z + b
    got = cpu.bias_add(z, b)

    assert got is z
    assert_bits_equal(got, expected)
    assert (buf[n:] == SENTINEL).all()


# --- relu_backward_bias_grad --------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_relu_backward_bias_grad_is_relu_backward_then_db(dtype, data):
    n, h = data.draw(batch_sizes(), label="N"), data.draw(st.integers(1, 40), label="H")
    out, _ = relu_forward(pre_activations(data, dtype, (n, h), special=True))
    buf, dout = leading_rows(data, (n, h), dtype)
    dout[...] = data.draw(
        hnp.arrays(dtype, (n, h), elements=elements(dtype, -1e3, 1e3))
    )
    db = np.full(h, SENTINEL, dtype)

    expected_dx = relu_backward(dout.copy(), out)
    x, w = np.ones((n, 1), dtype), np.ones((1, h), dtype)  # any cache will do
    _, _, expected_db = dense_backward(expected_dx, (x, w), input_grad=False)
    got = cpu.relu_backward_bias_grad(dout, out, db)

    assert got is dout
    assert_bits_equal(got, expected_dx)
    assert (buf[n:] == SENTINEL).all()
    if h >= 2:
        # NumPy's axis-0 sum adds whole rows in order, as the kernel does.
        assert_bits_equal(db, expected_db)
    else:
        # With one column NumPy sums pairwise: the textbook bound of either order.
        eps = np.finfo(dtype).eps
        bound = n * eps * np.abs(expected_dx).sum(axis=0)
        assert (np.abs(db - expected_db) <= bound).all()


# --- softmax_cross_entropy ----------------------------------------------------


def _softmax_tolerance(logits, labels):
    """Per-element bound on |dlogits - reference|: k ulps of the log-probability.

    With ``lp = log p`` the reference's log-softmax, a difference of k eps in
    the log-sum-exp (or k ulps of ``lp``) carries into p as a relative error of
    about ``k eps (1 + |lp|)``; at the label, ``p - 1`` rounds to the eps of 1.
    Subnormal probabilities add a few units of the smallest subnormal.
    """
    dtype = logits.dtype
    eps, sub = np.finfo(dtype).eps, np.finfo(dtype).smallest_subnormal
    n, c = logits.shape
    lp = log_softmax(logits).astype(np.float64)  # (N, C)
    p = np.exp(lp)  # (N, C)
    at_label = np.arange(c) == labels[:, None]  # (N, C)
    with np.errstate(invalid="ignore"):  # 0 * inf where p underflows
        relative = np.nan_to_num((1 + np.abs(lp)) * p)
    return eps / n * (SOFTMAX_K * relative + at_label) + SOFTMAX_SUBNORMALS * sub


def check_softmax_cross_entropy(logits, labels, dlogits_buf=None):
    dtype = logits.dtype
    n, c = logits.shape
    if dlogits_buf is None:
        dlogits_buf = np.full((n, c), SENTINEL, dtype)
    dlogits = dlogits_buf[:n]
    db = np.full(c, SENTINEL, dtype)

    loss, correct = cpu.softmax_cross_entropy(logits, labels, dlogits, db)

    ref_loss, ref_dlogits = softmax_cross_entropy(logits, labels)
    assert isinstance(loss, float) and isinstance(correct, int)
    assert correct == int((logits.argmax(1) == labels).sum())
    eps = np.finfo(dtype).eps
    terms = math.sqrt(n) if dtype == np.float64 else 1.0  # see LOSS_K
    assert abs(loss - float(ref_loss)) <= LOSS_K * terms * eps * (1 + float(ref_loss))
    diff = np.abs(dlogits.astype(np.float64) - ref_dlogits)  # (N, C)
    tolerance = _softmax_tolerance(logits, labels)  # (N, C)
    worst = np.unravel_index(np.argmax(diff - tolerance), diff.shape)
    assert (diff <= tolerance).all(), (
        f"dlogits{worst}: {dlogits[worst]!r} vs {ref_dlogits[worst]!r}"
    )
    # db is dense_backward's bias gradient of the dlogits the kernel returned
    x, w = np.ones((n, 1), dtype), np.ones((1, c), dtype)
    _, _, expected_db = dense_backward(dlogits.copy(), (x, w), input_grad=False)
    if c >= 2:
        assert_bits_equal(db, expected_db)
    else:
        np.testing.assert_array_equal(db, expected_db)  # all zeros
    assert (dlogits_buf[n:] == SENTINEL).all()
    return loss, correct


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [30.0, 1e4], ids=["moderate", "extreme"])
@given(data=st.data())
def test_softmax_cross_entropy_matches_reference(dtype, scale, data):
    n, c = data.draw(batch_sizes(), label="N"), data.draw(st.integers(1, 12), label="C")
    values = st.one_of(elements(dtype, -scale, scale), st.sampled_from([-scale, scale]))
    logits = data.draw(hnp.arrays(dtype, (n, c), elements=values), label="logits")
    labels = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    buf, _ = leading_rows(data, (n, c), dtype)
    check_softmax_cross_entropy(logits, labels, buf)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_extreme_logits_every_class_and_batch_1(dtype):
    rng = np.random.default_rng(7)
    c = 10
    labels = np.arange(5 * c) % c  # every class, five times
    logits = rng.choice([-1e4, 1e4, 0.0], size=(5 * c, c)).astype(dtype)
    logits[:c] = -1e4
    logits[np.arange(c), labels[:c]] = 1e4  # confident and right: loss 0
    logits[c : 2 * c] = 1e4  # all tied: argmax is the first, p = 1/C
    loss, correct = check_softmax_cross_entropy(logits, labels)
    assert correct >= c + 1  # the confident rows, and tied row 0 (label 0)
    for i in range(len(labels)):  # batch 1, every row on its own
        check_softmax_cross_entropy(logits[i : i + 1], labels[i : i + 1])
    # realistic logits at the paper's shapes
    logits = (rng.standard_normal((256, c)) * 4).astype(dtype)
    check_softmax_cross_entropy(logits, rng.integers(0, c, 256))


def test_softmax_cross_entropy_nan_logit_gives_nan_loss():
    for dtype in (np.float32, np.float64):
        logits = np.zeros((3, 4), dtype)
        logits[1, 2] = np.nan
        dlogits, db = np.empty((3, 4), dtype), np.empty(4, dtype)
        loss, correct = cpu.softmax_cross_entropy(
            logits, np.array([0, 2, 0]), dlogits, db
        )
        assert math.isnan(loss)
        assert correct == 3  # np.argmax picks the NaN, as the kernel does
        assert np.isnan(dlogits[1]).all() and np.isnan(db).all()


def test_softmax_cross_entropy_checks_shapes_and_labels():
    logits = np.zeros((2, 3), np.float32)
    dlogits, db = np.empty((2, 3), np.float32), np.empty(3, np.float32)
    with pytest.raises(ValueError, match="shapes do not match"):
        cpu.softmax_cross_entropy(logits, np.zeros(3, np.int64), dlogits, db)
    with pytest.raises(ValueError, match="shapes do not match"):
        cpu.softmax_cross_entropy(logits, np.zeros(2, np.int64), dlogits[:1], db)
    with pytest.raises(IndexError, match="out of range"):
        cpu.softmax_cross_entropy(logits, np.array([0, 3]), dlogits, db)


def test_layer_kernels_check_shapes():
    z, b = np.zeros((2, 3), np.float32), np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="bias_relu: shapes do not match"):
        cpu.bias_relu(z, b)
    with pytest.raises(ValueError, match="bias_add: shapes do not match"):
        cpu.bias_add(z, b)
    with pytest.raises(ValueError, match="relu_backward_bias_grad"):
        cpu.relu_backward_bias_grad(z, z, b)
    p = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match="adam_keras: shapes do not match"):
        cpu.adam_keras(p, p[:4], p, p, 0.1, 0.001, 1e-3, 1e-7)
    with pytest.raises(ValueError, match="adam_algorithm1: shapes do not match"):
        cpu.adam_algorithm1(p, p, p, p[:4], 0.1, 0.001, 1e-3, 1e-8, 0.1, 0.001)


# --- Adam ---------------------------------------------------------------------

SHAPES = {"dense1.w": (13, 7), "dense1.b": (7,), "dense2.w": (7, 3), "dense2.b": (3,)}


def _f32(value):
    return float(np.float32(value))


def fused_adam_step(opt, flat):
    """One fused step with the scalars computed as ``Adam.step`` computes them.

    ``opt.t`` has already been incremented (by the reference step).
    """
    b1, b2, t = opt.beta1, opt.beta2, opt.t
    if opt.mode == "keras":
        # Keras's float32 lr and betas, in lr_t only
        lr_t = _f32(opt.lr) * math.sqrt(1 - _f32(b2) ** t) / (1 - _f32(b1) ** t)
        cpu.adam_keras(*flat, 1 - b1, 1 - b2, lr_t, opt.eps)
    else:
        cpu.adam_algorithm1(
            *flat, 1 - b1, 1 - b2, opt.lr, opt.eps, 1 - b1**t, 1 - b2**t
        )


def split(flat_array, like):
    """Views of a flat buffer, shaped like the arrays in ``like``."""
    sizes = [a.size for a in like.values()]
    pieces = np.split(flat_array, np.cumsum(sizes)[:-1])
    return {
        name: piece.reshape(a.shape) for (name, a), piece in zip(like.items(), pieces)
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["keras", "algorithm1"])
@pytest.mark.parametrize(
    "hyper",
    [{}, {"lr": 3e-2, "beta1": 0.8, "beta2": 0.99, "eps": 1e-5}],
    ids=["defaults", "other"],
)
def test_adam_kernels_are_bit_identical_to_adam_step(dtype, mode, hyper):
    rng = np.random.default_rng(3)
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
    flat_p = np.concatenate([p.ravel() for p in params.values()])  # (P,)
    flat_m, flat_v = np.zeros_like(flat_p), np.zeros_like(flat_p)  # (P,) each
    opt = Adam(mode=mode, **hyper)
    for step in range(50):
        scale = 10.0 ** rng.uniform(-6, 2)
        grads = {
            k: (rng.standard_normal(s) * scale).astype(dtype) for k, s in SHAPES.items()
        }
        if step % 7 == 0:
            grads["dense1.b"][:] = 0  # v may stay 0: sqrt(0) + eps
        flat_g = np.concatenate([g.ravel() for g in grads.values()])  # (P,)

        opt.step(params, grads)
        fused_adam_step(opt, (flat_p, flat_g, flat_m, flat_v))

        for name, p in split(flat_p, params).items():
            assert_bits_equal(p, params[name])
        for name, m in split(flat_m, params).items():
            assert_bits_equal(m, opt.m[name])
        for name, v in split(flat_v, params).items():
            assert_bits_equal(v, opt.v[name])
    assert opt.t == 50


# --- selection: resolve_kernels, kernels_for, warm_up --------------------------


class FakeCupy:
    """Stands in for the cupy module: anything that is not numpy."""


def test_resolve_kernels_reference_and_fused(capsys):
    assert kernels.resolve_kernels("reference", np) == "reference"
    assert kernels.resolve_kernels("reference", FakeCupy) == "reference"
    assert kernels.resolve_kernels("fused", np) == "fused"
    assert kernels.resolve_kernels("auto", np) == "fused"
    assert capsys.readouterr().out == ""
    assert kernels.numba_status() is None
    assert kernels.KERNEL_MODES == ("auto", "reference", "fused")


def test_resolve_kernels_refuses_unknown_modes_and_gpu_fused(capsys):
    with pytest.raises(ConfigError, match="unknown kernels 'fast'"):
        kernels.resolve_kernels("fast", np)
    with pytest.raises(ConfigError, match="no fused GPU kernels yet"):
        kernels.resolve_kernels("fused", FakeCupy)
    assert kernels.resolve_kernels("auto", FakeCupy) == "reference"
    out = capsys.readouterr().out
    assert out == "kernels auto: using the reference path (no fused GPU kernels yet)\n"


def test_resolve_kernels_without_numba(monkeypatch, capsys):
    monkeypatch.setattr(kernels, "numba_status", lambda: "Numba is not installed")
    assert kernels.resolve_kernels("auto", np) == "reference"
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert out == "kernels auto: using the reference path (Numba is not installed)\n"
    assert kernels.resolve_kernels("auto", np, announce=False) == "reference"
    assert capsys.readouterr().out == ""
    with pytest.raises(
        ConfigError, match="--kernels fused needs Numba.*pip install numba"
    ):
        kernels.resolve_kernels("fused", np)
    with pytest.raises(ConfigError, match="pip install numba"):
        kernels.kernels_for(np)
    assert kernels.resolve_kernels("reference", np) == "reference"


def test_kernels_for_and_warm_up():
    assert kernels.kernels_for(np) is cpu
    with pytest.raises(ConfigError, match="no fused GPU kernels yet"):
        kernels.kernels_for(FakeCupy)
    for dtype in ("float32", "float64"):
        kernels.warm_up(cpu, dtype)


def test_importing_the_package_does_not_import_numba():
    code = "import sys, backprop.kernels; print('numba' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
