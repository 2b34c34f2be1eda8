"""Ctrl-C and SIGTERM anywhere: status 130 and a line that says what is on disk.

Real signals are sent from inside a subprocess (a patched function kills its
own process at the moment under test), so the handler of ``run_command`` is
what turns them into the message.
"""

from __future__ import annotations

import json

import pytest
from hostile import run_hostile, train_argv

from backprop.app.commands import crossval, evaluate, train
from backprop.app.runs import load_checkpoint

DRIVER = """
import os, signal, sys
import numpy as np
from backprop.app.commands import train
from backprop.app import trainer
import backprop.data, backprop.app.evaluation.plots
{patch}
sys.exit(train.main(sys.argv[1:]))
"""
PATCHES = {
    "data loading, SIGTERM": """
real = backprop.data.read_bytes
def read_bytes(path):
    os.kill(os.getpid(), signal.SIGTERM)
    return real(path)
backprop.data.read_bytes = read_bytes
""",
    "training, SIGINT": """
real = trainer.train_epoch
def train_epoch(*args, epoch=1, **kwargs):
    if epoch == 2:
        os.kill(os.getpid(), signal.SIGINT)
    return real(*args, epoch=epoch, **kwargs)
trainer.train_epoch = train_epoch
""",
    "checkpoint write, SIGTERM": """
real, calls = np.savez, []
def savez(file, **arrays):
    calls.append(1)
    if len(calls) == 3:  # epoch 2's checkpoint, half written
        file.write(b"PK")
        os.kill(os.getpid(), signal.SIGTERM)
    return real(file, **arrays)
np.savez = savez
""",
    "plotting, SIGINT": """
real = backprop.app.evaluation.plots.plot_confusion
def plot_confusion(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)
    return real(*args, **kwargs)
backprop.app.evaluation.plots.plot_confusion = plot_confusion
""",
}
MESSAGES = {
    "data loading, SIGTERM": "^interrupted before training; nothing written$",
    "training, SIGINT": r"^interrupted in epoch 2; .*model\.npz holds the 1 finished "
    r"epochs \(continue with --resume .*model\.npz\)$",
    "checkpoint write, SIGTERM": r"^interrupted in epoch 2; .*holds the 1 finished",
    "plotting, SIGINT": r"^interrupted after training, while writing the report in "
    r".*run; .*model\.npz holds the 2 finished epochs$",
}


@pytest.mark.parametrize("moment", sorted(PATCHES))
def test_signals_anywhere(synthetic_dir, tmp_path, capsys, moment):
    out = tmp_path / "run"
    extra = ("--epochs", "2", *(("--plots",) if "plot" in moment else ()))
    run_hostile(
        DRIVER.format(patch=PATCHES[moment]),
        train_argv(synthetic_dir, out, *extra),
        capsys,
        tmp_path,
        status=130,
        message=MESSAGES[moment],
        new_files=True,
    )
    if moment.startswith("data"):
        assert not out.exists()  # made for the run, empty, removed
        return
    ckpt = load_checkpoint(out / "model.npz")
    history = json.loads((out / "history.json").read_text())
    assert len(history) == len(ckpt.history) == (2 if "plot" in moment else 1)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_ctrl_c_in_evaluate_and_crossval(synthetic_dir, tmp_path, capsys, monkeypatch):
    assert train.main(train_argv(synthetic_dir, tmp_path / "run")) == 0
    capsys.readouterr()

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("backprop.app.evaluation.plots.plot_gallery", interrupt)
    run_hostile(
        evaluate.main,
        [str(tmp_path / "run"), "--quiet"],
        capsys,
        tmp_path,
        status=130,
        message=r"interrupted; each file written to .*run so far is whole",
        changed=[tmp_path / "run" / "report.txt"],
        new_files=True,
    )
    monkeypatch.setattr("backprop.app.evaluation.folds.fit", interrupt)
    run_hostile(
        crossval.main,
        ["--data-dir", str(synthetic_dir), "--out", str(tmp_path / "cv")],
        capsys,
        tmp_path,
        status=130,
        message="interrupted; nothing written",
    )
    assert not (tmp_path / "cv").exists()
