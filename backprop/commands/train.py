"""Train the paper's MLP on MNIST with the hand-written engine.

    python -m backprop.train                 # the paper's experiment, 20 epochs
    python -m backprop.train --device gpu    # the same on CuPy
    python -m backprop.train --help

Each epoch: shuffle without replacement, one Adam step per batch, then the
test set is evaluated (``backprop.training``). Results go to ``--out``
(default a new folder under ``runs/``, see ``backprop.runs``): config.json,
history.json, report.txt and model.npz (a checkpoint written after every
epoch, so ``--resume`` continues a run).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from backprop.commands.common import (
    add_engine_flags,
    add_training_flags,
    parse_with_typed,
    run_command,
)
from backprop.data import CLASS_NAMES, NUM_CLASSES, load_pixels, to_inputs
from backprop.device import get_xp, resolve_device, to_device, to_numpy
from backprop.errors import CheckpointError, ConfigError, NonFiniteLossError
from backprop.kernels import resolve_kernels
from backprop.metrics import classification_report, format_report
from backprop.model import MLP
from backprop.optim import Adam
from backprop.runs import (
    CONFIG_FILE,
    MODEL_FILE,
    REPORT_FILE,
    RUN_DEFINING,
    Checkpoint,
    atomic_write_text,
    library_versions,
    load_checkpoint,
    new_run_dir,
    resume_config,
    save_checkpoint,
    write_history,
    write_json,
)
from backprop.training import (
    PAPER_RESULTS,
    EngineConfig,
    epoch_line,
    epoch_record,
    headline,
    loss_and_accuracy,
    make_step,
    train_epoch,
    training_inputs,
)


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; every default is shown in ``--help``."""
    d = EngineConfig()
    p = argparse.ArgumentParser(
        prog="python -m backprop.train",
        description="Train an MLP on MNIST with hand-written backprop (NumPy or CuPy).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_training_flags(p, d)
    add_engine_flags(p, d)
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


def run(
    cfg: EngineConfig,
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
    kernels = resolve_kernels(cfg.kernels, xp, announce=not quiet)

    # The run's one generator: it draws the initial weights, then each
    # epoch's permutation.
    rng = np.random.default_rng(cfg.seed)
    (px_train, y_train), (px_test, y_test) = load_pixels(cfg.dataset, cfg.data_dir)
    x_train = training_inputs(px_train, kernels, cfg.dtype)  # (N, D)
    x_test = to_inputs(px_test, cfg.dtype)  # (N_test, D)
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
    step = make_step(kernels, model, opt, x_train, y_train, cfg.batch_size)

    def one_epoch(epoch: int, max_steps: int | None = None) -> tuple[float, float]:
        return train_epoch(
            model,
            opt,
            x_train,
            y_train,
            cfg.batch_size,
            rng,
            step=step,
            epoch=epoch,
            progress=not quiet and max_steps is None,
            max_steps=max_steps,
        )

    if dry_run:
        loss, _ = one_epoch(1, max_steps=1)
        test_loss, _ = loss_and_accuracy(
            model, x_test[: cfg.batch_size], y_test[: cfg.batch_size]
        )
        print(
            f"dry run on {device} ({kernels} kernels): one step, loss {loss:.4f}; "
            f"one test batch, loss {test_loss:.4f}; nothing written"
        )
        return 0

    out = out or new_run_dir(f"{cfg.dataset}-seed{cfg.seed}")
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / MODEL_FILE
    run_config = {
        **dataclasses.asdict(cfg),
        "device": device,
        "kernels": kernels,
        "sizes": model.sizes,
    }

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

    write_json(out / CONFIG_FILE, run_config)
    if ckpt is None:
        checkpoint()  # epoch 0: what Ctrl-C or a NaN in the first epoch leaves behind
    if not quiet:
        print(
            f"training {model.sizes} on {device} ({cfg.dtype}, {kernels} kernels), "
            f"{len(x_train)} examples; writing to {out}"
        )
    epoch = len(history) + 1
    try:
        for epoch in range(len(history) + 1, cfg.epochs + 1):
            start = time.perf_counter()
            train = one_epoch(epoch)
            test = loss_and_accuracy(model, x_test, y_test)
            record = epoch_record(epoch, train, test, time.perf_counter() - start)
            history.append(record)
            checkpoint()
            write_history(out, history)
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
    atomic_write_text(out / REPORT_FILE, report)
    last = history[-1]
    if not quiet:
        print("\n" + report)
    paper_data = cfg.dataset == "mnist" and cfg.data_dir is None
    if plots:
        from backprop.evaluation.report import write_evaluation  # imports matplotlib

        write_evaluation(
            out,
            model,
            x_test,
            y_test,
            names,
            history,
            reference=PAPER_RESULTS if paper_data else None,
            quiet=quiet,
        )
    print(headline(last, paper_data) + f"; results in {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args, typed = parse_with_typed(parser, argv, RUN_DEFINING)
    cfg = EngineConfig.from_namespace(args)

    def body() -> int:
        if args.resume is None:
            cfg.validate()
        return run(
            cfg,
            out=args.out,
            resume=args.resume,
            typed=typed,
            dry_run=args.dry_run,
            quiet=args.quiet,
            plots=args.plots,
        )

    return run_command(parser, body)


if __name__ == "__main__":
    sys.exit(main())
