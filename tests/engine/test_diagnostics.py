"""Training diagnostics against a direct computation, and in every run's history."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from backprop.app.commands import train
from backprop.app.config import EngineConfig
from backprop.app.explorer.firstrun import train_first_run
from backprop.app.runs import load_checkpoint
from backprop.data import to_inputs
from backprop.diagnostics import Diagnostics, dead_fractions, layer_names
from backprop.errors import ConfigError, DataError
from backprop.kernels import make_step
from backprop.loop import train_epoch
from backprop.model import MLP
from backprop.optim import Adam

HAS_NUMBA = importlib.util.find_spec("numba") is not None
KERNELS = [
    "reference",
    pytest.param(
        "fused",
        marks=pytest.mark.skipif(not HAS_NUMBA, reason="the fused step needs Numba"),
    ),
]


def dataset(n=200, d=12, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (n, d)).astype(np.uint8)  # (N, D)
    labels = rng.integers(0, 10, n).astype(np.int64)  # (N,)
    return pixels, labels


def layer_norm(arrays: dict, layer: str) -> float:
    w, b = arrays[f"{layer}.w"].astype(np.float64), arrays[f"{layer}.b"]
    return float(np.sqrt((w**2).sum() + (b.astype(np.float64) ** 2).sum()))


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("every", [1, 3])
def test_values_match_a_direct_computation(kernels, every):
    pixels, labels = dataset()
    probe = to_inputs(pixels[:50], "float32")  # (50, D)
    model = MLP([12, 16, 8, 10], seed=1)
    opt = Adam()
    step = make_step(kernels, model, opt, pixels, labels, 32)
    diag = Diagnostics(model, probe, every=every)
    grad_norms, ratios = [], []
    for i, start in enumerate(range(0, 160, 32)):
        batch = np.arange(start, start + 32)
        before = {k: v.copy() for k, v in model.params.items()}
        diag.before_step()
        result = step(batch)
        diag.after_step(result)
        grads = result.grads  # what this step computed
        grad_norms.append([layer_norm(grads, layer) for layer in layer_names(model)])
        if i % every == 0:
            delta = {k: before[k] - model.params[k] for k in before}
            ratios.append(
                [
                    layer_norm(delta, layer) / layer_norm(before, layer)
                    for layer in layer_names(model)
                ]
            )
    summary = diag.summary()
    assert list(summary) == ["dense1", "dense2", "dense3"]
    expected_grad = np.mean(grad_norms, axis=0)
    expected_ratio = np.mean(ratios, axis=0)
    h1 = np.maximum(probe @ model.params["dense1.w"] + model.params["dense1.b"], 0)
    h2 = np.maximum(h1 @ model.params["dense2.w"] + model.params["dense2.b"], 0)
    expected_dead = [1 - (h > 0).any(axis=0).mean() for h in (h1, h2)]
    for i, layer in enumerate(summary):
        got = summary[layer]
        assert got["grad_norm"] == pytest.approx(expected_grad[i], rel=1e-5)
        assert got["update_ratio"] == pytest.approx(expected_ratio[i], rel=1e-4)
        if i < 2:
            assert got["dead_fraction"] == pytest.approx(expected_dead[i], abs=1e-12)
        else:
            assert "dead_fraction" not in got  # no ReLU after the logits
    json.dumps(summary, allow_nan=False)  # plain finite floats
    assert all(type(v) is float for r in summary.values() for v in r.values())
    assert diag.summary() == {}  # a summary starts the count again


def test_a_measured_epoch_trains_exactly_as_an_unmeasured_one():
    pixels, labels = dataset()
    x = to_inputs(pixels, "float32")
    results = []
    for measured in (False, True):
        model, opt = MLP([12, 16, 10], seed=2), Adam()
        diag = Diagnostics(model, x[:20]) if measured else None
        rng = np.random.default_rng(0)
        loss = train_epoch(model, opt, pixels, labels, 32, rng, diagnostics=diag)
        results.append((loss, model.flat.copy()))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_dead_units_are_counted():
    model = MLP([12, 8, 10], seed=0)
    model.params["dense1.b"][:3] = -1e6  # three units that never fire
    model.params["dense1.b"][3:] = 1e6  # and five that always do
    probe = to_inputs(dataset()[0][:40], "float32")
    assert float(dead_fractions(model, probe)[0]) == pytest.approx(3 / 8)


def test_a_bad_interval_or_a_replaced_parameter_is_refused():
    model = MLP([12, 8, 10], seed=0)
    x = to_inputs(dataset()[0], "float32")
    with pytest.raises(ConfigError, match="every"):
        Diagnostics(model, x[:10], every=0)
    model.params["dense1.w"] = model.params["dense1.w"].copy()
    with pytest.raises(ConfigError, match="replaced"):
        Diagnostics(model, x[:10])


def test_every_train_run_records_diagnostics_and_evaluate_draws_them(
    synthetic_dir, tmp_path
):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    argv = ["--data-dir", str(synthetic_dir), "--out", str(out), "--quiet"]
    argv += ["--epochs", "2", "--batch-size", "32", "--hidden", "16", "--lr", "0.01"]
    assert train.main([*argv, "--device", "cpu", "--plots"]) == 0
    history = json.loads((out / "history.json").read_text())
    for record in history:
        diag = record["diagnostics"]
        assert set(diag) == {"dense1", "dense2"}
        assert set(diag["dense1"]) == {"grad_norm", "update_ratio", "dead_fraction"}
        assert set(diag["dense2"]) == {"grad_norm", "update_ratio"}
        assert diag["dense1"]["grad_norm"] > 0 and 0 < diag["dense1"]["update_ratio"]
        assert 0 <= diag["dense1"]["dead_fraction"] <= 1
    assert load_checkpoint(out / "model.npz").history == history
    assert (out / "diagnostics.png").stat().st_size > 1000


def test_plot_diagnostics_needs_diagnostics(tmp_path):
    pytest.importorskip("matplotlib")
    from backprop.app.evaluation.plots import plot_diagnostics

    record = {"epoch": 1, "train_loss": 1.0, "test_loss": 1.0}
    for bad in ({}, {"diagnostics": "high"}, {"diagnostics": {}}):
        with pytest.raises(DataError, match="no diagnostics"):
            plot_diagnostics([{**record, **bad}], tmp_path / "d.png")
    odd = {"dense1": {"grad_norm": 0.5, "update_ratio": "x"}, "dense2": [1]}
    good = {"dense1": {"grad_norm": 0.4, "update_ratio": 1e-3, "dead_fraction": 0}}
    history = [
        {**record, "diagnostics": odd},
        {**record, "epoch": 2, "diagnostics": good},
    ]
    assert plot_diagnostics(history, tmp_path / "d.png").stat().st_size > 1000


def test_the_explorers_first_run_is_a_run_folder(synthetic_dir, tmp_path):
    cfg = EngineConfig(
        epochs=2,
        batch_size=32,
        hidden=(16,),
        data_dir=str(synthetic_dir),
        device="cpu",
        kernels="reference",
    )
    out = train_first_run(tmp_path / "first", cfg, quiet=True)
    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    assert "dead_fraction" in history[-1]["diagnostics"]["dense1"]
    ckpt = load_checkpoint(out / "model.npz")
    assert ckpt.history == history and ckpt.optimizer["t"] == 2 * 10
    assert json.loads((out / "config.json").read_text())["hidden"] == [16]
