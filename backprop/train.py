"""Train the paper's MLP on MNIST with the hand-written engine.

    python -m backprop.train                 # the paper's experiment, 20 epochs
    python -m backprop.train --device gpu    # the same on CuPy
    python -m backprop.train --help

Each epoch: shuffle without replacement, one Adam step per batch, then the
test set is evaluated. Results go to ``--out`` (default a new folder under
``runs/``): config.json, history.json, report.txt and model.npz (a checkpoint
written after every epoch, so ``--resume`` continues a run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from backprop.checkpoint import (
    Checkpoint,
    atomic_write_text,
    library_versions,
    load_checkpoint,
    save_checkpoint,
)
from backprop.data import CLASS_NAMES, DATASETS, NUM_CLASSES, load_dataset
from backprop.device import DEVICES, get_xp, resolve_device, to_device, to_numpy, xp_of
from backprop.errors import (
    BackpropError,
    CheckpointError,
    ConfigError,
    NonFiniteLossError,
)
from backprop.init import INITIALIZERS
from backprop.losses import log_softmax
from backprop.metrics import classification_report, format_report
from backprop.model import DTYPES, MLP, Workspace
from backprop.optim import ADAM_MODES, Adam

Array = Any  # a numpy.ndarray or cupy.ndarray
PAPER = {
    "test_accuracy": 0.976,
    "test_loss": 0.105,
    "train_accuracy": 0.9808,
    "train_loss": 0.0704,
}
# Flags that define the model and its training; a resumed run must keep them.
RUN_DEFINING = (
    "hidden",
    "batch_size",
    "lr",
    "seed",
    "dtype",
    "dataset",
    "data_dir",
    "init",
    "adam",
)


@dataclass(frozen=True)
class Config:
    """One training run's settings; the defaults are the paper's experiment."""

    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    hidden: tuple[int, ...] = (128,)
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"
    dataset: str = "mnist"
    data_dir: str | None = None
    init: str = "paper"
    adam: str = "keras"

    def validate(self) -> None:
        """Raise ConfigError naming the first value out of range."""
        validate_shared(self)


def validate_shared(cfg: Any) -> None:
    """Check the settings every training command shares (see ``add_shared_flags``).

    Args:
        cfg: a config with ``epochs``, ``batch_size``, ``lr`` and ``hidden``.

    Raises:
        ConfigError: naming the first value out of range.
    """
    if cfg.epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, got {cfg.epochs}")
    if cfg.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {cfg.batch_size}")
    if not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        raise ConfigError(f"--lr must be a finite number > 0, got {cfg.lr}")
    if not cfg.hidden or min(cfg.hidden) < 1:
        raise ConfigError(f"--hidden needs positive widths, got {cfg.hidden}")


def parse_hidden(text: str) -> tuple[int, ...]:
    """Parse ``--hidden``: ``128`` or ``256,128``."""
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated widths like 128 or 256,128, got {text!r}"
        ) from None
    if min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be >= 1, got {text!r}")
    return widths


def add_shared_flags(p: argparse.ArgumentParser, d: Any) -> None:
    """Add the flags every training command shares, with the same meaning.

    ``backprop.train`` and ``tf_reference.train`` both take these, so the two
    runs of one experiment are named by the same command line.

    Args:
        p: the parser to extend.
        d: a config whose fields give the defaults.
    """
    p.add_argument(
        "--epochs",
        type=int,
        default=d.epochs,
        help="total epochs to train",
    )
    p.add_argument(
        "--batch-size", type=int, default=d.batch_size, help="examples per Adam step"
    )
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate")
    p.add_argument(
        "--hidden",
        type=parse_hidden,
        default=d.hidden,
        help="hidden widths, e.g. 128 or 256,128",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help="seed of the run's one NumPy generator (initial weights, shuffling)",
    )
    p.add_argument(
        "--dtype", choices=DTYPES, default=d.dtype, help="floating-point precision"
    )
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default=d.dataset,
        help="bundled MNIST or Debian's Fashion-MNIST",
    )
    p.add_argument(
        "--data-dir",
        default=d.data_dir,
        help="a folder with the four IDX files, read instead of --dataset's "
        "(whose class names are kept)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; every default is shown in ``--help``."""
    d = Config()
    p = argparse.ArgumentParser(
        prog="python -m backprop.train",
        description="Train an MLP on MNIST with hand-written backprop (NumPy or CuPy).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_shared_flags(p, d)
    p.add_argument(
        "--device",
        choices=DEVICES,
        default=d.device,
        help="auto uses the GPU when CuPy sees one",
    )
    p.add_argument(
        "--init",
        choices=tuple(INITIALIZERS),
        default=d.init,
        help="paper: truncated normal, stddev 0.1",
    )
    p.add_argument(
        "--adam",
        choices=ADAM_MODES,
        default=d.adam,
        help="keras: eps 1e-7 on the uncorrected sqrt(v), as the paper's TensorFlow; "
        "algorithm1: Kingma & Ba's, eps 1e-8 on the corrected sqrt(v)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: a new folder under runs/)",
    )
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        help="continue from this model.npz up to --epochs",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="one training step and one test batch; write nothing",
    )
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar or per-epoch lines"
    )
    p.add_argument(
        "--plots",
        action="store_true",
        help="at the end, also write what backprop.evaluate writes: curves, "
        "confusion matrix, galleries, weights (PNG) and report.json",
    )
    return p


