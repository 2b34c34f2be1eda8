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

from backprop.data import NUM_CLASSES, load_pixels, to_inputs
from backprop.device import get_xp, resolve_device, to_device
from backprop.errors import ConfigError, NonFiniteLossError
from backprop.finite import first_non_finite
from backprop.kernels import resolve_kernels
from backprop.memory import check_fits
from backprop.model import MLP
from backprop.optim import Adam
from backprop.runs.provenance import data_record
from backprop.training import (
    Array,
    EngineConfig,
    loss_and_accuracy,
    make_step,
    train_epoch,
    training_inputs,
)


def fit(
    cfg: EngineConfig,
    x: Array,
    y: Array,
    rng: np.random.Generator,
    device: str,
    *,
    kernels: str = "reference",
    progress: bool = False,
    pixels: np.ndarray | None = None,
) -> tuple[MLP, float, float]:
    """Train a fresh model for ``cfg.epochs`` epochs, as ``backprop.train`` does.

    Args:
        cfg: the run's settings.
        x: training inputs on the device, (N, D), as ``training_inputs`` makes
            them for ``kernels``.
        y: integer labels on the device, (N,).
        rng: draws the initial weights, then each epoch's order.
        device: ``cpu`` or ``gpu``.
        kernels: ``"reference"`` or ``"fused"``.
        progress: show a progress bar per epoch.
        pixels: with ``cfg.augment``, the same training images as uint8 pixels
            on the host, (N, D); each epoch's distortion of them is written
            into ``x`` (as ``backprop.train`` does).

    Returns:
        ``(model, last epoch's training loss, its training accuracy)``.
    """
    sizes = [x.shape[1], *cfg.hidden, NUM_CLASSES]
    model = MLP(sizes, rng=rng, dtype=cfg.dtype, device=device, init=cfg.init)
    opt = Adam(lr=cfg.lr, mode=cfg.adam)
    augmenter = None
    if cfg.augment:
        from backprop.augment import Augmentation, EpochAugmenter, augmentation_record

        if pixels is None:
            raise ConfigError("fit with --augment needs the training pixels")
        record = augmentation_record(
            cfg.augment_strength, cfg.augment_fraction, None, None, rng, x.shape[1]
        )
        if not getattr(x.flags, "writeable", True):  # the dataset's own pixels
            x = x.copy()
        aug = Augmentation(**record["settings"])
        augmenter = EpochAugmenter(pixels, x, aug, record["entropy"], kernels)
    step = make_step(kernels, model, opt, x, y, cfg.batch_size)
    loss, acc = float("nan"), float("nan")
    for epoch in range(1, cfg.epochs + 1):
        if augmenter is not None:
            augmenter.fill(epoch)
        loss, acc = train_epoch(
            model,
            opt,
            x,
            y,
            cfg.batch_size,
            rng,
            step=step,
            epoch=epoch,
            progress=progress,
        )
    return model, loss, acc


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
    kernels = resolve_kernels(cfg.kernels, xp, announce=not quiet)
    digests: dict[str, str] = {}  # the SHA-256 of the four files, by name
    (x_train, y_train), (x_test, y_test) = load_pixels(
        cfg.dataset, cfg.data_dir, digests
    )
    sizes = [x_train.shape[1], *cfg.hidden, NUM_CLASSES]
    check_fits(sizes, cfg.batch_size, len(x_train), len(x_test), cfg.dtype, xp, kernels)
    split = stratified_folds(y_train, folds, np.random.default_rng(cfg.seed))
    x_dev, y_dev = to_device(x_train, xp), to_device(y_train, xp)  # uint8 pixels
    say = (lambda *a, **k: None) if quiet else print
    say(
        f"{folds}-fold cross-validation of "
        f"{[x_train.shape[1], *cfg.hidden, NUM_CLASSES]} "
        f"on {len(y_train)} training examples, {cfg.epochs} "
        f"epoch{'s' * (cfg.epochs != 1)} per fold, on {device}"
        + (", distorted afresh each epoch (--augment)" if cfg.augment else "")
    )
    records = []
    start_all = time.perf_counter()
    for k, val_idx in enumerate(split, start=1):
        start = time.perf_counter()
        train_idx = np.setdiff1d(np.arange(len(y_train)), val_idx)  # (N - n_k,)
        tr, va = to_device(train_idx, xp), to_device(val_idx, xp)
        try:
            model, train_loss, train_acc = fit(
                cfg,
                training_inputs(x_dev[tr], kernels, cfg.dtype),
                y_dev[tr],
                np.random.default_rng([cfg.seed, k]),
                device,
                kernels=kernels,
                progress=not quiet,
                pixels=x_train[train_idx] if cfg.augment else None,
            )
        except NonFiniteLossError as exc:
            raise NonFiniteLossError(f"fold {k}: {exc}") from None
        x_val = to_inputs(x_dev[va], cfg.dtype)  # (n_k, D)
        val_loss, val_acc = loss_and_accuracy(model, x_val, y_dev[va])
        record = {
            "fold": k,
            "train_size": len(train_idx),
            "val_size": len(val_idx),
            "train_loss": train_loss,
            "train_accuracy": train_acc,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "seconds": time.perf_counter() - start,
        }
        check_finite_scores(f"fold {k}", record)
        records.append(record)
        say(fold_line(record, folds), flush=True)

    start = time.perf_counter()
    model, train_loss, train_acc = fit(
        cfg,
        training_inputs(x_dev, kernels, cfg.dtype),
        y_dev,
        np.random.default_rng(cfg.seed),
        device,
        kernels=kernels,
        progress=not quiet,
        pixels=x_train if cfg.augment else None,
    )
    x_test = to_device(to_inputs(x_test, cfg.dtype), xp)  # (N_test, D)
    test_loss, test_acc = loss_and_accuracy(model, x_test, to_device(y_test, xp))
    final = {
        "train_size": len(y_train),
        "test_size": len(y_test),
        "train_loss": train_loss,
        "train_accuracy": train_acc,
        "test_loss": test_loss,
        "test_accuracy": test_acc,
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
