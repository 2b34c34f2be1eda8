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
import contextlib
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from backprop.augment import Augmentation, EpochAugmenter, augmentation_record
from backprop.commands import prog
from backprop.commands.common import (
    HelpFormatter,
    Parser,
    add_engine_flags,
    add_output_flags,
    add_training_flags,
    file_path,
    on_interrupt,
    parse_with_typed,
    run_command,
)
from backprop.data import CLASS_NAMES, NUM_CLASSES, load_pixels, to_inputs
from backprop.device import get_xp, resolve_device, to_device, to_numpy
from backprop.diagnostics import PROBE_SIZE, Diagnostics
from backprop.errors import CheckpointError, ConfigError
from backprop.finite import check_finite
from backprop.kernels import resolve_kernels
from backprop.memory import check_fits
from backprop.metrics import classification_report, format_report
from backprop.model import MLP
from backprop.optim import Adam
from backprop.runs import (
    CONFIG_FILE,
    EVALUATION_FILES,
    MODEL_FILE,
    REPORT_FILE,
    RUN_DEFINING,
    RUN_OUTPUTS,
    Checkpoint,
    OutputFolder,
    RunWriter,
    atomic_write_text,
    check_same_data,
    data_record,
    library_versions,
    load_checkpoint,
    new_run_dir,
    restore_rng,
    resume_config,
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
    p = Parser(
        prog=prog("train"),
        description="Train an MLP on MNIST with hand-written backprop (NumPy or CuPy).",
        formatter_class=HelpFormatter,
    )
    add_training_flags(p, d)
    add_engine_flags(p, d)
    add_output_flags(p, "a new folder under runs/; with --resume, the run's own")
    p.add_argument(
        "--resume",
        type=file_path,
        default=None,
        help="continue from this model.npz (or its run folder) up to --epochs",
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
    device = resolve_device(cfg.device, announce=not quiet)
    xp = get_xp(device)
    kernels = resolve_kernels(cfg.kernels, xp, announce=not quiet)

    # The run's one generator: it draws the initial weights, then each
    # epoch's permutation.
    rng = np.random.default_rng(cfg.seed)
    digests: dict[str, str] = {}  # the SHA-256 of the four files, by name
    (px_train, y_train), (px_test, y_test) = load_pixels(
        cfg.dataset, cfg.data_dir, digests
    )
    data = data_record(cfg.dataset, cfg.data_dir, digests)
    if ckpt is not None:
        check_same_data(resume, ckpt.config.get("data"), data)
    sizes = [px_train.shape[1], *cfg.hidden, NUM_CLASSES]
    n_train, n_test = len(px_train), len(px_test)
    check_fits(sizes, cfg.batch_size, n_train, n_test, cfg.dtype, xp, kernels)
    x_train = training_inputs(px_train, kernels, cfg.dtype)  # (N, D)
    x_test = to_inputs(px_test, cfg.dtype)  # (N_test, D)
    model = MLP(sizes, rng=rng, dtype=cfg.dtype, device=device, init=cfg.init)
    opt = Adam(lr=cfg.lr, mode=cfg.adam)
    history: list[dict] = []
    if ckpt is not None:
        try:
            restored = MLP.from_params(ckpt.params, device=device)
        except ConfigError as exc:
            raise CheckpointError(f"{resume}: {exc}") from None
        steps = len(ckpt.history) * -(-n_train // cfg.batch_size)
        if ckpt.optimizer.get("t") != steps:
            raise CheckpointError(
                f"{resume}: Adam's step count is {ckpt.optimizer.get('t')}, but "
                f"{len(ckpt.history)} epochs of this data take {steps} steps"
            )
        if restored.sizes != model.sizes or restored.dtype != model.dtype:
            raise CheckpointError(
                f"{resume}: its model {restored.sizes} {restored.dtype} "
                "does not match the data"
            )
        model = restored
        opt.load_state_dict(ckpt.optimizer, model.params)
        restore_rng(rng, ckpt.rng_state, resume)
        history = list(ckpt.history)
        if len(history) >= cfg.epochs:
            raise ConfigError(
                f"{resume} already holds {len(history)} epochs; "
                "pass --epochs greater than that"
            )
    augmentation = None  # --augment's settings and key, kept in the checkpoint
    if cfg.augment:
        saved = None if ckpt is None else ckpt.config.get("augmentation")
        where = resume if ckpt is not None else None
        augmentation = augmentation_record(
            cfg.augment_strength,
            cfg.augment_fraction,
            saved,
            where,
            rng,
            px_train.shape[1],
        )
        if not x_train.flags.writeable:  # the fused step's pixels are the dataset's
            x_train = x_train.copy()
    # The data sets go to the device once, here, and stay there.
    x_train, y_train = to_device(x_train, xp), to_device(y_train, xp)
    x_test, y_test = to_device(x_test, xp), to_device(y_test, xp)
    step = Diagnostics(  # per-layer gradient norms, update ratios, dead ReLUs
        make_step(kernels, model, opt, x_train, y_train, cfg.batch_size),
        model,
        x_test[:PROBE_SIZE],
    )

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

    augmenter = None
    if augmentation is not None:  # writes each epoch's distorted images into x_train
        aug = Augmentation(**augmentation["settings"])
        augmenter = EpochAugmenter(
            px_train, x_train, aug, augmentation["entropy"], kernels
        )

    if dry_run:
        if augmenter is not None:
            augmenter.fill(1)
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
    # Resumed in its own folder, the checkpoint there already holds the epochs.
    own = resume is not None and out.resolve() == resume.parent.resolve()
    writer = RunWriter(out, saved=len(history) if own else None)
    run_config = {
        **dataclasses.asdict(cfg),
        "device": device,
        "kernels": kernels,
        "sizes": model.sizes,
        "data": data,  # where the data was, and the SHA-256 of its files
    }
    if augmentation is not None:
        run_config["augmentation"] = augmentation

    def checkpoint() -> None:
        writer.save(
            Checkpoint(
                model.params,
                opt.state_dict(),
                rng.bit_generator.state,
                run_config,
                history,
                library_versions(),
            ),
        )

    with writer.guarding():
        write_json(out / CONFIG_FILE, run_config)
        if writer.saved is None:
            checkpoint()  # what Ctrl-C or a NaN in the first epoch leaves behind
        if not quiet:
            distorted = ", distorted afresh each epoch" if cfg.augment else ""
            print(
                f"training {model.sizes} on {device} ({cfg.dtype}, {kernels} "
                f"kernels), {len(x_train)} examples{distorted}; writing to {out}"
            )
        for epoch in range(len(history) + 1, cfg.epochs + 1):
            start = time.perf_counter()
            if augmenter is not None:
                augmenter.fill(epoch)  # this epoch's distorted training images
            train = one_epoch(epoch)
            diagnostics = step.summary()  # read back once per epoch
            test = loss_and_accuracy(model, x_test, y_test)
            record = epoch_record(
                epoch, train, test, time.perf_counter() - start, diagnostics
            )
            moments = {"Adam's m": opt.m_flat, "Adam's v": opt.v_flat}
            check_finite(epoch, record, {"the weights": model.flat, **moments})
            history.append(record)
            checkpoint()
            if not quiet:
                print(epoch_line(record, cfg.epochs), flush=True)
    with writer.guarding(f"after training, while writing the report in {out}"):
        finish(cfg, model, out, x_test, y_test, history, quiet=quiet, plots=plots)
    return 0


def finish(
    cfg: EngineConfig,
    model: MLP,
    out: Path,
    x_test: np.ndarray,
    y_test: np.ndarray,
    history: list[dict],
    *,
    quiet: bool,
    plots: bool,
) -> None:
    """After the epochs: the report, the pictures with ``plots``, the headline.

    Pictures already in ``out`` (a resumed run that was evaluated) are drawn
    again, so that none shows the earlier epochs.
    """
    stale = [n for n in EVALUATION_FILES if n != REPORT_FILE and (out / n).exists()]
    if stale and not plots:
        print(
            f"note: drawing {', '.join(stale)} again for the new epochs",
            file=sys.stderr,
        )
        plots = True
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


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args, typed = parse_with_typed(parser, argv, RUN_DEFINING)
    cfg = EngineConfig.from_namespace(args)

    def body() -> int:
        if args.resume is None:  # usage errors come before the folder's checks
            cfg.validate()
            xp = get_xp(resolve_device(cfg.device, announce=False))
            resolve_kernels(cfg.kernels, xp, announce=False)
        elif args.resume.is_dir():  # a run folder: its checkpoint
            args.resume = args.resume / MODEL_FILE
        out = args.out
        folder = contextlib.nullcontext()  # --dry-run writes nothing
        if not args.dry_run:
            own = args.resume.parent if args.resume else None
            out = out or own or new_run_dir(f"{cfg.dataset}-seed{cfg.seed}")
            same = own is not None and out.resolve() == own.resolve()
            folder = OutputFolder(out, RUN_OUTPUTS, replace=args.overwrite or same)
        with folder, on_interrupt("interrupted before training; nothing written"):
            return run(
                cfg,
                out=out,
                resume=args.resume,
                typed=typed,
                dry_run=args.dry_run,
                quiet=args.quiet,
                plots=args.plots,
            )

    return run_command(parser, body)


if __name__ == "__main__":
    sys.exit(main())
