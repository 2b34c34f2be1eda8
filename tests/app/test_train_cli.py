"""`python -m backprop.train` end to end on a tiny synthetic dataset."""

import json
import subprocess
import sys

import numpy as np
import pytest

from backprop.app import trainer
from backprop.app.commands import train
from backprop.app.runs import load_checkpoint
from backprop.device import _import_cupy, gpu_status


def run_cli(synthetic_dir, out, *extra):
    argv = ["--data-dir", str(synthetic_dir), "--out", str(out), "--quiet"]
    argv += ["--epochs", "3", "--batch-size", "32", "--hidden", "16", "--lr", "0.01"]
    argv += list(extra)
    return train.main(argv)


def test_end_to_end_writes_every_output(synthetic_dir, tmp_path, capsys):
    assert run_cli(synthetic_dir, tmp_path / "run", "--device", "cpu") == 0
    out = tmp_path / "run"
    config = json.loads((out / "config.json").read_text())
    assert config["hidden"] == [16] and config["device"] == "cpu"
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    keys = {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds"}
    assert keys <= set(history[0])
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["test_accuracy"] > 0.5  # the synthetic task is easy
    report = (out / "report.txt").read_text()
    for word in ("precision", "recall", "f1-score", "support", "macro avg"):
        assert word in report
    with np.load(out / "model.npz", allow_pickle=False) as npz:
        assert "param/dense1.w" in npz.files and "optim/m.dense2.b" in npz.files
    ckpt = load_checkpoint(out / "model.npz")
    assert ckpt.params["dense1.w"].shape == (64, 16)
    assert ckpt.optimizer["t"] == 3 * 10  # 300 examples / 32 -> 10 steps an epoch
    assert len(ckpt.history) == 3 and "numpy" in ckpt.versions
    assert "test accuracy" in capsys.readouterr().out
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_progress_and_epoch_lines(synthetic_dir, tmp_path, capsys):
    argv = ["--data-dir", str(synthetic_dir), "--out", str(tmp_path / "r")]
    assert train.main([*argv, "--epochs", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "epoch   1/2 | train loss" in out and "epoch   2/2" in out
    assert "macro avg" in out


def test_same_seed_is_bit_identical(synthetic_dir, tmp_path):
    run_cli(synthetic_dir, tmp_path / "a", "--seed", "3")
    run_cli(synthetic_dir, tmp_path / "b", "--seed", "3")
    run_cli(synthetic_dir, tmp_path / "c", "--seed", "4")
    a, b, c = (load_checkpoint(tmp_path / k / "model.npz") for k in "abc")
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    assert not np.array_equal(a.params["dense1.w"], c.params["dense1.w"])

    def strip(h):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in h]

    assert strip(a.history) == strip(b.history)


def test_resume_is_bit_identical_to_an_uninterrupted_run(synthetic_dir, tmp_path):
    run_cli(synthetic_dir, tmp_path / "full", "--epochs", "5")
    run_cli(synthetic_dir, tmp_path / "part", "--epochs", "2")
    resumed = tmp_path / "part" / "model.npz"
    assert train.main(["--resume", str(resumed), "--epochs", "5", "--quiet"]) == 0
    full = load_checkpoint(tmp_path / "full" / "model.npz")
    part = load_checkpoint(resumed)
    assert [h["epoch"] for h in part.history] == [1, 2, 3, 4, 5]
    for name in full.params:
        np.testing.assert_array_equal(full.params[name], part.params[name])
        np.testing.assert_array_equal(
            full.optimizer[f"v.{name}"], part.optimizer[f"v.{name}"]
        )
    assert full.rng_state == part.rng_state


def test_dry_run_writes_nothing(synthetic_dir, tmp_path, capsys):
    out = tmp_path / "dry"
    assert run_cli(synthetic_dir, out, "--dry-run") == 0
    assert not out.exists()
    assert "dry run" in capsys.readouterr().out


def one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "expected an error message"
    assert "Traceback" not in "\n".join(err)
    return err[-1]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--lr", "0"], "--lr must be a finite number > 0"),
        (["--lr", "nan"], "--lr must be a finite number > 0"),
        (["--hidden", "12,a"], "expected comma-separated widths"),
        (["--hidden", "0"], "widths must be >= 1"),
        (["--dtype", "float16"], "invalid choice: 'float16'"),
        (["--dataset", "cifar"], "invalid choice: 'cifar'"),
        (["--device", "tpu"], "invalid choice: 'tpu'"),
        *(
            (["--lr-decay", v], f"--lr-decay must be in (0, 1], got {float(v)}")
            for v in ("0", "1.5", "nan", "-0.5")
        ),
        *(
            (["--ema", v], f"--ema must be in [0, 1), got {float(v)}")
            for v in ("1", "-0.1", "nan")
        ),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    flags, message, synthetic_dir, tmp_path, capsys
):
    with pytest.raises(SystemExit) as info:
        run_cli(synthetic_dir, tmp_path / "r", *flags)
    assert info.value.code == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "r").exists()


