"""``--lr-decay``: the learning rate multiplied by a factor after every epoch.

Epoch e trains at ``lr * decay ** (e - 1)``; a decay of 1 (the default for the
paper's MLP) keeps the rate constant. The rate is a function of the epoch
number alone, so a resumed run continues the schedule where it stopped.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hostile import run_hostile, train_argv

from backprop.app import trainer
from backprop.app.commands import train
from backprop.app.config import EngineConfig
from backprop.app.runs import load_checkpoint
from backprop.data import load_pixels


def run_cli(data, out, *extra):
    argv = ["--data-dir", str(data), "--out", str(out), "--quiet", "--hidden", "16"]
    argv += ["--batch-size", "32", "--lr", "0.01", *extra]
    return train.main(argv)


def test_each_epoch_trains_at_lr_times_decay_to_the_epochs_before(synthetic_dir):
    cfg = EngineConfig(
        epochs=1, batch_size=32, lr=0.01, hidden=(16,), data_dir=str(synthetic_dir)
    )
    cfg = dataclasses.replace(cfg, lr_decay=0.5, device="cpu")
    (px, y), test = load_pixels(cfg.dataset, cfg.data_dir)
    run = trainer.build(cfg, px, y, test, np.random.default_rng(0), "cpu", "reference")
    seen = []
    step = run.step

    def watching(batch):  # the rate Adam holds at each step of the epoch
        seen.append(run.opt.lr)
        return step(batch)

    run.step = watching
    for epochs in (1, 2, 3):
        run.cfg = dataclasses.replace(cfg, epochs=epochs)
        trainer.fit(run)
    assert sorted(set(seen), reverse=True) == [0.01, 0.005, 0.0025]
    assert seen == [0.01] * 10 + [0.005] * 10 + [0.0025] * 10  # 300 rows / 32


def test_decay_leaves_the_first_epoch_and_changes_the_rest(synthetic_dir, tmp_path):
    assert run_cli(synthetic_dir, tmp_path / "flat", "--epochs", "2") == 0
    assert (
        run_cli(synthetic_dir, tmp_path / "d", "--epochs", "2", "--lr-decay", "0.5")
        == 0
    )
    flat = load_checkpoint(tmp_path / "flat" / "model.npz")
    decayed = load_checkpoint(tmp_path / "d" / "model.npz")
    assert flat.history[0]["train_loss"] == decayed.history[0]["train_loss"]
    assert flat.history[1]["train_loss"] != decayed.history[1]["train_loss"]
    assert not np.array_equal(flat.params["dense1.w"], decayed.params["dense1.w"])
    assert decayed.config["lr_decay"] == 0.5 and flat.config["lr_decay"] == 1.0


def test_a_resumed_run_continues_the_schedule(synthetic_dir, tmp_path):
    decay = ("--lr-decay", "0.7")
    assert run_cli(synthetic_dir, tmp_path / "full", "--epochs", "4", *decay) == 0
    assert run_cli(synthetic_dir, tmp_path / "part", "--epochs", "2", *decay) == 0
    argv = ["--resume", str(tmp_path / "part"), "--epochs", "4", "--quiet"]
    assert train.main(argv) == 0
    full = load_checkpoint(tmp_path / "full" / "model.npz")
    part = load_checkpoint(tmp_path / "part" / "model.npz")
    for name in full.params:
        np.testing.assert_array_equal(full.params[name], part.params[name])


def test_a_resume_refuses_another_decay(synthetic_dir, tmp_path, capsys):
    assert run_cli(synthetic_dir, tmp_path / "r", "--epochs", "1") == 0
    argv = ["--resume", str(tmp_path / "r"), "--epochs", "2", "--lr-decay", "0.9"]
    assert train.main([*argv, "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("the run used --lr-decay 1.0, not 0.9")


@pytest.mark.parametrize(
    ("extra", "named"),
    [  # epochs that would train at a rate of 0, weights unchanged
        (("--lr-decay", "1e-320", "--epochs", "3"), "decayed by 1e-320 over 3"),
        (("--lr-decay", "0.5", "--epochs", "3000"), "decayed by 0.5 over 3000"),
        (("--lr", "1e-300"), "--lr 1e-300 is below"),
    ],
)
def test_a_rate_too_small_for_the_dtype_is_one_line(
    extra, named, synthetic_dir, tmp_path, capsys
):
    line = run_hostile(
        train.main,
        train_argv(synthetic_dir, tmp_path / "r", *extra),
        capsys,
        tmp_path,
        status=2,
        message=r"below the smallest float32 number \(1\.18e-38\): the weights "
        "would stop moving",
    )
    assert named in line
    assert not (tmp_path / "r").exists()


def test_float64_takes_a_rate_float32_cannot_hold(synthetic_dir, tmp_path):
    argv = train_argv(synthetic_dir, tmp_path / "r", "--lr", "1e-300")
    assert train.main([*argv, "--dtype", "float64"]) == 0


def test_a_resume_whose_epochs_decay_the_rate_to_nothing_is_refused(
    synthetic_dir, tmp_path, capsys
):
    run = tmp_path / "r"
    assert train.main(train_argv(synthetic_dir, run, "--lr-decay", "0.5")) == 0
    run_hostile(
        train.main,
        ["--resume", str(run), "--epochs", "3000", "--quiet"],
        capsys,
        tmp_path,
        status=2,
        message="decayed by 0.5 over 3000 epochs comes to 0, which is below",
    )
