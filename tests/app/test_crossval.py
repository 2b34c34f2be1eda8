"""Tests of backprop.crossval: stratified folds and the cross-validation CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backprop.app.commands import crossval, train
from backprop.app.evaluation.folds import stratified_folds
from backprop.errors import ConfigError


@given(
    labels=st.lists(st.integers(0, 9), min_size=2, max_size=300),
    folds=st.integers(2, 10),
    seed=st.integers(0, 2**32 - 1),
)
def test_folds_are_disjoint_cover_and_stratified(labels, folds, seed):
    y = np.array(labels)
    folds = min(folds, len(y))
    split = stratified_folds(y, folds, np.random.default_rng(seed))
    assert len(split) == folds
    together = np.concatenate(split)
    assert np.array_equal(np.sort(together), np.arange(len(y)))  # disjoint, cover
    sizes = [len(f) for f in split]
    assert max(sizes) - min(sizes) <= 1
    for c in np.unique(y):
        per_fold = [np.sum(y[f] == c) for f in split]
        assert max(per_fold) - min(per_fold) <= 1  # every class spread evenly


def test_folds_are_seeded():
    y = np.random.default_rng(0).integers(0, 10, 1000)
    a = stratified_folds(y, 5, np.random.default_rng(7))
    b = stratified_folds(y, 5, np.random.default_rng(7))
    c = stratified_folds(y, 5, np.random.default_rng(8))
    assert all(np.array_equal(f, g) for f, g in zip(a, b))
    assert not all(np.array_equal(f, g) for f, g in zip(a, c))


@pytest.mark.parametrize("folds", [1, 0, 11])
def test_bad_fold_counts(folds):
    with pytest.raises(ConfigError, match="--folds"):
        stratified_folds(np.arange(10) % 2, folds, np.random.default_rng(0))


def test_cli_rejects_bad_flags(capsys):
    for argv in (["--folds", "1"], ["--epochs", "0"], ["--hidden", "x"]):
        with pytest.raises(SystemExit) as exc:
            crossval.main(argv)
        assert exc.value.code == 2
    assert "--folds must be >= 2" in capsys.readouterr().err


def test_cli_has_trains_flags():
    ours = {a.dest for a in crossval.build_parser()._actions}
    theirs = {a.dest for a in train.build_parser()._actions}
    assert theirs - ours == {"resume", "dry_run", "plots"}
    assert crossval.build_parser().get_default("epochs") == crossval.DEFAULT_EPOCHS


def test_cross_validation_run(synthetic_dir, tmp_path, capsys):
    flags = ["--data-dir", str(synthetic_dir), "--epochs", "3", "--device", "cpu"]
    flags += ["--hidden", "16", "--seed", "5", "--batch-size", "16", "--lr", "0.01"]
    out = tmp_path / "cv"
    assert crossval.main([*flags, "--folds", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "crossval.json").read_text())
    assert (out / "crossval.txt").read_text() in printed

    records = results["fold_results"]
    assert [r["fold"] for r in records] == [1, 2, 3, 4]
    assert sum(r["val_size"] for r in records) == 300  # the synthetic training set
    assert all(r["train_size"] + r["val_size"] == 300 for r in records)
    accs = np.array([r["val_accuracy"] for r in records])
    losses = np.array([r["val_loss"] for r in records])
    summary = results["summary"]
    assert summary["val_accuracy"]["mean"] == pytest.approx(accs.mean())
    assert summary["val_accuracy"]["std"] == pytest.approx(accs.std(ddof=1))
    assert summary["val_loss"]["mean"] == pytest.approx(losses.mean())
    assert summary["val_loss"]["std"] == pytest.approx(losses.std(ddof=1))
    assert summary["val_loss"]["std"] > 0
    assert f"{accs.mean():.4f} +/- {accs.std(ddof=1):.4f}" in printed
    assert accs.mean() > 0.3  # learnable data: well above chance (0.1)

    # The final model is the one train makes with the same flags.
    run = tmp_path / "run"
    assert train.main([*flags, "--out", str(run), "--quiet"]) == 0
    last = json.loads((run / "history.json").read_text())[-1]
    final = results["final"]
    assert final["test_accuracy"] == pytest.approx(last["test_accuracy"], abs=1e-12)
    assert final["test_loss"] == pytest.approx(last["test_loss"], rel=1e-9)
    assert f"test accuracy {final['test_accuracy']:.4f}" in printed


def test_same_seed_same_results(synthetic_dir, tmp_path):
    flags = ["--data-dir", str(synthetic_dir), "--epochs", "1", "--device", "cpu"]
    flags += ["--folds", "3", "--quiet", "--hidden", "8"]
    runs = []
    for name in ("a", "b"):
        assert crossval.main([*flags, "--out", str(tmp_path / name)]) == 0
        runs.append(json.loads((tmp_path / name / "crossval.json").read_text()))
    strip = [
        [{k: v for k, v in r.items() if k != "seconds"} for r in run["fold_results"]]
        for run in runs
    ]
    assert strip[0] == strip[1]


def test_missing_data_is_a_one_line_error(tmp_path, capsys):
    rc = crossval.main(["--data-dir", str(tmp_path / "nowhere"), "--device", "cpu"])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