def test_missing_data_dir_is_one_line(tmp_path, capsys):
    assert train.main(["--data-dir", str(tmp_path / "none"), "--quiet"]) == 1
    assert one_line_error(capsys).startswith("error: ")


def test_resume_rejects_foreign_file(tmp_path, capsys):
    foreign = tmp_path / "other.npz"
    np.savez(foreign, x=np.zeros(3))
    assert train.main(["--resume", str(foreign)]) == 1
    assert "not a backprop checkpoint" in one_line_error(capsys)
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    assert train.main(["--resume", str(tmp_path / "junk.npz")]) == 1
    assert "not a readable backprop checkpoint" in one_line_error(capsys)


def test_resume_rejects_a_different_model(synthetic_dir, tmp_path, capsys):
    run_cli(synthetic_dir, tmp_path / "r", "--epochs", "1")
    ckpt = str(tmp_path / "r" / "model.npz")
    assert train.main(["--resume", ckpt, "--hidden", "32", "--epochs", "2"]) == 1
    assert "the run used --hidden 16, not 32" in one_line_error(capsys)
    with pytest.raises(SystemExit):
        train.main(["--resume", ckpt, "--epochs", "1"])
    assert "already holds 1 epochs" in one_line_error(capsys)


@pytest.mark.parametrize("kernels", ["reference", "fused"])
def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(
    synthetic_dir, tmp_path, capsys, monkeypatch, kernels
):
    if kernels == "fused":
        pytest.importorskip("numba", reason="the fused kernels need Numba")
    real_epoch = trainer.train_epoch

    def poisoned(model, opt, x, y, *args, epoch=1, **kwargs):
        if epoch == 2:  # the second epoch starts from broken weights
            model.params["dense1.w"][0, 0] = np.inf
        return real_epoch(model, opt, x, y, *args, epoch=epoch, **kwargs)

    monkeypatch.setattr(trainer, "train_epoch", poisoned)
    assert run_cli(synthetic_dir, tmp_path / "r", "--kernels", kernels) == 1
    message = one_line_error(capsys)
    assert "epoch 2 step 1: loss is nan" in message
    assert "keeps the last good epoch (1)" in message
    ckpt = load_checkpoint(tmp_path / "r" / "model.npz")
    assert len(ckpt.history) == 1
    assert all(np.isfinite(p).all() for p in ckpt.params.values())


def test_ctrl_c_keeps_a_checkpoint_and_exits_130(
    synthetic_dir, tmp_path, capsys, monkeypatch
):
    real_epoch = trainer.train_epoch

    def interrupted(*args, epoch=1, **kwargs):
        if epoch == 3:
            raise KeyboardInterrupt
        return real_epoch(*args, epoch=epoch, **kwargs)

    monkeypatch.setattr(trainer, "train_epoch", interrupted)
    assert run_cli(synthetic_dir, tmp_path / "r", "--epochs", "5") == 130
    assert "--resume" in capsys.readouterr().err
    ckpt = load_checkpoint(tmp_path / "r" / "model.npz")
    assert [h["epoch"] for h in ckpt.history] == [1, 2]


