"""The fused training step against the reference step it replaces.

``backprop.kernels.step.FusedStep`` must do what ``training.reference_step``
does (``model.loss_and_grads`` then ``Adam.step``): the same loss, correct
count, gradients and updated weights, up to the few ulps by which the fused
softmax's exp/log and the bias-gradient sums differ (the kernels' own tests in
test_kernels.py pin those).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba", reason="the fused kernels need Numba")

from backprop.app.commands import train  # noqa: E402
from backprop.data import load_pixels, to_inputs  # noqa: E402
from backprop.errors import ConfigError  # noqa: E402
from backprop.kernels import kernels_for, make_step  # noqa: E402
from backprop.kernels.step import FusedStep, SparseBatch  # noqa: E402
from backprop.loop import ReferenceStep, train_epoch  # noqa: E402
from backprop.model import MLP  # noqa: E402
from backprop.optim import Adam  # noqa: E402

CPU = kernels_for(np)


def dataset(n=300, d=20, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (n, d)).astype(np.uint8)  # (N, D)
    pixels[:, :3] = 0  # dead pixels, as MNIST has
    labels = rng.integers(0, classes, n).astype(np.int64)  # (N,)
    return pixels, labels


def twins(sizes, dtype, mode="keras", seed=0):
    model = MLP(sizes, seed=seed, dtype=dtype)
    other = MLP.from_params(model.params)
    return (model, Adam(mode=mode)), (other, Adam(mode=mode))


def max_rel(a, b):
    scale = np.maximum(np.abs(a), np.abs(b)).max()
    return float(np.abs(a - b).max() / scale) if scale else 0.0


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("mode", ["keras", "algorithm1"])
@pytest.mark.parametrize("sizes", [[20, 16, 10], [20, 12, 8, 10]])
@pytest.mark.parametrize("rows", [1, 7, 64])
def test_one_step_matches_the_reference(dtype, tol, mode, sizes, rows):
    pixels, labels = dataset()
    (ref_model, ref_opt), (fused_model, fused_opt) = twins(sizes, dtype, mode)
    ref = ReferenceStep(ref_model, ref_opt, pixels, labels)
    fused = FusedStep(fused_model, fused_opt, pixels, labels, 64, CPU)
    batch = np.random.default_rng(1).permutation(len(pixels))[:rows]
    for _ in range(3):  # three steps on the same batch: Adam's state counts too
        ref_loss, ref_correct, _ = ref(batch)
        fused_loss, fused_correct, _ = fused(batch)
        assert fused_loss == pytest.approx(float(ref_loss), rel=tol)
        assert fused_correct == int(ref_correct)
    for name in ref_model.params:
        assert max_rel(fused_model.params[name], ref_model.params[name]) <= tol, name
        assert max_rel(fused_opt.m[name], ref_opt.m[name]) <= tol, name
    assert fused_opt.t == ref_opt.t == 3


def test_gradients_match_loss_and_grads():
    pixels, labels = dataset()
    (ref_model, _), (fused_model, fused_opt) = twins([20, 16, 10], "float64")
    fused = FusedStep(fused_model, fused_opt, pixels, labels, 32, CPU)
    batch = np.arange(32)
    _, grads = ref_model.loss_and_grads(
        to_inputs(pixels[batch], "float64"), labels[batch]
    )
    fused(batch)  # the gradients it used are kept in its buffers
    for name, g in grads.items():
        assert max_rel(fused.grads[name], g) <= 1e-13, name


def test_one_float64_epoch_ends_within_1e_9_of_the_reference():
    # 784-128-10 on MNIST: the fused step takes the sparse first layer
    (px, y), _ = load_pixels("mnist")
    px, y = px[:6000], y[:6000]
    results = []
    for kernels in ("reference", "fused"):
        rng = np.random.default_rng(0)
        model = MLP([784, 128, 10], rng=rng, dtype="float64")
        opt = Adam()
        step = make_step(kernels, model, opt, px, y, 256)
        results.append((train_epoch(model, opt, px, y, 256, rng, step=step), model))
    (ref_summary, ref_model), (fused_summary, fused_model) = results
    assert fused_summary == pytest.approx(ref_summary, rel=1e-9)
    for name in ref_model.params:
        assert max_rel(fused_model.params[name], ref_model.params[name]) <= 1e-9, name


def test_a_replaced_parameter_is_refused():
    pixels, labels = dataset()
    model = MLP([20, 16, 10])
    model.params["dense1.w"] = model.params["dense1.w"].copy()
    with pytest.raises(ConfigError, match="replaced"):
        FusedStep(model, Adam(), pixels, labels, 32, CPU)


def test_float_images_are_refused():
    pixels, labels = dataset()
    with pytest.raises(ConfigError, match="uint8"):
        FusedStep(MLP([20, 16, 10]), Adam(), to_inputs(pixels), labels, 32, CPU)


def run_train(synthetic_dir, out, *flags):
    argv = ["--data-dir", str(synthetic_dir), "--hidden", "16", "--batch-size", "64"]
    return train.main([*argv, "--out", str(out), "--quiet", *flags])


@pytest.mark.parametrize("kernels", ["fused", "reference"])
def test_training_is_deterministic_and_resumes_exactly(
    synthetic_dir, tmp_path, kernels
):
    flags = ["--kernels", kernels, "--device", "cpu"]
    assert run_train(synthetic_dir, tmp_path / "a", "--epochs", "3", *flags) == 0
    assert run_train(synthetic_dir, tmp_path / "b", "--epochs", "3", *flags) == 0
    assert run_train(synthetic_dir, tmp_path / "c", "--epochs", "1", *flags) == 0
    resume = ["--resume", str(tmp_path / "c" / "model.npz"), "--epochs", "3"]
    assert run_train(synthetic_dir, tmp_path / "c", *resume, *flags) == 0
    weights = [np.load(tmp_path / r / "model.npz") for r in "abc"]
    for name in weights[0].files:
        if name.startswith(("param/", "optim/")):
            np.testing.assert_array_equal(weights[0][name], weights[1][name])
            np.testing.assert_array_equal(weights[0][name], weights[2][name])
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["kernels"] == kernels


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory):
    """1,000 MNIST training and 200 test digits: sparse, as MNIST is."""
    from conftest import write_mnist_subset

    return write_mnist_subset(tmp_path_factory.mktemp("small-mnist"), 1000, 200)


def test_the_sparse_step_is_deterministic_and_resumes_exactly(small_mnist, tmp_path):
    def run(out, *flags):
        argv = ["--data-dir", str(small_mnist), "--batch-size", "100", "--quiet"]
        return train.main([*argv, "--out", str(out), "--kernels", "fused", *flags])

    assert run(tmp_path / "a", "--epochs", "2") == 0
    assert run(tmp_path / "b", "--epochs", "2") == 0
    assert run(tmp_path / "c", "--epochs", "1") == 0
    resume = ["--resume", str(tmp_path / "c" / "model.npz"), "--epochs", "2"]
    assert run(tmp_path / "c", *resume) == 0
    weights = [np.load(tmp_path / r / "model.npz") for r in "abc"]
    for name in weights[0].files:
        if name.startswith(("param/", "optim/")):
            np.testing.assert_array_equal(weights[0][name], weights[1][name])
            np.testing.assert_array_equal(weights[0][name], weights[2][name])
    (pixels, y), _ = load_pixels("mnist")
    model = MLP([784, 128, 10])  # the default width: the sparse path runs
    step = FusedStep(model, Adam(), pixels[:1000], y[:1000], 100, CPU)
    assert isinstance(step.gather(np.arange(100))[0], SparseBatch)


def test_fused_and_reference_runs_agree(synthetic_dir, tmp_path):
    common = ["--epochs", "2", "--device", "cpu", "--dtype", "float64"]
    assert run_train(synthetic_dir, tmp_path / "f", *common, "--kernels", "fused") == 0
    assert (
        run_train(synthetic_dir, tmp_path / "r", *common, "--kernels", "reference") == 0
    )
    fused = json.loads((tmp_path / "f" / "history.json").read_text())
    ref = json.loads((tmp_path / "r" / "history.json").read_text())
    for a, b in zip(fused, ref):
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-9), key


def test_without_numba_auto_says_so_in_one_line_and_trains(synthetic_dir, tmp_path):
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "from backprop.app.commands import train\n"
        f"sys.exit(train.main(['--data-dir', {str(synthetic_dir)!r}, '--epochs', '1', "
        f"'--hidden', '8', '--device', 'cpu', '--out', {str(tmp_path / 'r')!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("kernels")]
    assert lines == ["kernels auto: using the reference path (Numba is not installed)"]
    assert json.loads((tmp_path / "r" / "config.json").read_text())["kernels"] == (
        "reference"
    )
    refused = subprocess.run(
        [
            sys.executable,
            "-c",
            code.replace("'--epochs'", "'--kernels', 'fused', '--epochs'"),
        ],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert "--kernels fused needs Numba" in refused.stderr
    assert "Traceback" not in refused.stderr
