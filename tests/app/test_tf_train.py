"""``python -m tf_reference.train`` beside ``python -m backprop.train``.

On the tiny synthetic dataset, so each run takes a second or two.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

tf = pytest.importorskip(
    "tensorflow", reason="TensorFlow is not installed (the tf extra)"
)
pytest.importorskip("tf_reference", reason="tf_reference is not importable")

from backprop.app.commands import train as engine_train  # noqa: E402
from backprop.app.runs import load_checkpoint  # noqa: E402
from backprop.data import load_pixels  # noqa: E402
from backprop.loop import train_epoch  # noqa: E402
from backprop.model import MLP  # noqa: E402
from backprop.optim import Adam  # noqa: E402
from tf_reference import tape_training as tf_train  # noqa: E402

pytestmark = pytest.mark.tf

EPOCH_LINE = re.compile(
    r"^epoch +\d+/\d+ \| train loss \d+\.\d{4} acc \d\.\d{4} \| "
    r"test loss \d+\.\d{4} acc \d\.\d{4} \| \d+\.\d{2} s$"
)


def common(data_dir, out, *extra):
    return ["--data-dir", str(data_dir), "--hidden", "16", "--out", str(out), *extra]


def history(out):
    return json.loads((out / "history.json").read_text())


def assert_histories_close(a, b, tol):
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        # the same records, but for the engine's own backprop.diagnostics
        assert set(ra) - {"diagnostics"} == set(rb) - {"diagnostics"}
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            assert ra[key] == pytest.approx(rb[key], abs=tol), key


@pytest.fixture
def float64_runs(synthetic_dir, tmp_path, capsys):
    """Two float64 epochs of each implementation, seed 3, and their stdout."""
    flags = ["--epochs", "2", "--dtype", "float64", "--seed", "3", "--batch-size", "64"]
    assert tf_train.main(common(synthetic_dir, tmp_path / "tf", *flags)) == 0
    tf_out = capsys.readouterr().out
    assert (
        engine_train.main(
            common(synthetic_dir, tmp_path / "engine", *flags, "--device", "cpu")
        )
        == 0
    )
    engine_out = capsys.readouterr().out
    return tmp_path, tf_out, engine_out


def test_same_seed_same_numbers_and_the_same_lines(float64_runs):
    tmp_path, tf_out, engine_out = float64_runs
    assert_histories_close(history(tmp_path / "tf"), history(tmp_path / "engine"), 1e-9)
    tf_lines = [line for line in tf_out.splitlines() if line.startswith("epoch")]
    engine_lines = [
        line for line in engine_out.splitlines() if line.startswith("epoch")
    ]
    assert len(tf_lines) == len(engine_lines) == 2
    for tf_line, engine_line in zip(tf_lines, engine_lines):
        assert EPOCH_LINE.match(tf_line) and EPOCH_LINE.match(engine_line)
        # identical up to the seconds
        assert tf_line.rsplit("|", 1)[0] == engine_line.rsplit("|", 1)[0]
    for name in ("config.json", "history.json", "report.txt", "model.npz"):
        assert (tmp_path / "tf" / name).is_file()


def test_the_engine_continues_a_tensorflow_run(float64_runs, synthetic_dir):
    """TF trains epochs 1-2, the engine resumes for epoch 3: as 3 engine epochs."""
    tmp_path, _, _ = float64_runs
    ckpt = load_checkpoint(tmp_path / "tf" / "model.npz")
    assert ckpt.optimizer["t"] == 2 * 5  # 300 examples in batches of 64
    assert (
        engine_train.main(
            ["--resume", str(tmp_path / "tf" / "model.npz"), "--epochs", "3", "--quiet"]
        )
        == 0
    )
    flags = ["--epochs", "3", "--dtype", "float64", "--seed", "3", "--batch-size", "64"]
    assert (
        engine_train.main(
            common(synthetic_dir, tmp_path / "e3", *flags, "--device", "cpu", "--quiet")
        )
        == 0
    )
    assert_histories_close(history(tmp_path / "tf"), history(tmp_path / "e3"), 1e-9)
    mixed = load_checkpoint(tmp_path / "tf" / "model.npz").params
    engine = load_checkpoint(tmp_path / "e3" / "model.npz").params
    for name in engine:
        np.testing.assert_allclose(mixed[name], engine[name], rtol=0, atol=1e-10)


def test_tensorflow_starts_from_engine_weights(float64_runs, synthetic_dir, tmp_path):
    """--weights: TensorFlow picks up an engine checkpoint (with a fresh Adam)."""
    runs, _, _ = float64_runs
    start = load_checkpoint(runs / "engine" / "model.npz").params
    flags = ["--epochs", "1", "--dtype", "float64", "--seed", "5", "--batch-size", "64"]
    assert (
        tf_train.main(
            common(
                synthetic_dir,
                tmp_path / "w",
                *flags,
                "--quiet",
                "--weights",
                str(runs / "engine" / "model.npz"),
            )
        )
        == 0
    )
    # the same epoch by the engine: seed 5's order, the checkpoint's weights
    (pixels, y), _ = load_pixels(data_dir=synthetic_dir)
    rng = np.random.default_rng(5)
    MLP([64, 16, 10], rng=rng, dtype="float64")  # the draws of the init come first
    model = MLP.from_params(start)
    train_epoch(model, Adam(), pixels, y, 64, rng)
    trained = load_checkpoint(tmp_path / "w" / "model.npz").params
    for name in start:
        np.testing.assert_allclose(
            trained[name], model.params[name], rtol=0, atol=1e-10
        )
        assert not np.array_equal(trained[name], start[name])


def test_tf_function_and_tf_init(synthetic_dir, tmp_path):
    flags = ["--epochs", "1", "--dtype", "float64", "--quiet", "--batch-size", "64"]
    assert tf_train.main(common(synthetic_dir, tmp_path / "eager", *flags)) == 0
    assert (
        tf_train.main(common(synthetic_dir, tmp_path / "fn", *flags, "--tf-function"))
        == 0
    )
    # no prediction saturates here, so the compiled step gives the eager numbers
    assert_histories_close(history(tmp_path / "eager"), history(tmp_path / "fn"), 1e-9)
    config = json.loads((tmp_path / "fn" / "config.json").read_text())
    assert config["tf_function"] is True and config["init"] == "engine"
    for k in (1, 2):
        assert (
            tf_train.main(
                common(synthetic_dir, tmp_path / f"tf{k}", *flags, "--init", "tf")
            )
            == 0
        )
    tf1 = load_checkpoint(tmp_path / "tf1" / "model.npz").params
    tf2 = load_checkpoint(tmp_path / "tf2" / "model.npz").params
    eager = load_checkpoint(tmp_path / "eager" / "model.npz").params
    np.testing.assert_array_equal(tf1["dense1.w"], tf2["dense1.w"])  # seeded
    assert not np.allclose(tf1["dense1.w"], eager["dense1.w"], atol=1e-2)


def test_bad_flags_and_files(synthetic_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        tf_train.main(common(synthetic_dir, tmp_path / "a", "--epochs", "0"))
    assert info.value.code == 2
    assert "--epochs must be >= 1" in capsys.readouterr().err
    code = tf_train.main(
        common(synthetic_dir, tmp_path / "b", "--weights", str(tmp_path / "none.npz"))
    )
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1
    # an engine checkpoint of another width
    assert (
        engine_train.main(
            [
                "--data-dir",
                str(synthetic_dir),
                "--hidden",
                "8",
                "--epochs",
                "1",
                "--quiet",
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "h8"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    code = tf_train.main(
        common(
            synthetic_dir,
            tmp_path / "c",
            "--weights",
            str(tmp_path / "h8" / "model.npz"),
        )
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "dense1.w" in err
    assert "(64, 8)" in err and "(64, 16)" in err