@pytest.mark.skipif(gpu_status() is None, reason="a GPU is present here")
def test_gpu_missing_is_one_line_and_auto_falls_back(synthetic_dir, tmp_path, capsys):
    assert run_cli(synthetic_dir, tmp_path / "g", "--device", "gpu") == 1
    assert "--device gpu is not available" in one_line_error(capsys)
    assert run_cli(synthetic_dir, tmp_path / "a", "--device", "auto") == 0
    assert "device auto" not in capsys.readouterr().out  # --quiet: no notices
    argv = ["--data-dir", str(synthetic_dir), "--out", str(tmp_path / "b")]
    argv += ["--epochs", "1", "--hidden", "8", "--device", "auto"]
    assert train.main(argv) == 0
    said = "device auto: using the CPU" in capsys.readouterr().out
    assert said == (_import_cupy() is not None)  # no CuPy: the CPU is no news


def test_help_shows_defaults():
    result = subprocess.run(
        [sys.executable, "-m", "backprop.train", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "(default: 256)" in result.stdout and "--dry-run" in result.stdout


def test_bad_flag_in_a_real_process_has_no_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "backprop.train", "--epochs", "-1"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "python -m backprop.train: error: --epochs must be >= 1, got -1 "
        "(see python -m backprop.train --help)"
    ]


@pytest.mark.parametrize("argv", [["--epochs", "x"], ["--nope"], ["--dtype", "f16"]])
def test_usage_errors_are_one_line_with_a_hint(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        train.main(argv)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("python -m backprop.train: error: ")
    assert lines[0].endswith("(see python -m backprop.train --help)")


def test_usage_names_the_command_as_it_was_typed(capsys):
    from backprop.app import cli

    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert capsys.readouterr().out.startswith("usage: backprop train [-h]")
    with pytest.raises(SystemExit):
        cli.main(["predict", "--epochs"])
    assert capsys.readouterr().err.startswith("backprop predict: error: ")
    with pytest.raises(SystemExit):
        train.main(["--help"])  # python -m backprop.train
    assert capsys.readouterr().out.startswith("usage: python -m backprop.train [-h]")
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"], prog="python -m backprop")  # __main__.py
    assert capsys.readouterr().out.startswith("usage: python -m backprop train [-h]")


def test_help_shows_each_default_once_as_typed():
    from backprop.app.commands import evaluate, predict

    text = " ".join(train.build_parser().format_help().split())
    assert "(default: 128)" in text and "(128,)" not in text
    assert "(default: None)" not in text and "(default: False)" not in text
    assert text.count("(default: a new folder under runs/") == 1
    start = text.index("--ema EMA score")  # its help, not the usage line
    ema = text[start : text.index("--device", start)]
    assert ema.endswith("0 averages nothing (default: 0, or 0.999 with --model cnn) ")
    assert ema.count("default") == 1  # not a second, contradicting (default: 0.0)
    shown = " ".join(predict.build_parser().format_help().split())
    assert "--show-dir SHOW_DIR where --show writes (default: next to each image) " in (
        shown + " "
    )
    assert "(default: None)" not in shown
    assert "(default: None)" not in evaluate.build_parser().format_help()


def test_resume_draws_the_pictures_again(synthetic_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(synthetic_dir, out, "--epochs", "1", "--plots") == 0
    before = {p.name: p.read_bytes() for p in out.glob("*.png")}
    assert "curves.png" in before and "confusion.png" in before
    capsys.readouterr()
    assert train.main(["--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    note = capsys.readouterr().err
    assert "note: drawing " in note and "curves.png" in note
    after = {p.name: p.read_bytes() for p in out.glob("*.png")}
    assert set(after) == set(before)
    assert after["curves.png"] != before["curves.png"]  # two epochs now
    report = json.loads((out / "report.json").read_text())
    assert (
        report["test_accuracy"]
        == load_checkpoint(out / "model.npz").history[-1]["test_accuracy"]
    )
