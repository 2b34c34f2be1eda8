"""Every command on ``--device gpu``, run on the CuPy stand-in, equals the CPU.

The stand-in (``tests/fakegpu``) computes with NumPy, so in float64 a "GPU"
run must match the CPU's bit for bit: any difference is a bug in how the code
moves data, and anything CuPy refuses (a NumPy array in an operation, an
implicit conversion) fails the run. The GPU has no fused kernels yet, so
``--kernels auto`` there is the reference step, and the CPU runs compared
with it take ``--kernels reference``. ``predict`` and the explorer have no
``--device``: they run, with the stand-in active, on a model trained on it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from fakegpu_runs import (
    assert_same_arrays,
    checkpoint_arrays,
    history,
    run_main,
    standin,
    write_small_mnist,
    write_synthetic,
)

from backprop.app.commands import crossval, evaluate, gradcheck, predict, train
from backprop.data import load_pixels

pytestmark = pytest.mark.gpu
SMALL = ["--hidden", "16", "--dtype", "float64", "--quiet"]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory) -> Path:
    return write_small_mnist(tmp_path_factory.mktemp("small-mnist"))


def train_twice(data: Path, out: Path, *flags: str, gpu_kernels: str = "auto"):
    """The same run on the stand-in's GPU and on the CPU; returns both folders."""
    argv = ["--data-dir", str(data), *SMALL, "--batch-size", "50", *flags]
    with standin():
        run_main(
            train.main,
            [
                *argv,
                "--out",
                str(out / "gpu"),
                "--device",
                "gpu",
                "--kernels",
                gpu_kernels,
            ],
        )
    run_main(
        train.main,
        [*argv, "--out", str(out / "cpu"), "--device", "cpu", "--kernels", "reference"],
    )
    return out / "gpu", out / "cpu"


def assert_same_run(gpu: Path, cpu: Path) -> None:
    assert json.loads((gpu / "config.json").read_text())["device"] == "gpu"
    assert history(gpu) == history(cpu)  # losses, accuracies, diagnostics
    assert "diagnostics" in history(gpu)[-1]
    assert_same_arrays(
        checkpoint_arrays(gpu / "model.npz"), checkpoint_arrays(cpu / "model.npz")
    )
    assert (gpu / "report.txt").read_text() == (cpu / "report.txt").read_text()


@pytest.fixture(scope="module")
def trained(small_mnist, tmp_path_factory) -> tuple[Path, Path]:
    """Two epochs on small MNIST: (the stand-in's run, the CPU's run)."""
    out = tmp_path_factory.mktemp("trained")
    return train_twice(small_mnist, out, "--epochs", "2")


@pytest.mark.parametrize("kernels", ["auto", "reference"])
def test_train_equals_the_cpu(synthetic, tmp_path, kernels):
    gpu, cpu = train_twice(synthetic, tmp_path, "--epochs", "2", gpu_kernels=kernels)
    assert_same_run(gpu, cpu)
    assert json.loads((gpu / "config.json").read_text())["kernels"] == "reference"


