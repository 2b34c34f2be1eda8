"""Evaluate a trained model: report, curves, confusion matrix, galleries, weights.

    python -m backprop.evaluate runs/RUN              # a folder written by train
    python -m backprop.evaluate runs/RUN/model.npz --out figures/

Writes what ``backprop.app.evaluation.outputs.write_evaluation`` lists, next to
the model unless ``--out`` says otherwise:

- ``curves.png``: train and test loss and accuracy per epoch (the paper's
  Fig. 9 and 10), from the run folder's history.json;
- ``report.txt``, ``report.json``: precision, recall, f1-score and support per
  class, accuracy, macro and weighted averages (the paper's Fig. 11), and in
  the JSON the confusion matrix;
- ``confusion.png``: the confusion matrix;
- ``correct.png``, ``mistakes.png``: test examples with their true label,
  predicted label and confidence (the paper's Fig. 12); mistakes are sorted
  by confidence, most confident first;
- ``weights.png``: the first layer's weight vectors as images.

The dataset and its class names come from the checkpoint's config
(``--dataset``/``--data-dir`` override them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backprop.app.commands import prog
from backprop.app.commands.flags_and_errors import (
    HelpFormatter,
    Parser,
    add_output_flags,
    folder_path,
    on_interrupt,
    run_command,
)
from backprop.app.evaluation.metrics import format_report
from backprop.app.evaluation.outputs import write_evaluation
from backprop.app.records import PAPER_RESULTS, headline
from backprop.app.runs import (
    EVALUATION_FILES,
    OutputFolder,
    check_same_data,
    data_record,
    find_model,
    load_model,
    read_history,
    saved_data,
)
from backprop.data import DATASETS, SPLITS, class_names_for, load_dataset
from backprop.device import DEVICES
from backprop.errors import ConfigError, DataError

MAX_EXAMPLES = 400  # a gallery of more would be a picture too large to draw


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; every default is shown in ``--help``."""
    p = Parser(
        prog=prog("evaluate"),
        description="Report, curves, confusion matrix, example galleries and "
        "weight pictures of a trained model.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("model", type=Path, help="a run folder or its model.npz")
    add_output_flags(p, "the folder of the model")
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default=None,
        help="evaluate on this dataset (default: the run's)",
    )
    p.add_argument(
        "--data-dir",
        type=folder_path,
        default=None,
        help="a folder with the four IDX files (default: the run's)",
    )
    p.add_argument(
        "--examples", type=int, default=25, help="examples per gallery picture"
    )
    p.add_argument(
        "--device", choices=DEVICES, default="cpu", help="where to run the model"
    )
    p.add_argument("--quiet", action="store_true", help="print only the headline")
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(parser, lambda: run(args))


def run(args: argparse.Namespace) -> int:
    """Evaluate the model the flags name; the body of ``main``."""
    if not 1 <= args.examples <= MAX_EXAMPLES:
        raise ConfigError(
            f"--examples must be between 1 and {MAX_EXAMPLES}, got {args.examples}"
        )
    _, folder = find_model(args.model)
    out = args.out or folder
    own = out.resolve() == folder.resolve()
    with OutputFolder(out, EVALUATION_FILES, replace=args.overwrite or own):
        with on_interrupt(
            f"interrupted; each file written to {out} so far is whole, "
            "the others were not written"
        ):
            return evaluate(args, out)


def evaluate(args: argparse.Namespace, out: Path) -> int:
    """Evaluate the model the flags name into ``out`` (taken by ``run``)."""
    model, ckpt, folder = load_model(args.model, args.device)
    config = ckpt.config
    saved_dataset, saved_dir = saved_data(folder, config)
    dataset = args.dataset or saved_dataset
    if args.data_dir is not None:
        data_dir = args.data_dir
    elif args.dataset is not None:
        data_dir = None  # a dataset named on the command line, not the run's
    else:
        data_dir = saved_dir
    digests: dict[str, str] = {}
    _, (x_test, y_test) = load_dataset(dataset, data_dir, model.dtype, digests)
    if args.dataset is None and args.data_dir is None:  # the run's own data
        current = data_record(dataset, data_dir, digests)
        check_same_data(folder, config.get("data"), current, SPLITS["test"])
    if x_test.shape[1] != model.sizes[0]:
        raise DataError(
            f"the model takes {model.sizes[0]} inputs but the test images "
            f"have {x_test.shape[1]} pixels"
        )
    if y_test.max(initial=0) >= model.sizes[-1]:
        raise DataError(
            f"the test labels go up to {y_test.max()} but the model has "
            f"{model.sizes[-1]} classes"
        )
    is_paper_data = dataset == "mnist" and data_dir is None
    result = write_evaluation(
        out,
        model,
        x_test,
        y_test,
        class_names_for(dataset, model.sizes[-1]),
        read_history(folder),
        examples=args.examples,
        reference=PAPER_RESULTS if is_paper_data else None,
        quiet=args.quiet,
    )
    if not args.quiet:
        print("\n" + format_report(result["report"]))
    print(headline(result, is_paper_data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
