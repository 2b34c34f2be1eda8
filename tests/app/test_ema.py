"""``--ema``: a run that scores, saves and predicts with its weights' moving average.

The checkpoint's weights are the average (so ``evaluate``, ``predict``,
``export`` and the explorer read it unchanged); Adam's state keeps the
weights it steps as ``w.<name>``, so ``--resume`` continues bit for bit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from backprop.app.commands import evaluate, train
from backprop.app.runs import load_checkpoint, load_model, save_checkpoint
from backprop.data import load_pixels, to_inputs
from backprop.loop import loss_and_accuracy
from backprop.model import MLP


def run_cli(data, out, *extra):
    argv = ["--data-dir", str(data), "--out", str(out), "--quiet", "--hidden", "16"]
    argv += ["--batch-size", "32", "--lr", "0.01", "--epochs", "3", *extra]
    return train.main(argv)


@pytest.fixture
def runs(synthetic_dir, tmp_path):
    """The same run without and with ``--ema 0.9``."""
    assert run_cli(synthetic_dir, tmp_path / "plain") == 0
    assert run_cli(synthetic_dir, tmp_path / "ema", "--ema", "0.9") == 0
    return tmp_path / "plain", tmp_path / "ema"


def test_the_average_leaves_training_alone(runs):
    plain = load_checkpoint(runs[0] / "model.npz")
    ema = load_checkpoint(runs[1] / "model.npz")
    assert not any(key.startswith("w.") for key in plain.optimizer)
    for name in plain.params:  # Adam stepped the same weights, bit for bit
        np.testing.assert_array_equal(ema.optimizer[f"w.{name}"], plain.params[name])
        np.testing.assert_array_equal(
            ema.optimizer[f"m.{name}"], plain.optimizer[f"m.{name}"]
        )
        assert not np.array_equal(ema.params[name], plain.params[name])
    keys = ("train_loss", "train_accuracy")  # measured on the stepped weights
    assert [[r[k] for k in keys] for r in ema.history] == [
        [r[k] for k in keys] for r in plain.history
    ]
    assert ema.config["ema"] == 0.9 and plain.config["ema"] == 0.0


def test_the_run_scores_and_predicts_with_the_average(runs, synthetic_dir, capsys):
    model, ckpt, _ = load_model(runs[1])
    _, (px, y) = load_pixels("mnist", str(synthetic_dir))
    x = to_inputs(px, model.dtype)
    accuracy = float((model.predict(x) == y).mean())
    assert accuracy == ckpt.history[-1]["test_accuracy"]
    loss, _ = loss_and_accuracy(model, x, y)
    assert loss == ckpt.history[-1]["test_loss"]  # scored with the average...
    stepped = MLP.from_params(
        {k[2:]: v for k, v in ckpt.optimizer.items() if k[0] == "w"}
    )
    assert loss_and_accuracy(stepped, x, y)[0] != loss  # ...not the stepped weights
    report = (runs[1] / "report.txt").read_text()
    capsys.readouterr()
    assert evaluate.main([str(runs[1]), "--quiet"]) == 0  # rewrites the same report
    assert (runs[1] / "report.txt").read_text() == report
    saved = json.loads((runs[1] / "history.json").read_text())
    assert saved[-1]["test_accuracy"] == accuracy


def test_a_resumed_ema_run_equals_a_straight_one(synthetic_dir, tmp_path):
    assert run_cli(synthetic_dir, tmp_path / "full", "--ema", "0.9") == 0
    part = tmp_path / "part"
    assert run_cli(synthetic_dir, part, "--ema", "0.9", "--epochs", "1") == 0
    assert train.main(["--resume", str(part), "--epochs", "3", "--quiet"]) == 0
    a = load_checkpoint(tmp_path / "full" / "model.npz")
    b = load_checkpoint(part / "model.npz")
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    for key in a.optimizer:
        np.testing.assert_array_equal(a.optimizer[key], b.optimizer[key])
    assert [r["test_loss"] for r in a.history] == [r["test_loss"] for r in b.history]


def test_a_checkpoint_with_half_the_stepped_weights_is_refused(runs, capsys):
    ckpt = load_checkpoint(runs[1] / "model.npz")
    del ckpt.optimizer["w.dense1.b"]
    save_checkpoint(runs[1] / "model.npz", ckpt)
    argv = ["--resume", str(runs[1]), "--epochs", "4", "--quiet"]
    assert train.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("optimizer fields missing: w.dense1.b")