def test_fused_kernels_on_the_gpu_are_refused_in_one_line(synthetic, tmp_path, capsys):
    argv = ["--data-dir", str(synthetic), "--out", str(tmp_path / "r"), "--quiet"]
    with standin(), pytest.raises(SystemExit) as exit_:  # argparse's usage error
        train.main([*argv, "--device", "gpu", "--kernels", "fused"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "error: no fused GPU kernels yet; use --kernels reference" in err
    assert "Traceback" not in err and not (tmp_path / "r").exists()


def test_train_on_mnist_equals_the_cpu(trained):
    assert_same_run(*trained)


def test_cnn_train_equals_the_cpu(small_mnist, tmp_path):
    """``--model cnn`` on the stand-in's GPU: the same run as on the CPU."""
    flags = ["--epochs", "1", "--model", "cnn"]
    gpu, cpu = train_twice(small_mnist, tmp_path, *flags)
    assert_same_run(gpu, cpu)
    assert json.loads((gpu / "config.json").read_text())["model"] == "cnn"


def test_ema_train_equals_the_cpu(small_mnist, tmp_path):
    """``--ema``: the average moves on the device as on the CPU."""
    gpu, cpu = train_twice(small_mnist, tmp_path, "--epochs", "2", "--ema", "0.9")
    assert_same_run(gpu, cpu)
    assert "optim/w.dense1.w" in checkpoint_arrays(gpu / "model.npz")


def test_augmented_train_equals_the_cpu(small_mnist, tmp_path):
    gpu, cpu = train_twice(small_mnist, tmp_path, "--epochs", "2", "--augment")
    assert_same_run(gpu, cpu)


def test_resume_equals_a_straight_run(synthetic, tmp_path):
    gpu, _ = train_twice(synthetic, tmp_path, "--epochs", "1")
    resume = ["--resume", str(gpu / "model.npz"), "--epochs", "3", "--quiet"]
    cross = tmp_path / "on-cpu"  # the GPU's checkpoint, resumed on the CPU
    run_main(
        train.main,
        [*resume, "--out", str(cross), "--device", "cpu", "--kernels", "reference"],
    )
    with standin():
        run_main(train.main, resume)
    straight = tmp_path / "straight"
    argv = ["--data-dir", str(synthetic), *SMALL, "--batch-size", "50", "--epochs", "3"]
    run_main(
        train.main,
        [*argv, "--out", str(straight), "--device", "cpu", "--kernels", "reference"],
    )
    for run in (gpu, cross):
        assert history(run) == history(straight)
        assert_same_arrays(
            checkpoint_arrays(run / "model.npz"),
            checkpoint_arrays(straight / "model.npz"),
        )


def test_dry_run_says_gpu_and_matches(synthetic):
    argv = [
        "--data-dir",
        str(synthetic),
        "--hidden",
        "16",
        "--dtype",
        "float64",
        "--dry-run",
    ]
    with standin():
        out, _ = run_main(train.main, [*argv, "--device", "gpu"])
    cpu, _ = run_main(train.main, [*argv, "--device", "cpu", "--kernels", "reference"])
    assert "dry run on gpu (reference kernels)" in out
    assert re.findall(r"loss \d\.\d+", out) == re.findall(r"loss \d\.\d+", cpu)


def test_evaluate_on_gpu_equals_the_cpu(trained, tmp_path):
    model = str(trained[0] / "model.npz")
    with standin():
        run_main(
            evaluate.main,
            [model, "--out", str(tmp_path / "gpu"), "--device", "gpu", "--quiet"],
        )
    run_main(
        evaluate.main,
        [model, "--out", str(tmp_path / "cpu"), "--device", "cpu", "--quiet"],
    )
    report = {
        d: json.loads((tmp_path / d / "report.json").read_text())
        for d in ("gpu", "cpu")
    }
    assert report["gpu"] == report["cpu"]
    assert (tmp_path / "gpu" / "confusion.png").exists()


def test_crossval_on_gpu_equals_the_cpu(synthetic, tmp_path):
    argv = ["--data-dir", str(synthetic), *SMALL, "--folds", "2", "--epochs", "2"]
    with standin():
        run_main(
            crossval.main, [*argv, "--out", str(tmp_path / "gpu"), "--device", "gpu"]
        )
    run_main(
        crossval.main,
        [
            *argv,
            "--out",
            str(tmp_path / "cpu"),
            "--device",
            "cpu",
            "--kernels",
            "reference",
        ],
    )

    def numbers(folder: str) -> dict:
        result = json.loads((tmp_path / folder / "crossval.json").read_text())
        del result["config"], result["seconds"]  # the device and kernels differ
        for record in [*result["fold_results"], result["final"]]:
            record.pop("seconds", None)
        return result

    assert numbers("gpu") == numbers("cpu")


def test_gradcheck_on_gpu_equals_the_cpu():
    argv = ["--inputs", "12", "--hidden", "5,4", "--classes", "3", "--batch-size", "4"]
    argv += ["--dtype", "float64"]
    with standin():
        gpu, _ = run_main(gradcheck.main, [*argv, "--device", "gpu"])
    cpu, _ = run_main(gradcheck.main, [*argv, "--device", "cpu"])
    assert "float64, gpu)" in gpu and "all 6 parameters pass" in gpu
    assert gpu.replace(", gpu)", ", cpu)") == cpu


def digit_files(folder: Path) -> list[str]:
    """Two MNIST test digits, and a page with both side by side, as PNG files."""
    from PIL import Image

    _, (xt, _) = load_pixels("mnist", None, {})
    ink = [xt[i].reshape(28, 28) for i in (3, 2)]  # (28, 28) each
    paths = []
    for i, digit in enumerate(ink):
        paths.append(folder / f"digit{i}.png")
        Image.fromarray(255 - np.kron(digit, np.ones((3, 3), np.uint8))).save(paths[-1])
    page = np.full((140, 260), 255, np.uint8)  # (H, W)
    page[28:112, 30:114] = 255 - np.kron(ink[0], np.ones((3, 3), np.uint8))
    page[28:112, 150:234] = 255 - np.kron(ink[1], np.ones((3, 3), np.uint8))
    paths.append(folder / "page.png")
    Image.fromarray(page).save(paths[-1])
    return [str(p) for p in paths]


def test_predict_on_a_gpu_trained_model(trained, tmp_path):
    pytest.importorskip("PIL", reason="predict reads images with Pillow")
    *digits, page = digit_files(tmp_path)
    answers = {}
    for name, run in zip(("gpu", "cpu"), trained):
        model = str(run / "model.npz")
        with standin():
            single, _ = run_main(predict.main, [model, *digits, "--json"])
            multi, _ = run_main(predict.main, [model, page, "--multi", "--json"])
        answers[name] = (single, multi)
    assert answers["gpu"] == answers["cpu"]
    single, multi = answers["gpu"]
    assert len(single.splitlines()) == 2 and json.loads(multi.splitlines()[0])


def test_explorer_session_and_api_on_a_gpu_trained_model(trained):
    pytest.importorskip("starlette", reason="the explorer extra is not installed")
    pytest.importorskip("httpx", reason="starlette's TestClient needs httpx")
    from explorer_client import explorer_client

    from backprop.app.explorer.session import Session

    pixels = (np.arange(784) % 7 / 6).tolist()
    answers = {}
    for name, run in zip(("gpu", "cpu"), trained):
        with standin():
            client = explorer_client(Session.from_run(run), names=("127.0.0.1",))
            answers[name] = [
                client.post("/api/predict", json={"pixels": pixels}).json(),
                client.post(
                    "/api/backward", json={"pixels": pixels, "label": 3}
                ).json(),
                client.post("/api/step", json={"pixels": pixels, "label": 3}).json(),
                client.get("/api/history").json(),
            ]
    assert all("error" not in a for a in answers["gpu"][:3])
    gpu_history, cpu_history = answers["gpu"].pop(), answers["cpu"].pop()
    assert answers["gpu"] == answers["cpu"]
    assert len(gpu_history["history"]) == len(cpu_history["history"]) == 2


@pytest.mark.tf
def test_tf_reference_takes_device_arrays(trained):
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed")
    from backprop.app.runs import load_checkpoint
    from tf_reference.convert import keras_model, module_to_params, params_to_module

    params = load_checkpoint(trained[0] / "model.npz").params
    with standin() as cupy:
        on_device = {k: cupy.asarray(v) for k, v in params.items()}
        from_device = module_to_params(params_to_module(on_device))
        keras_weights = keras_model(on_device).get_weights()
    assert_same_arrays(from_device, module_to_params(params_to_module(params)))
    for got, want in zip(keras_weights, keras_model(params).get_weights()):
        np.testing.assert_array_equal(got, want)