def config_from_args(args: argparse.Namespace) -> Config:
    """The Config named by parsed flags."""
    names = {f.name for f in dataclasses.fields(Config)}
    return Config(**{k: v for k, v in vars(args).items() if k in names})


def train_epoch(
    model: MLP,
    opt: Adam,
    x: Array,
    y: Array,
    batch_size: int,
    rng: np.random.Generator,
    *,
    epoch: int = 1,
    progress: bool = False,
    max_steps: int | None = None,
) -> tuple[float, float]:
    """One pass over the training set in a fresh random order.

    The permutation is drawn on the host (so CPU and GPU see the same order),
    moved to the device once, and batches are gathered there. Per-step losses
    and correct counts stay on the device and are read back once, at the end.
    Each step is ``model.loss_and_grads`` then ``opt.step``, run through a
    ``Workspace`` that reuses its arrays from step to step (same results,
    less time spent allocating).

    Args:
        model: updated in place.
        opt: the optimizer.
        x: training inputs on the model's device, (N, D).
        y: integer labels on the same device, (N,).
        batch_size: examples per step; the last batch may be smaller.
        rng: the run's generator; draws this epoch's permutation.
        epoch: the epoch number, for messages.
        progress: show a progress bar.
        max_steps: stop after this many steps (``--dry-run``).

    Returns:
        ``(mean loss, accuracy)`` over the epoch's batches, weighted by batch
        size, measured before each step's update (as Keras reports them).

    Raises:
        NonFiniteLossError: a step's loss was NaN or infinite.
    """
    xp = xp_of(x)
    n = len(x)
    order = to_device(rng.permutation(n), xp)  # (N,)
    steps = (
        math.ceil(n / batch_size)
        if max_steps is None
        else min(max_steps, math.ceil(n / batch_size))
    )
    losses = xp.zeros(steps, dtype=np.float64)  # (steps,), one mean loss per step
    correct = xp.zeros(steps, dtype=np.int64)  # (steps,)
    bar = tqdm(
        total=steps,
        desc=f"epoch {epoch}",
        leave=False,
        disable=None if progress else True,
        unit="step",
    )
    # The fast path: the arrays of a step are allocated once, in the workspace,
    # and reused; the results equal model.loss_and_grads(x[batch], y[batch]).
    workspace = Workspace(model, batch_size)
    for step in range(steps):
        batch = order[step * batch_size : (step + 1) * batch_size]  # (B,)
        xb, yb = workspace.gather(x, y, batch)  # (B, D), (B,)
        loss, logits, grads = workspace.loss_and_grads(xb, yb)  # logits (B, C)
        opt.step(model.params, grads)
        losses[step] = loss
        correct[step] = (logits.argmax(axis=1) == yb).sum()
        if progress and step % 20 == 0:
            bar.set_postfix(loss=f"{float(losses[step]):.4f}", refresh=False)
        bar.update()
    bar.close()
    losses, correct = to_numpy(losses), to_numpy(correct)
    sizes = np.minimum(batch_size, n - batch_size * np.arange(steps))  # (steps,)
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        raise NonFiniteLossError(
            f"epoch {epoch} step {bad[0] + 1}: loss is {losses[bad[0]]}; "
            "training stopped"
        )
    return float(losses @ sizes / sizes.sum()), float(correct.sum() / sizes.sum())


