"""The gradient checker itself: its pieces, its reports, and planted bugs it must catch.

Each planted bug is a copy of one of the engine's backward functions (or of Adam)
with one classic mistake in it. The copy is swapped in only while the analytic
gradients are computed; the checker's numerical side always uses the real
forward pass. Every bug must be caught, and the report must name exactly the
parameters the bug corrupts.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import backprop.model as model_module
from backprop import gradcheck as gc
from backprop.app.commands import gradcheck as gradcheck_command
from backprop.device import gpu_status, to_numpy, xp_of
from backprop.errors import ConfigError
from backprop.layers import dense_backward, dense_forward, relu_backward, relu_forward
from backprop.losses import log_softmax, softmax
from backprop.model import MLP

# ---------------------------------------------------------------------------
# helpers


def small_model(xp, dtype="float64", sizes=(5, 6, 6, 3), seed=0):
    """An MLP with non-zero biases; dense2.w is square (6, 6)."""
    model = MLP(list(sizes), seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 100)
    params = {}
    for name, p in model.params.items():
        value = to_numpy(p)
        if name.endswith(".b"):
            value = rng.normal(0, 0.2, value.shape).astype(dtype)
        params[name] = value
    return MLP.from_params(params, device="cpu" if xp is np else "gpu")


def batch(xp, n, d, classes, dtype="float64", seed=1):
    rng = np.random.default_rng(seed)
    x = xp.asarray(rng.uniform(-1, 1, (n, d)).astype(dtype))
    y = xp.asarray(rng.integers(0, classes, n))
    return x, y


def failing(reports):
    return {r.name for r in reports if not r.passed}


# ---------------------------------------------------------------------------
# numerical gradients


def test_numerical_gradient_of_a_smooth_function(xp):
    rng = np.random.default_rng(0)
    x = xp.asarray(rng.uniform(-2, 2, (3, 4)))
    num = gc.numerical_gradient(lambda v: (xp.sin(v) * v**2).sum(), x)
    exact = to_numpy(xp.cos(x) * x**2 + 2 * x * xp.sin(x))
    np.testing.assert_allclose(num, exact, rtol=1e-8, atol=1e-9)
    assert isinstance(num, np.ndarray) and num.dtype == np.float64


def test_numerical_gradient_restores_x(xp):
    x = xp.asarray(np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32))
    before = to_numpy(x).copy()
    gc.numerical_gradient(lambda v: (v**3).sum(), x)
    np.testing.assert_array_equal(to_numpy(x), before)


def test_numerical_gradient_of_a_scalar_array(xp):
    x = xp.asarray(0.7)
    num = gc.numerical_gradient(lambda v: v**3, x)
    assert num.shape == ()
    assert abs(float(num) - 3 * 0.7**2) < 1e-9


def test_upstream_form_is_the_vector_jacobian_product(xp):
    rng = np.random.default_rng(2)
    x = xp.asarray(rng.normal(size=(3, 5)))
    dout = xp.asarray(rng.normal(size=(3, 5)))
    num = gc.numerical_gradient_array(lambda v: xp.tanh(v), x, dout)
    exact = to_numpy((1 - xp.tanh(x) ** 2) * dout)
    np.testing.assert_allclose(num, exact, rtol=1e-8, atol=1e-10)


def test_float32_divides_by_the_step_actually_stored():
    # At x = 1000, float32 spacing is 6.1e-5: x + 1e-2 is stored as 1000.00995...
    x = np.array([1000.0], dtype=np.float32)
    num = gc.numerical_gradient(lambda v: 3.0 * float(v[0]), x)
    assert abs(float(num[0]) - 3.0) < 1e-9


# ---------------------------------------------------------------------------
# relative error, policy


def test_relative_error_behaves_near_zero():
    assert gc.relative_error(0.0, 0.0)[()] == 0.0
    assert gc.relative_error(1e-12, -1e-12)[()] == 2.0
    assert gc.relative_error(1e-12, -1e-12, floor=1e-3)[()] == pytest.approx(2e-9)
    assert gc.relative_error(2.0, 1.0)[()] == pytest.approx(0.5)
    assert gc.relative_error(1.0, 2.0)[()] == gc.relative_error(2.0, 1.0)[()]
    assert math.isnan(gc.relative_error(math.nan, 1.0)[()])


def test_policy_by_dtype():
    p64, p32 = gc.policy_for("float64"), gc.policy_for(np.float32)
    assert p64.rtol < p32.rtol and p64.step < p32.step
    assert p64.rtol <= 1e-7
    with pytest.raises(ConfigError, match="float16"):
        gc.policy_for("float16")


def test_noise_floor_grows_with_the_size_of_f():
    small = gc.noise_floor("float64", 2.3, 1e-5, 1e-7)
    assert gc.noise_floor("float64", 230.0, 1e-5, 1e-7) == pytest.approx(100 * small)
    assert gc.noise_floor("float32", 2.3, 1e-5, 1e-7) > 1e8 * small


# ---------------------------------------------------------------------------
# check_gradient and its report


def dense_case(xp, dtype="float64", seed=3):
    rng = np.random.default_rng(seed)
    x = xp.asarray(rng.normal(size=(4, 5)).astype(dtype))
    w = xp.asarray(rng.normal(size=(5, 3)).astype(dtype))
    b = xp.asarray(rng.normal(size=(3,)).astype(dtype))
    dout = xp.asarray(rng.normal(size=(4, 3)).astype(dtype))
    return x, w, b, dout


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_check_layer_passes_for_the_dense_layer(xp, dtype):
    x, w, b, dout = dense_case(xp, dtype)
    _, cache = dense_forward(x, w, b)
    dx, dw, db = dense_backward(dout, cache)
    reports = gc.check_layer(
        lambda x, w, b: dense_forward(x, w, b)[0],
        {"x": x, "w": w, "b": b},
        dout,
        {"x": dx, "w": dw, "b": db},
    )
    assert [r.name for r in reports] == ["x", "w", "b"]
    for r in reports:
        assert r.passed, str(r)
        assert r.checked == r.size and not r.kinks
        assert r.tolerance == gc.policy_for(dtype).rtol
        assert r.step == gc.policy_for(dtype).step
    assert [r.shape for r in reports] == [(4, 5), (5, 3), (3,)]


def test_worst_index_points_at_a_planted_error(xp):
    x, w, b, dout = dense_case(xp)
    _, cache = dense_forward(x, w, b)
    _, dw, _ = dense_backward(dout, cache)
    dw[2, 1] += 1e-3
    report = gc.check_gradient(
        lambda _: dense_forward(x, w, b)[0], w, dw, name="w", dout=dout
    )
    assert not report.passed
    assert report.worst_index == (2, 1)
    assert report.analytic == pytest.approx(float(dw[2, 1]))
    assert abs(report.analytic - report.numerical) == pytest.approx(1e-3, rel=1e-6)
    assert report.rel_error > report.tolerance


def test_wrong_shape_fails_with_a_note(xp):
    x, w, b, dout = dense_case(xp)
    _, cache = dense_forward(x, w, b)
    _, dw, _ = dense_backward(dout, cache)
    report = gc.check_gradient(
        lambda _: dense_forward(x, w, b)[0], w, dw.T, name="w", dout=dout
    )
    assert not report.passed and report.rel_error == math.inf
    assert "(3, 5)" in report.note and "(5, 3)" in report.note
    assert "FAIL" in str(report) and report.note in str(report)


def test_nan_in_the_analytic_gradient_fails(xp):
    x = xp.asarray(np.linspace(-1, 1, 6))
    grad = 2 * x
    grad[4] = math.nan
    report = gc.check_gradient(lambda v: (v**2).sum(), x, grad)
    assert not report.passed and report.worst_index == (4,)


def test_report_reads_well(xp):
    x, w, b, dout = dense_case(xp)
    _, cache = dense_forward(x, w, b)
    _, dw, _ = dense_backward(dout, cache)
    report = gc.check_gradient(
        lambda _: dense_forward(x, w, b)[0], w, dw, name="dense1.w", dout=dout
    )
    text = str(report)
    assert text.startswith("dense1.w (5x3, float64): PASS")
    assert "max relative error" in text and "analytic" in text and "numerical" in text
    assert "checked 15 of 15 entries" in text


# ---------------------------------------------------------------------------
# ReLU kinks


def relu_case(xp, h):
    # entry 1 sits within h of the kink; the others are far from it
    x = xp.asarray([-0.5, 0.25 * h, 0.8, -3 * h, 2.0])
    dout = xp.asarray([1.0, -2.0, 0.5, 1.5, -1.0])
    out, cache = relu_forward(x)
    return x, dout, relu_backward(dout, cache)


def test_relu_kink_is_reported_not_failed(xp):
    h = gc.policy_for("float64").step
    x, dout, dx = relu_case(xp, h)
    report = gc.check_gradient(
        lambda v: relu_forward(v)[0], x, dx, dout=dout, pre_activations=lambda v: [v]
    )
    assert report.passed, str(report)
    assert report.kinks == [(1,)]
    assert report.checked == 4
    assert "ReLU kink: [1]" in str(report)


def test_the_same_kink_fails_when_not_looked_for(xp):
    h = gc.policy_for("float64").step
    x, dout, dx = relu_case(xp, h)
    report = gc.check_gradient(lambda v: relu_forward(v)[0], x, dx, dout=dout)
    # (relu(1.25 h) - relu(-0.75 h)) / 2h = 0.625 of the true slope
    assert not report.passed and report.worst_index == (1,)
    assert report.rel_error == pytest.approx(0.375, rel=1e-6)


def test_model_check_finds_kinks_in_hidden_layers(xp):
    model = small_model(xp, sizes=(4, 5, 3))
    x, y = batch(xp, 6, 4, 3)
    h = gc.policy_for("float64").step
    # put hidden unit 2 of example 0 just above its kink: z = h / 3
    z = x @ model.params["dense1.w"] + model.params["dense1.b"]
    model.params["dense1.b"][2] -= float(z[0, 2]) - h / 3
    reports = {r.name: r for r in gc.check_model(model, x, y)}
    assert all(r.passed for r in reports.values())
    assert (2,) in reports["dense1.b"].kinks
    assert all(k[1] == 2 for k in reports["dense1.w"].kinks)
    assert reports["dense1.w"].kinks  # column 2 of the weights moves that z too
    assert not reports["dense2.w"].kinks and not reports["dense2.b"].kinks


# ---------------------------------------------------------------------------
# the whole model


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_check_model_passes_on_the_engine(xp, dtype):
    model = small_model(xp, dtype)
    x, y = batch(xp, 8, 5, 3, dtype)
    reports = gc.check_model(model, x, y)
    assert [r.name for r in reports] == list(model.params)
    for r in reports:
        assert r.passed, str(r)
        assert r.checked + len(r.kinks) == r.size


def test_check_model_leaves_the_parameters_unchanged(xp):
    model = small_model(xp)
    before = {k: to_numpy(v).copy() for k, v in model.params.items()}
    x, y = batch(xp, 8, 5, 3)
    gc.check_model(model, x, y)
    for name, value in model.params.items():
        np.testing.assert_array_equal(to_numpy(value), before[name])


def test_check_model_samples_entries():
    model = small_model(np, sizes=(20, 10, 3))
    x, y = batch(np, 4, 20, 3)
    reports = gc.check_model(model, x, y, max_entries=7)
    assert [r.checked + len(r.kinks) for r in reports] == [7, 7, 7, 3]
    again = gc.check_model(model, x, y, max_entries=7)
    assert [r.worst_index for r in reports] == [r.worst_index for r in again]


def test_sample_indices():
    rng = np.random.default_rng(0)
    picked = gc.sample_indices((4, 5), 6, rng)
    assert len(set(picked)) == 6 and all(0 <= i < 4 and 0 <= j < 5 for i, j in picked)
    assert gc.sample_indices((4, 5), 20, rng) is None
    assert gc.sample_indices((4, 5), 0, rng) is None


def test_format_table_has_a_row_per_parameter():
    model = small_model(np)
    x, y = batch(np, 8, 5, 3)
    table = gc.format_table(gc.check_model(model, x, y))
    lines = table.splitlines()
    assert lines[0].split() == [
        "parameter",
        "shape",
        "checked",
        "kinks",
        "max",
        "rel",
        "error",
        "result",
    ]
    assert [line.split()[0] for line in lines[2:8]] == list(model.params)
    assert all(line.split()[-1] == "PASS" for line in lines[2:8])
    assert lines[-1] == "all 6 parameters pass"


# ---------------------------------------------------------------------------
# planted bugs: copies of the backward functions, each with one mistake


def relu_backward_without_mask(dout, cache):
    return dout  # BUG: the gradient should pass only where the input was > 0


def softmax_cross_entropy_not_divided_by_n(logits, labels):
    xp = xp_of(logits)
    rows = xp.arange(logits.shape[0])
    log_probs = log_softmax(logits)
    loss = -log_probs[rows, labels].mean()
    dlogits = xp.exp(log_probs)
    dlogits[rows, labels] -= 1
    return loss, dlogits  # BUG: the loss is a mean, so dlogits needs / N


def softmax_cross_entropy_wrong_sign(logits, labels):
    xp = xp_of(logits)
    n = logits.shape[0]
    rows = xp.arange(n)
    loss = -log_softmax(logits)[rows, labels].mean()
    onehot = xp.zeros_like(logits)
    onehot[rows, labels] = 1
    return loss, (onehot - softmax(logits)) / n  # BUG: should be probs - onehot


def dense_backward_transposed_dw(dout, cache, *, input_grad=True):
    x, w = cache
    dw = dout.T @ x  # BUG: (H, D), the transpose of x.T @ dout
    db = dout.sum(axis=0)
    dx = dout @ w.T if input_grad else None
    return dx, dw, db


def dense_backward_without_db(dout, cache, *, input_grad=True):
    x, w = cache
    xp = xp_of(dout)
    dw = x.T @ dout
    db = xp.zeros(dout.shape[1], dtype=dout.dtype)  # BUG: forgot dout.sum(axis=0)
    dx = dout @ w.T if input_grad else None
    return dx, dw, db


def dense_backward_wrong_sign_dw(dout, cache, *, input_grad=True):
    x, w = cache
    dw = -(x.T @ dout)  # BUG: the sign
    db = dout.sum(axis=0)
    dx = dout @ w.T if input_grad else None
    return dx, dw, db


ALL = {"dense1.w", "dense1.b", "dense2.w", "dense2.b", "dense3.w", "dense3.b"}
WEIGHTS = {"dense1.w", "dense2.w", "dense3.w"}
BIASES = {"dense1.b", "dense2.b", "dense3.b"}
BUGS = {
    # name: (function replaced in backprop.model, buggy copy, parameters it corrupts)
    "relu-mask-dropped": (
        "relu_backward",
        relu_backward_without_mask,
        {"dense1.w", "dense1.b", "dense2.w", "dense2.b"},  # below a ReLU
    ),
    "not-divided-by-batch": (
        "softmax_cross_entropy",
        softmax_cross_entropy_not_divided_by_n,
        ALL,
    ),
    "weight-gradient-transposed": (
        "dense_backward",
        dense_backward_transposed_dw,
        WEIGHTS,
    ),
    "bias-gradient-dropped": ("dense_backward", dense_backward_without_db, BIASES),
    "weight-gradient-wrong-sign": (
        "dense_backward",
        dense_backward_wrong_sign_dw,
        WEIGHTS,
    ),
    "loss-gradient-wrong-sign": (
        "softmax_cross_entropy",
        softmax_cross_entropy_wrong_sign,
        ALL,
    ),
}


def buggy_grads(monkeypatch, model, x, y, target, buggy):
    with monkeypatch.context() as patch:
        patch.setattr(model_module, target, buggy)
        _, grads = model.loss_and_grads(x, y)
    return grads


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bug", list(BUGS))
def test_checker_catches_planted_bug(xp, dtype, bug, monkeypatch):
    target, buggy, corrupted = BUGS[bug]
    model = small_model(xp, dtype)
    x, y = batch(xp, 8, 5, 3, dtype)
    # the ReLU bug needs inactive units, or dropping the mask would change nothing
    _, caches = model.forward(x)
    for _, relu_out in caches[:-1]:
        assert bool((relu_out == 0).any())
    grads = buggy_grads(monkeypatch, model, x, y, target, buggy)
    reports = gc.check_model(model, x, y, grads)
    assert failing(reports) == corrupted
    for r in reports:
        if not r.passed:
            assert str(r).startswith(f"{r.name} (")
            assert "FAIL" in str(r)
    # the same model with the real backward pass passes
    assert not failing(gc.check_model(model, x, y))


def test_transposed_square_weight_gradient_is_caught_by_value(xp, monkeypatch):
    model = small_model(xp)
    x, y = batch(xp, 8, 5, 3)
    grads = buggy_grads(
        monkeypatch, model, x, y, "dense_backward", dense_backward_transposed_dw
    )
    reports = {r.name: r for r in gc.check_model(model, x, y, grads)}
    # dense2.w is (6, 6): the transposed gradient has the right shape
    assert not reports["dense2.w"].passed and not reports["dense2.w"].note
    assert reports["dense2.w"].rel_error > 1e-2
    # dense1.w is (5, 6): the transposed gradient is (6, 5)
    assert "(6, 5)" in reports["dense1.w"].note


def test_relu_layer_without_mask_is_caught_at_layer_level(xp):
    x = xp.asarray([[-1.0, 0.5, -0.2], [2.0, -0.7, 0.3]])
    dout = xp.asarray([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    report = gc.check_gradient(
        lambda v: relu_forward(v)[0],
        x,
        relu_backward_without_mask(dout, None),
        dout=dout,
        pre_activations=lambda v: [v],
    )
    assert not report.passed
    assert float(x[report.worst_index]) < 0  # the worst entry is a masked one


# ---------------------------------------------------------------------------
# the command line


SMALL = ["--inputs", "6", "--hidden", "5,4", "--classes", "3", "--batch-size", "3"]


def test_cli_prints_the_table(capsys):
    assert gradcheck_command.main(SMALL) == 0
    out = capsys.readouterr().out
    for name in ("dense1.w", "dense1.b", "dense2.w", "dense2.b", "dense3.w"):
        assert any(line.startswith(name) for line in out.splitlines())
    assert "all 6 parameters pass" in out
    assert "MLP [6, 5, 4, 3]" in out


def test_cli_verbose_float32_and_sampling(capsys):
    argv = [*SMALL, "--dtype", "float32", "--max-entries", "4", "--verbose"]
    assert gradcheck_command.main(argv) == 0
    out = capsys.readouterr().out
    assert "dense1.w (6x5, float32): PASS" in out
    assert "checked" in out and "up to 4 random entries" in out


def test_cli_exits_1_when_a_gradient_is_wrong(capsys, monkeypatch):
    monkeypatch.setattr(model_module, "relu_backward", relu_backward_without_mask)
    assert gradcheck_command.main([*SMALL, "--seed", "3"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: dense1.w" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--batch-size", "0"],
        ["--hidden", "4,x"],
        ["--dtype", "float16"],
        ["--max-entries", "-1"],
        ["--classes", "0"],
    ],
)
def test_cli_bad_flags_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        gradcheck_command.main([*SMALL, *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m backprop.gradcheck: error:")


@pytest.mark.skipif(gpu_status() is None, reason="a GPU is present")
def test_cli_gpu_missing_is_one_line(capsys):
    assert gradcheck_command.main([*SMALL, "--device", "gpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --device gpu")


def test_module_runs_as_a_program():
    done = subprocess.run(
        [sys.executable, "-m", "backprop.gradcheck", *SMALL],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "all 6 parameters pass" in done.stdout
    assert "Traceback" not in done.stderr
