"""K-fold cross-validation of a training configuration on the training set.

The training set is split into k folds, stratified by label (each fold holds
about 1/k of every class) and seeded. For each fold a fresh model trains on
the other k - 1 folds and is scored on the held-out one; the spread of those
k scores says how stable the configuration is. Finally one model trains on
all the training data and is scored on the test set: with the same settings
it is exactly the model ``python -m backprop.train`` would make.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from backprop.app.config import EngineConfig
from backprop.app.finite import first_non_finite
from backprop.app.memory import check_fits
from backprop.app.runs.provenance import data_record
from backprop.app.trainer import build, fit, run_kernels
from backprop.data import NUM_CLASSES, load_pixels
from backprop.device import get_xp, resolve_device
from backprop.errors import ConfigError, NonFiniteLossError


def stratified_folds(
    y: np.ndarray, folds: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Split example indices into ``folds`` disjoint folds, stratified by label.

    Each class's indices are shuffled, then all of them are dealt round-robin
    class after class, so every fold gets within one example of 1/k of each
    class, and fold sizes differ by at most one.

    Args:
        y: integer labels, (N,).
        folds: the number of folds k, 2 <= k <= N.
        rng: draws the shuffles.

    Returns:
        k sorted index arrays that together hold each of 0..N-1 exactly once.
    """
    y = np.asarray(y)
    if not 2 <= folds <= len(y):
        raise ConfigError(
            f"--folds must be between 2 and the {len(y)} training examples, got {folds}"
        )
    by_class = [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]
    order = np.concatenate(by_class)  # (N,), class by class, shuffled within
    fold_of = np.empty(len(y), dtype=np.int64)  # (N,)
    fold_of[order] = np.arange(len(y)) % folds
    return [np.flatnonzero(fold_of == k) for k in range(folds)]


def cross_validate(
    cfg: EngineConfig, folds: int, *, quiet: bool = False
) -> dict[str, Any]:
    """Run k-fold cross-validation, then train on all data and test.

    Fold k's model draws from ``default_rng([seed, k])``; the split from
    ``default_rng(seed)``; the final model from its own ``default_rng(seed)``,
    like ``backprop.train``.

    Args:
        cfg: the settings every model trains with.
        folds: the number of folds.
        quiet: print nothing while running.

    Returns:
        the results: per-fold records, means, standard deviations, and the
        final model's test numbers (what crossval.json holds).
    """
    cfg.validate()
    device = resolve_device(cfg.device, announce=not quiet)
    xp = get_xp(device)
    kernels = run_kernels(cfg, xp, announce=not quiet)
    digests: dict[str, str] = {}  # the SHA-256 of the four files, by name
    (x_train, y_train), (x_test, y_test) = load_pixels(
        cfg.dataset, cfg.data_dir, digests
    )
    sizes = [x_train.shape[1], *cfg.hidden, NUM_CLASSES]
    check_fits(sizes, cfg.batch_size, len(x_train), len(x_test), cfg.dtype, xp)
    split = stratified_folds(y_train, folds, np.random.default_rng(cfg.seed))
    say = (lambda *a, **k: None) if quiet else print
    say(
        f"{folds}-fold cross-validation of "
        f"{[x_train.shape[1], *cfg.hidden, NUM_CLASSES]} ({cfg.model}) "
        f"on {len(y_train)} training examples, {cfg.epochs} "
        f"epoch{'s' * (cfg.epochs != 1)} per fold, on {device}"
        + (", distorted afresh each epoch (--augment)" if cfg.augment else "")
    )
    records = []
    start_all = time.perf_counter()
    for k, val_idx in enumerate(split, start=1):
        start = time.perf_counter()
        train_idx = np.setdiff1d(np.arange(len(y_train)), val_idx)  # (N - n_k,)
        rng = np.random.default_rng([cfg.seed, k])
        held_out = (x_train[val_idx], y_train[val_idx])  # (n_k, D), (n_k,)
        run = build(
            cfg, x_train[train_idx], y_train[train_idx], held_out, rng, device, kernels
        )
        try:
            last = fit(run, progress=not quiet)[-1]
        except NonFiniteLossError as exc:
            raise NonFiniteLossError(f"fold {k}: {exc}") from None
        record = {
            "fold": k,
            "train_size": len(train_idx),
            "val_size": len(val_idx),
            "train_loss": last["train_loss"],
            "train_accuracy": last["train_accuracy"],
            "val_loss": last["test_loss"],  # the held-out set is the fold
            "val_accuracy": last["test_accuracy"],
            "seconds": time.perf_counter() - start,
        }
        check_finite_scores(f"fold {k}", record)
        records.append(record)
        say(fold_line(record, folds), flush=True)

    start = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)  # as backprop train's generator
    run = build(cfg, x_train, y_train, (x_test, y_test), rng, device, kernels)
    last = fit(run, progress=not quiet)[-1]
    final = {
        "train_size": len(y_train),
        "test_size": len(y_test),
        "train_loss": last["train_loss"],
        "train_accuracy": last["train_accuracy"],
        "test_loss": last["test_loss"],
        "test_accuracy": last["test_accuracy"],
        "seconds": time.perf_counter() - start,
    }
    check_finite_scores("the final model", final)
    summary = {}
    for key in ("val_accuracy", "val_loss"):
        values = np.array([r[key] for r in records])  # (k,)
        summary[key] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    return {
        "config": {
            **dataclasses.asdict(cfg),
            "device": device,
            "kernels": kernels,
            "data": data_record(cfg.dataset, cfg.data_dir, digests),
        },
        "folds": folds,
        "fold_results": records,
        "summary": summary,
        "final": final,
        "seconds": time.perf_counter() - start_all,
    }


