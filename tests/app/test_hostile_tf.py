"""The TensorFlow commands against the same hostile folders and files."""

from __future__ import annotations

import json

import pytest
from hostile import run_hostile, train_argv

tf = pytest.importorskip(
    "tensorflow", reason="TensorFlow is not installed (the tf extra)"
)
pytest.importorskip("tf_reference", reason="tf_reference is not importable")

from backprop.app.commands import train  # noqa: E402
from backprop.app.runs import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from backprop.model import MLP  # noqa: E402
from tf_reference import convert  # noqa: E402
from tf_reference import tape_training as tf_train  # noqa: E402

pytestmark = pytest.mark.tf


def tf_argv(data_dir, out, *extra):
    return ["--data-dir", str(data_dir), "--out", str(out), "--hidden", "4"] + [
        *("--epochs", "1", "--quiet", "--batch-size", "64", *extra)
    ]


def test_tf_train_keeps_other_runs_and_records_its_data(
    synthetic_dir, tmp_path, capsys
):
    assert train.main(train_argv(synthetic_dir, tmp_path / "run")) == 0
    capsys.readouterr()
    for out, message in (
        (tmp_path / "run", "already holds model.npz, config.json"),
        ("", "--out: expected a folder, got an empty string"),
    ):
        run_hostile(
            tf_train.main,
            tf_argv(synthetic_dir, out),
            capsys,
            tmp_path,
            status=2 if out == "" else 1,
            message=message,
        )
    assert tf_train.main(tf_argv(synthetic_dir, tmp_path / "tf")) == 0
    config = json.loads((tmp_path / "tf" / "config.json").read_text())
    ckpt = load_checkpoint(tmp_path / "tf" / "model.npz")
    assert config["data"] == ckpt.config["data"]
    assert config["data"]["folder"] == str(synthetic_dir)


def test_convert_does_not_replace_files(tmp_path, capsys):
    save_checkpoint(tmp_path / "a.npz", Checkpoint(MLP([6, 5, 3]).params))
    keras_file = tmp_path / "m.keras"
    assert convert.main(["export", str(tmp_path / "a.npz"), str(keras_file)]) == 0
    run_hostile(
        convert.main,
        ["export", str(tmp_path / "a.npz"), str(keras_file)],
        capsys,
        tmp_path,
        status=1,
        message=r"m\.keras: exists; pass --overwrite to replace it",
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    run_hostile(
        convert.main,
        ["import", str(keras_file), str(tmp_path / "a.npz")],
        capsys,
        tmp_path,
        status=1,
        message=r"a\.npz: exists; pass --overwrite",
    )
    argv = ["import", str(keras_file), str(tmp_path / "a.npz"), "--overwrite"]
    assert convert.main(argv) == 0


def test_convert_export_takes_a_run_folder(synthetic_dir, tmp_path, capsys):
    assert train.main(train_argv(synthetic_dir, tmp_path / "run")) == 0
    keras_file = tmp_path / "run.keras"
    assert convert.main(["export", str(tmp_path / "run"), str(keras_file)]) == 0
    assert "wrote " in capsys.readouterr().out and keras_file.is_file()
    run_hostile(
        convert.main,
        ["export", str(tmp_path / "nothing"), str(tmp_path / "x.keras")],
        capsys,
        tmp_path,
        status=1,
        message=r"nothing: no such file or folder",
    )


def test_tf_train_keeps_only_finite_epochs(
    synthetic_dir, tmp_path, capsys, monkeypatch
):
    real = tf_train.train_epoch

    def epoch(model, *args, epoch=1, **kwargs):
        result = real(model, *args, epoch=epoch, **kwargs)
        if epoch == 2:
            model.layers[0].w.assign(model.layers[0].w * float("inf"))
        return result

    monkeypatch.setattr(tf_train, "train_epoch", epoch)
    out = tmp_path / "tf"
    run_hostile(
        tf_train.main,
        tf_argv(synthetic_dir, out, "--epochs", "3"),
        capsys,
        tmp_path,
        status=1,
        message=r"epoch 2: NaN or infinite values in dense1.w; training stopped; "
        r".*tf/model\.npz keeps the last good epoch \(1\)",
        new_files=True,
    )
    assert len(load_checkpoint(out / "model.npz").history) == 1
