"""K-fold cross-validation of a training configuration on the training set.

    python -m backprop.crossval --folds 5            # under a minute on 2 CPU cores
    python -m backprop.crossval --folds 5 --epochs 20 --device gpu

See ``backprop.app.evaluation.folds`` for what is trained and scored.

The flags are train's (the same names and meanings) plus ``--folds``. Only the
default number of epochs differs: ``DEFAULT_EPOCHS`` (2) keeps a 5-fold run,
six trainings in all, under a minute on a 2-core CPU; pass ``--epochs 20`` for
the paper's setting. Results are printed and saved to ``--out`` as
crossval.json and crossval.txt.
"""

from __future__ import annotations

import argparse
import sys

from backprop.app.commands import prog
from backprop.app.commands.flags_and_errors import (
    MODEL_DEFAULTS,
    HelpFormatter,
    Parser,
    add_engine_flags,
    add_output_flags,
    add_training_flags,
    engine_config,
    on_interrupt,
    parse_with_typed,
    run_command,
)
from backprop.app.config import EngineConfig
from backprop.app.evaluation.folds import cross_validate, format_results
from backprop.app.runs import (
    RUN_OUTPUTS,
    OutputFolder,
    atomic_write_text,
    new_run_dir,
    write_json,
)
from backprop.errors import ConfigError

DEFAULT_FOLDS = 5
DEFAULT_EPOCHS = 2  # a 5-fold run trains 6 models; see the module docstring


def build_parser() -> argparse.ArgumentParser:
    """Train's flags that define a model and its training, plus ``--folds``."""
    d = EngineConfig(epochs=DEFAULT_EPOCHS)
    p = Parser(
        prog=prog("crossval"),
        description="Stratified k-fold cross-validation on the training set, "
        "then the test accuracy of a model trained on all of it. Each model "
        "(every fold's and the final one) trains for --epochs.",
        formatter_class=HelpFormatter,
    )
    add_training_flags(p, d)
    add_engine_flags(p, d)
    p.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help="number of folds k")
    add_output_flags(p, "a new folder under runs/")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    return p


def run(args: argparse.Namespace, typed: set[str]) -> int:
    """Cross-validate as the flags say; the body of ``main``."""
    cfg = engine_config(args, typed)
    cfg.validate()
    if args.folds < 2:
        raise ConfigError(f"--folds must be >= 2, got {args.folds}")
    name = f"crossval{args.folds}-{cfg.dataset}-seed{cfg.seed}"
    out = args.out or new_run_dir(name)
    # Taken before the folds train, so a folder that cannot be written, or
    # holds another run, is refused before the work and not after it.
    with OutputFolder(out, RUN_OUTPUTS, replace=args.overwrite):
        with on_interrupt("interrupted; nothing written (results come at the end)"):
            results = cross_validate(cfg, args.folds, quiet=args.quiet)
        text = format_results(results)
        write_json(out / "crossval.json", results)
        atomic_write_text(out / "crossval.txt", text)
    print(("" if args.quiet else "\n") + text + f"results in {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args, typed = parse_with_typed(parser, argv, MODEL_DEFAULTS)
    return run_command(parser, lambda: run(args, typed))


if __name__ == "__main__":
    sys.exit(main())