def check_finite_scores(which: str, record: dict) -> None:
    """Stop when a model's scores are not finite (its weights overflowed).

    Raises:
        NonFiniteLossError: naming the model and the score.
    """
    found = first_non_finite(record)
    if found:
        raise NonFiniteLossError(f"{which}: {found}; cross-validation stopped")


def fold_line(record: dict, folds: int) -> str:
    """One line per fold."""
    return (
        f"fold {record['fold']}/{folds} | train {record['train_size']} "
        f"loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f} | "
        f"val {record['val_size']} loss {record['val_loss']:.4f} "
        f"acc {record['val_accuracy']:.4f} | {record['seconds']:.1f} s"
    )


def format_results(results: dict) -> str:
    """The table of folds, their mean and standard deviation, and the test score."""
    lines = [
        f"{'fold':>6} {'val loss':>9} {'val acc':>9} {'train n':>8} {'val n':>7}",
    ]
    for r in results["fold_results"]:
        lines.append(
            f"{r['fold']:>6} {r['val_loss']:>9.4f} {r['val_accuracy']:>9.4f} "
            f"{r['train_size']:>8} {r['val_size']:>7}"
        )
    s = results["summary"]
    lines += [
        f"{'mean':>6} {s['val_loss']['mean']:>9.4f} {s['val_accuracy']['mean']:>9.4f}",
        f"{'std':>6} {s['val_loss']['std']:>9.4f} {s['val_accuracy']['std']:>9.4f}",
        "",
        f"validation accuracy {s['val_accuracy']['mean']:.4f} "
        f"+/- {s['val_accuracy']['std']:.4f} (mean +/- std over "
        f"{results['folds']} folds, std with ddof=1)",
    ]
    f = results["final"]
    lines.append(
        f"trained on all {f['train_size']} training examples: test accuracy "
        f"{f['test_accuracy']:.4f}, test loss {f['test_loss']:.4f}"
    )
    lines.append(f"total time {results['seconds']:.1f} s")
    return "\n".join(lines) + "\n"
