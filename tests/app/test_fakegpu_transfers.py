"""Transfer discipline on the GPU path, counted by the CuPy stand-in's ledger.

On a GPU each read back to the host waits for the queued work and each copy
crosses PCIe, so training keeps its data and its numbers on the device:

* the data sets are copied to the device once per run (with ``--augment``,
  the training pixels once, as uint8; the float images are made there);
* a training epoch reads nothing back per step; at its end it reads a fixed
  handful, whatever the number of steps, named in ``PER_EPOCH_READS``;
* the test score reads back once per pass over the test set.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from fakegpu_runs import (
    by_function,
    run_main,
    standin,
    write_small_mnist,
    write_synthetic,
)

from backprop.app.commands import train
from backprop.diagnostics import Diagnostics
from backprop.loop import loss_and_accuracy, train_epoch
from backprop.model import MLP
from backprop.optim import Adam

pytestmark = pytest.mark.gpu

# What one more epoch of ``python -m backprop.train`` reads back, by function,
# for a model of two dense layers: nothing depends on the number of steps.
PER_EPOCH_READS = {
    "train_epoch": 2,  # every step's loss and correct count, read at the end
    "summary": 1,  # the diagnostics (gradient norms, update ratios, dead units)
    "loss_and_accuracy": 1,  # the test score: loss and correct count together
    "check_finite": 3,  # are the weights, Adam's m and v finite: one bool each
    "save_checkpoint": 12,  # the checkpoint: 4 parameters, 4 m's, 4 v's
}
# ... and copies to the device: the epoch's permutation of the training rows
PER_EPOCH_COPIES = {"train_epoch": 1}
# What a run copies to the device once: the four arrays of the data sets
# (the trainer's ``build``) and the initial weights of the two layers (``MLP``).
PER_RUN_COPIES = {"build": 4, "__init__": 2}
# Functions of the training step: none of them may read back or copy.
STEP = {"step", "__call__", "loss_and_grads", "forward", "backward", "squared_norms"}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synthetic"))


def device_data(cupy, n: int = 300, d: int = 64, pixels: bool = True):
    rng = np.random.default_rng(0)
    if pixels:  # the training set, as the steps take it
        x = cupy.asarray(rng.integers(0, 256, (n, d)).astype(np.uint8))  # (n, d)
    else:  # inputs to score
        x = cupy.asarray(rng.random((n, d)))  # (n, d)
    y = cupy.asarray(rng.integers(0, 10, n))  # (n,)
    model = MLP([d, 16, 10], seed=0, dtype="float64", device="gpu")
    return model, x, y


@pytest.mark.parametrize("batch_size", [8, 64])
def test_an_epoch_reads_back_twice_whatever_its_steps(batch_size):
    with standin() as cupy:
        model, x, y = device_data(cupy)
        opt = Adam()
        diagnostics = Diagnostics(model, x[:20].astype(np.float64) / 255)
        cupy.ledger.reset()
        rng = np.random.default_rng(0)
        # progress=True: the bar is hidden here (no terminal), so it reads nothing
        train_epoch(
            model, opt, x, y, batch_size, rng, diagnostics=diagnostics, progress=True
        )
        events = list(cupy.ledger.events)
        cupy.ledger.reset()
        diagnostics.summary()
        summary = list(cupy.ledger.events)
    assert opt.t == -(-300 // batch_size)  # 38 or 5 steps were taken
    assert by_function(events, "to_host") == {"train_epoch": 2}
    assert by_function(events, "to_device") == {"train_epoch": 1}  # the order
    assert by_function(events, "sync") == {}
    assert by_function(summary, "to_host") == {"summary": 1}


def test_the_test_score_reads_back_once_per_pass():
    with standin() as cupy:
        model, x, y = device_data(cupy, n=100, pixels=False)
        cupy.ledger.reset()
        loss, accuracy = loss_and_accuracy(model, x, y, batch_size=32)  # 4 chunks
        events = list(cupy.ledger.events)
    assert [(e.kind, e.how) for e in events] == [("to_host", "get")]
    cpu = MLP([64, 16, 10], seed=0, dtype="float64")
    rng = np.random.default_rng(0)
    x_host, y_host = rng.random((100, 64)), rng.integers(0, 10, 100)
    assert (loss, accuracy) == loss_and_accuracy(cpu, x_host, y_host, batch_size=32)


def train_events(data: Path, out: Path, *flags: str) -> list:
    argv = ["--data-dir", str(data), "--out", str(out), "--device", "gpu"]
    argv += ["--hidden", "16", "--quiet", *flags]
    with standin() as cupy:
        run_main(train.main, argv)
        return list(cupy.ledger.events)


@pytest.mark.parametrize("batch_size", ["8", "50"])
def test_a_run_copies_the_data_once_and_reads_a_fixed_handful_per_epoch(
    synthetic, tmp_path, batch_size
):
    flags = ["--batch-size", batch_size]
    one = train_events(synthetic, tmp_path / "one", *flags, "--epochs", "1")
    three = train_events(synthetic, tmp_path / "three", *flags, "--epochs", "3")
    for kind, per_epoch in (
        ("to_host", PER_EPOCH_READS),
        ("to_device", PER_EPOCH_COPIES),
    ):
        more = by_function(three, kind)
        more.subtract(by_function(one, kind))
        assert +more == Counter({k: 2 * v for k, v in per_epoch.items()}), kind
    copies = by_function(one, "to_device")
    copies.subtract(PER_EPOCH_COPIES)
    assert +copies == Counter(PER_RUN_COPIES)
    assert not [e for e in three if e.site.rsplit(" ", 1)[-1] in STEP]
    assert not [e for e in three if e.kind == "sync"]
    images = [e.nbytes for e in three if e.kind == "to_device" and e.how == "asarray"]
    assert images.count(300 * 64) == 1  # the uint8 training pixels, once


def test_augmented_run_sends_the_training_pixels_once(tmp_path):
    (tmp_path / "data").mkdir()
    data = write_small_mnist(tmp_path / "data")
    flags = ["--augment", "--epochs", "2", "--batch-size", "100"]
    events = train_events(data, tmp_path / "run", *flags)
    pixels = 300 * 784  # the training set as uint8
    copies = [e for e in events if e.kind == "to_device"]
    # each chunk of 4,096 images gets its draws from the host, every epoch
    # (the same numbers as on the CPU): 9 arrays, the largest the bank of
    # elastic fields (1.6 MB); and the footprint of the thickness step, twice
    draws = [e for e in copies if "augment/reference.py" in e.site]
    assert len(draws) == 2 * (9 + 2)  # 2 epochs of one chunk
    big = [e for e in copies if e.nbytes >= pixels and "augment/ref" not in e.site]
    # the test images as float32 (the trainer's build), and the training pixels
    # once (EpochAugmenter's __init__); not the training images as floats
    assert sorted((e.nbytes, e.site.rsplit(" ", 1)[-1]) for e in big) == [
        (pixels, "__init__"),
        (100 * 784 * 4, "build"),
    ]
    assert by_function(events, "to_host")["train_epoch"] == 2 * 2
