"""Train the paper's MLP on MNIST with the hand-written engine.

    python -m backprop.train                 # the paper's experiment, 20 epochs
    python -m backprop.train --device gpu    # the same on CuPy
    python -m backprop.train --model cnn     # LeNet-5 (backprop.cnn) instead
    python -m backprop.train --help

Each epoch: shuffle without replacement, one Adam step per batch, then the
test set is evaluated (``backprop.app.trainer``). Results go to ``--out``
(default a new folder under ``runs/``, see ``backprop.app.runs``): config.json,
history.json, report.txt and model.npz (a checkpoint written after every
epoch, so ``--resume`` continues a run).
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from backprop.app.commands import prog
from backprop.app.commands.flags_and_errors import (
    HelpFormatter,
    Parser,
    add_engine_flags,
    add_output_flags,
    add_training_flags,
    engine_config,
    file_path,
    on_interrupt,
    parse_with_typed,
    reported_errors,
)
from backprop.app.config import EngineConfig
from backprop.app.runs import (
    MODEL_FILE,
    RUN_DEFINING,
    RUN_OUTPUTS,
    OutputFolder,
    new_run_dir,
)
from backprop.app.trainer import train_run
from backprop.device import get_xp, resolve_device
from backprop.kernels import resolve_kernels


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; every default is shown in ``--help``."""
    d = EngineConfig()
    p = Parser(
        prog=prog("train"),
        description="Train an MLP (or, with --model cnn, LeNet-5) on MNIST with "
        "hand-written backprop (NumPy or CuPy).",
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


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args, typed = parse_with_typed(parser, argv, RUN_DEFINING)
    cfg = engine_config(args, typed)
    with reported_errors(parser) as status:
        resume = args.resume
        if resume is None:  # usage errors come before the folder's checks
            cfg.validate()
            xp = get_xp(resolve_device(cfg.device, announce=False))
            resolve_kernels(cfg.kernels, xp, announce=False)  # fused: Numba?
        elif resume.is_dir():  # a run folder: its checkpoint
            resume = resume / MODEL_FILE
        out = args.out
        folder = contextlib.nullcontext()  # --dry-run writes nothing
        if not args.dry_run:
            own = resume.parent if resume else None
            out = out or own or new_run_dir(f"{cfg.dataset}-seed{cfg.seed}")
            same = own is not None and out.resolve() == own.resolve()
            folder = OutputFolder(out, RUN_OUTPUTS, replace=args.overwrite or same)
        with folder, on_interrupt("interrupted before training; nothing written"):
            return train_run(
                cfg,
                out=out,
                resume=resume,
                typed=frozenset(typed),
                dry_run=args.dry_run,
                quiet=args.quiet,
                plots=args.plots,
            )
    return status.code


if __name__ == "__main__":
    sys.exit(main())