def evaluate(
    model: MLP, x: Array, y: Array, batch_size: int = 4096
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a dataset, read back once.

    Args:
        model: the model.
        x: inputs on the model's device, (N, D).
        y: integer labels on the same device, (N,).
        batch_size: rows per forward pass.

    Returns:
        ``(loss, accuracy)`` as floats.
    """
    xp = xp_of(x)
    total_loss = xp.zeros((), dtype=np.float64)
    total_correct = xp.zeros((), dtype=np.int64)
    for i in range(0, len(x), batch_size):
        logits, _ = model.forward(x[i : i + batch_size])  # (B, C)
        yb = y[i : i + batch_size]  # (B,)
        total_loss -= log_softmax(logits)[xp.arange(len(yb)), yb].sum()
        total_correct += (logits.argmax(axis=1) == yb).sum()
    n = max(len(x), 1)
    return float(total_loss) / n, int(total_correct) / n


def epoch_line(record: dict, epochs: int) -> str:
    """One line per epoch, the same format as ``tf_reference.train``."""
    return (
        f"epoch {record['epoch']:>3}/{epochs} | train loss {record['train_loss']:.4f} "
        f"acc {record['train_accuracy']:.4f} | test loss {record['test_loss']:.4f} "
        f"acc {record['test_accuracy']:.4f} | {record['seconds']:.2f} s"
    )


def default_out_dir(cfg: Config) -> Path:
    """A new folder under runs/, named by time, dataset and seed."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{cfg.dataset}-seed{cfg.seed}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def explicit_flags(argv: list[str] | None) -> set[str]:
    """The destinations of flags the user typed (not left at their defaults)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def resume_config(cfg: Config, ckpt: Checkpoint, typed: set[str], path: Path) -> Config:
    """The checkpoint's run settings, refusing typed flags that contradict them."""
    saved = ckpt.config
    missing = [k for k in RUN_DEFINING if k not in saved]
    if missing:
        raise CheckpointError(
            f"{path}: checkpoint has no training config ({', '.join(missing)} missing)"
        )
    saved = {**saved, "hidden": tuple(saved["hidden"])}
    for key in RUN_DEFINING:
        if key in typed and getattr(cfg, key) != saved[key]:
            flag = "--" + key.replace("_", "-")
            raise CheckpointError(
                f"{path}: the run used {flag} {saved[key]}, not {getattr(cfg, key)}"
            )
    return dataclasses.replace(cfg, **{k: saved[k] for k in RUN_DEFINING})


def write_outputs(
    out: Path, history: list[dict], report_text: str | None = None
) -> None:
    """Write history.json (and report.txt) atomically."""
    atomic_write_text(out / "history.json", json.dumps(history, indent=2) + "\n")
    if report_text is not None:
        atomic_write_text(out / "report.txt", report_text)


def run(
    cfg: Config,
    *,
    out: Path | None,
    resume: Path | None,
    typed: set[str],
    dry_run: bool,
    quiet: bool,
    plots: bool = False,
) -> int:
    """Train as configured; the body of ``main`` once flags are parsed."""
    ckpt = load_checkpoint(resume) if resume is not None else None
    if ckpt is not None:
        cfg = resume_config(cfg, ckpt, typed, resume)
        out = out or resume.parent
    cfg.validate()
    device = resolve_device(cfg.device)
    xp = get_xp(device)

    # The run's one generator: it draws the initial weights, then each
    # epoch's permutation.
    rng = np.random.default_rng(cfg.seed)
    (x_train, y_train), (x_test, y_test) = load_dataset(
        cfg.dataset, cfg.data_dir, cfg.dtype
    )
    sizes = [x_train.shape[1], *cfg.hidden, NUM_CLASSES]
    model = MLP(sizes, rng=rng, dtype=cfg.dtype, device=device, init=cfg.init)
    opt = Adam(lr=cfg.lr, mode=cfg.adam)
    history: list[dict] = []
    if ckpt is not None:
        restored = MLP.from_params(ckpt.params, device=device)
        if restored.sizes != model.sizes or restored.dtype != model.dtype:
            raise CheckpointError(
                f"{resume}: its model {restored.sizes} {restored.dtype} "
                "does not match the data"
            )
        model = restored
        opt.load_state_dict(ckpt.optimizer, model.params)
        rng.bit_generator.state = ckpt.rng_state
        history = list(ckpt.history)
        if len(history) >= cfg.epochs:
            raise ConfigError(
                f"{resume} already holds {len(history)} epochs; "
                "pass --epochs greater than that"
            )
    # The data sets go to the device once, here, and stay there.
    x_train, y_train = to_device(x_train, xp), to_device(y_train, xp)
    x_test, y_test = to_device(x_test, xp), to_device(y_test, xp)

    if dry_run:
        loss, acc = train_epoch(
            model, opt, x_train, y_train, cfg.batch_size, rng, max_steps=1
        )
        test_loss, test_acc = evaluate(
            model, x_test[: cfg.batch_size], y_test[: cfg.batch_size]
        )
        print(
            f"dry run on {device}: one step, loss {loss:.4f}; "
            f"one test batch, loss {test_loss:.4f}; nothing written"
        )
        return 0

    out = out or default_out_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "model.npz"
    run_config = {**dataclasses.asdict(cfg), "device": device, "sizes": model.sizes}

    def checkpoint() -> None:
        save_checkpoint(
            model_path,
            Checkpoint(
                model.params,
                opt.state_dict(),
                rng.bit_generator.state,
                run_config,
                history,
                library_versions(),
            ),
        )

    atomic_write_text(out / "config.json", json.dumps(run_config, indent=2) + "\n")
    if ckpt is None:
        checkpoint()  # epoch 0: what Ctrl-C or a NaN in the first epoch leaves behind
    if not quiet:
        print(
            f"training {model.sizes} on {device} ({cfg.dtype}), "
            f"{len(x_train)} examples; writing to {out}"
        )
    epoch = len(history) + 1
    try:
        for epoch in range(len(history) + 1, cfg.epochs + 1):
            start = time.perf_counter()
            train_loss, train_acc = train_epoch(
                model,
                opt,
                x_train,
                y_train,
                cfg.batch_size,
                rng,
                epoch=epoch,
                progress=not quiet,
            )
            test_loss, test_acc = evaluate(model, x_test, y_test)
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_accuracy": train_acc,
                "test_loss": test_loss,
                "test_accuracy": test_acc,
                "seconds": time.perf_counter() - start,
            }
            history.append(record)
            checkpoint()
            write_outputs(out, history)
            if not quiet:
                print(epoch_line(record, cfg.epochs), flush=True)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted in epoch {epoch}; {model_path} holds the "
            f"{len(history)} finished epochs "
            f"(continue with --resume {model_path})",
            file=sys.stderr,
        )
        return 130
    except NonFiniteLossError as exc:
        raise NonFiniteLossError(
            f"{exc}; {model_path} keeps the last good epoch ({len(history)})"
        ) from None

    y_pred = to_numpy(model.predict(x_test))
    names = CLASS_NAMES[cfg.dataset]  # also names the classes of a --data-dir
    report = format_report(classification_report(to_numpy(y_test), y_pred, names))
    write_outputs(out, history, report)
    last = history[-1]
    if not quiet:
        print("\n" + report)
    if plots:
        from backprop.evaluate import write_evaluation  # imports matplotlib

        paper_data = cfg.dataset == "mnist" and cfg.data_dir is None
        write_evaluation(
            out,
            model,
            x_test,
            y_test,
            names,
            history,
            reference=PAPER if paper_data else None,
            quiet=quiet,
        )
    print(
        f"test accuracy {last['test_accuracy']:.4f} (paper {PAPER['test_accuracy']}), "
        f"test loss {last['test_loss']:.4f} (paper {PAPER['test_loss']}); "
        f"results in {out}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    try:
        if args.resume is None:
            cfg.validate()
        return run(
            cfg,
            out=args.out,
            resume=args.resume,
            typed=explicit_flags(argv),
            dry_run=args.dry_run,
            quiet=args.quiet,
            plots=args.plots,
        )
    except ConfigError as exc:
        parser.error(str(exc))
    except BackpropError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
