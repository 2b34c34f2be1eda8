"""K-fold cross-validation of a training configuration on the training set.

    python -m backprop.crossval --folds 5            # under a minute on 2 CPU cores
    python -m backprop.crossval --folds 5 --epochs 20 --device gpu

The training set is split into k folds, stratified by label (each fold holds
about 1/k of every class) and seeded. For each fold a fresh model trains on
the other k - 1 folds and is scored on the held-out one; the spread of those
k scores says how stable the configuration is. Finally one model trains on
all the training data and is scored on the test set: with the same flags it
is exactly the model ``python -m backprop.train`` would make.

The flags are train's (the same names and meanings) plus ``--folds``. Only the
default number of epochs differs: ``DEFAULT_EPOCHS`` (2) keeps a 5-fold run,
six trainings in all, under a minute on a 2-core CPU; pass ``--epochs 20`` for
the paper's setting. Results are printed and saved to ``--out`` as
crossval.json and crossval.txt.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from backprop.checkpoint import atomic_write_text
from backprop.data import NUM_CLASSES, load_dataset
from backprop.device import get_xp, resolve_device, to_device
from backprop.errors import BackpropError, ConfigError
from backprop.model import MLP
from backprop.optim import Adam
from backprop.train import (
    Config,
    config_from_args,
    evaluate,
    train_epoch,
)
from backprop.train import build_parser as build_train_parser

DEFAULT_FOLDS = 5
DEFAULT_EPOCHS = 2  # a 5-fold run trains 6 models; see the module docstring

Array = Any  # a numpy.ndarray or cupy.ndarray


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


def fit(
    cfg: Config,
    x: Array,
    y: Array,
    rng: np.random.Generator,
    device: str,
    *,
    progress: bool = False,
) -> tuple[MLP, float, float]:
    """Train a fresh model for ``cfg.epochs`` epochs, as ``backprop.train`` does.

    Args:
        cfg: the run's settings.
        x: training inputs on the device, (N, D).
        y: integer labels on the device, (N,).
        rng: draws the initial weights, then each epoch's order.
        device: ``cpu`` or ``gpu``.
        progress: show a progress bar per epoch.

    Returns:
        ``(model, last epoch's training loss, its training accuracy)``.
    """
    sizes = [x.shape[1], *cfg.hidden, NUM_CLASSES]
    model = MLP(sizes, rng=rng, dtype=cfg.dtype, device=device, init=cfg.init)
    opt = Adam(lr=cfg.lr, mode=cfg.adam)
    loss, acc = float("nan"), float("nan")
    for epoch in range(1, cfg.epochs + 1):
        loss, acc = train_epoch(
            model, opt, x, y, cfg.batch_size, rng, epoch=epoch, progress=progress
        )
    return model, loss, acc


def cross_validate(cfg: Config, folds: int, *, quiet: bool = False) -> dict[str, Any]:
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
    (x_train, y_train), (x_test, y_test) = load_dataset(
        cfg.dataset, cfg.data_dir, cfg.dtype
    )
    split = stratified_folds(y_train, folds, np.random.default_rng(cfg.seed))
    x_dev, y_dev = to_device(x_train, xp), to_device(y_train, xp)  # one copy each
    say = (lambda *a, **k: None) if quiet else print
    say(
        f"{folds}-fold cross-validation of "
        f"{[x_train.shape[1], *cfg.hidden, NUM_CLASSES]} "
        f"on {len(y_train)} training examples, {cfg.epochs} epochs per fold, "
        f"on {device}"
    )
    records = []
    start_all = time.perf_counter()
    for k, val_idx in enumerate(split, start=1):
        start = time.perf_counter()
        train_idx = np.setdiff1d(np.arange(len(y_train)), val_idx)  # (N - n_k,)
        tr, va = to_device(train_idx, xp), to_device(val_idx, xp)
        model, train_loss, train_acc = fit(
            cfg,
            x_dev[tr],
            y_dev[tr],
            np.random.default_rng([cfg.seed, k]),
            device,
            progress=not quiet,
        )
        val_loss, val_acc = evaluate(model, x_dev[va], y_dev[va])
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
        records.append(record)
        say(fold_line(record, folds), flush=True)

    start = time.perf_counter()
    model, train_loss, train_acc = fit(
        cfg, x_dev, y_dev, np.random.default_rng(cfg.seed), device, progress=not quiet
    )
    test_loss, test_acc = evaluate(model, to_device(x_test, xp), to_device(y_test, xp))
    final = {
        "train_size": len(y_train),
        "test_size": len(y_test),
        "train_loss": train_loss,
        "train_accuracy": train_acc,
        "test_loss": test_loss,
        "test_accuracy": test_acc,
        "seconds": time.perf_counter() - start,
    }
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
        "config": {**dataclasses.asdict(cfg), "device": device},
        "folds": folds,
        "fold_results": records,
        "summary": summary,
        "final": final,
        "seconds": time.perf_counter() - start_all,
    }


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


def default_out_dir(cfg: Config, folds: int) -> Path:
    """A new folder under runs/, named by time, dataset, folds and seed."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-crossval{folds}-{cfg.dataset}-seed{cfg.seed}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def build_parser() -> argparse.ArgumentParser:
    """Train's flags that define a model and its training, plus ``--folds``."""
    p = argparse.ArgumentParser(
        prog="python -m backprop.crossval",
        description="Stratified k-fold cross-validation on the training set, "
        "then the test accuracy of a model trained on all of it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    config_fields = {f.name for f in dataclasses.fields(Config)}
    for action in build_train_parser()._actions:
        if action.dest in config_fields:
            p._add_action(action)  # the same flag object: same type, choices, help
            if action.dest == "epochs":
                action.help = "epochs of each model (every fold's and the final one)"
    p.set_defaults(epochs=DEFAULT_EPOCHS)
    p.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help="number of folds k")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: a new folder under runs/)",
    )
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    try:
        cfg.validate()
        if args.folds < 2:
            raise ConfigError(f"--folds must be >= 2, got {args.folds}")
    except ConfigError as exc:
        parser.error(str(exc))
    try:
        results = cross_validate(cfg, args.folds, quiet=args.quiet)
    except KeyboardInterrupt:
        print("\ninterrupted; nothing written", file=sys.stderr)
        return 130
    except BackpropError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = args.out or default_out_dir(cfg, args.folds)
    out.mkdir(parents=True, exist_ok=True)
    text = format_results(results)
    atomic_write_text(out / "crossval.json", json.dumps(results, indent=2) + "\n")
    atomic_write_text(out / "crossval.txt", text)
    print(("" if args.quiet else "\n") + text + f"results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
