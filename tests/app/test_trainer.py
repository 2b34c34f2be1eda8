"""The one trainer: what ``train``, ``crossval`` and the explorer train through."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

import backprop
from backprop.app.commands import train
from backprop.app.config import EngineConfig
from backprop.app.trainer import build, fit
from backprop.data import load_pixels, to_inputs
from backprop.loop import ReferenceStep, StepResult
from backprop.model import MLP
from backprop.optim import Adam

PACKAGE = Path(backprop.__file__).resolve().parent


def test_from_main_to_adams_step_is_six_frames_and_no_closure(
    synthetic_dir, tmp_path, monkeypatch
):
    """The stack a reader follows from the command to the weight update."""
    seen = []
    real_step = Adam.step

    def spy(self, params, grads):
        if not seen:
            seen.append(inspect.stack())
        return real_step(self, params, grads)

    monkeypatch.setattr(Adam, "step", spy)
    argv = ["--data-dir", str(synthetic_dir), "--epochs", "1", "--quiet"]
    argv += ["--kernels", "reference", "--out", str(tmp_path / "run")]
    assert train.main(argv) == 0
    frames = [
        f for f in seen[0][1:] if Path(f.filename).resolve().is_relative_to(PACKAGE)
    ]  # [1:]: the spy itself
    names = [f.frame.f_code.co_qualname for f in frames]
    assert names[-1] == "main" and names[0] == "ReferenceStep.__call__", names
    assert len(frames) + 1 <= 6, names  # + Adam.step itself
    assert not [n for n in names if "<locals>" in n], names


def test_both_steps_scale_the_batch_as_the_float_array_is_scaled():
    (pixels, _), _ = load_pixels("mnist")
    batch = np.random.default_rng(0).permutation(len(pixels))[:256]
    for dtype in ("float32", "float64"):
        whole = to_inputs(pixels, dtype)  # (N, D)
        np.testing.assert_array_equal(to_inputs(pixels[batch], dtype), whole[batch])


def test_the_reference_step_refuses_floats_and_returns_a_step_result():
    model, opt = MLP([12, 8, 10], seed=0), Adam()
    x = np.zeros((4, 12), np.float32)
    with pytest.raises(backprop.BackpropError, match="uint8 pixels"):
        ReferenceStep(model, opt, x, np.zeros(4, np.int64))
    step = ReferenceStep(model, opt, np.zeros((4, 12), np.uint8), np.arange(4))
    result = step(np.arange(4))
    assert isinstance(result, StepResult)
    assert set(result.grads) == set(model.params)


def test_crossval_and_train_build_the_same_run(synthetic_dir):
    """The final model of crossval is the model train makes: same config, same
    generator, the same trainer."""
    (px, y), test = load_pixels("mnist", synthetic_dir)
    cfg = EngineConfig(epochs=2, hidden=(8,), batch_size=16, kernels="reference")
    runs = []
    for _ in range(2):
        run = build(cfg, px, y, test, np.random.default_rng(0), "cpu", "reference")
        fit(run)
        runs.append(run)
    assert runs[0].history[-1]["train_loss"] == runs[1].history[-1]["train_loss"]
    np.testing.assert_array_equal(runs[0].model.flat, runs[1].model.flat)
