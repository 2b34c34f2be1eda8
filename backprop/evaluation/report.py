"""Evaluate a trained model: report, curves, confusion matrix, galleries, weights.

    python -m backprop.evaluate runs/RUN              # a folder written by train
    python -m backprop.evaluate runs/RUN/model.npz --out figures/

Writes, next to the model unless ``--out`` says otherwise:

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
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backprop import plots
from backprop.checkpoint import Checkpoint, atomic_write_text, load_checkpoint
from backprop.data import CLASS_NAMES, DATASETS, load_dataset
from backprop.device import DEVICES, resolve_device, to_device, to_numpy, xp_of
from backprop.errors import BackpropError, CheckpointError, DataError
from backprop.metrics import classification_report, confusion_matrix, format_report
from backprop.model import MLP
from backprop.train import PAPER
from backprop.train import evaluate as loss_and_accuracy

MODEL_FILE = "model.npz"
HISTORY_FILE = "history.json"
HISTORY_KEYS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy")


def find_model(path: str | Path) -> tuple[Path, Path]:
    """The model file and the folder it lives in, from a run folder or a file.

    Raises:
        CheckpointError: the path does not exist, or the folder has no model.npz.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            raise CheckpointError(f"{path}: no {MODEL_FILE} in this folder")
        return path / MODEL_FILE, path
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    return path, path.parent


def load_model(path: str | Path, device: str = "cpu") -> tuple[MLP, Checkpoint, Path]:
    """Load a model saved by ``backprop.train``.

    Args:
        path: a run folder or its model.npz.
        device: where the model should live (``cpu``, ``gpu`` or ``auto``).

    Returns:
        ``(model, checkpoint, folder)``: the folder is where the model file is.

    Raises:
        CheckpointError: the file is missing, not ours, or not an MLP's.
    """
    model_path, folder = find_model(path)
    ckpt = load_checkpoint(model_path)
    try:
        model = MLP.from_params(ckpt.params, device=resolve_device(device))
    except BackpropError as exc:
        raise CheckpointError(f"{model_path}: {exc}") from None
    return model, ckpt, folder


def class_names_for(dataset: str, num_classes: int) -> list[str]:
    """The class names of a dataset (``mnist``, ``fashion-mnist``), or the indices.

    Args:
        dataset: the dataset named in the run's config.
        num_classes: the model's number of outputs.
    """
    names = CLASS_NAMES.get(dataset)
    if names is None or len(names) != num_classes:
        return [str(k) for k in range(num_classes)]
    return list(names)


def read_history(folder: Path) -> list[dict] | None:
    """The run's history.json, or None when the folder has none.

    Raises:
        DataError: the file exists but is not a history written by train.
    """
    path = folder / HISTORY_FILE
    if not path.is_file():
        return None
    try:
        history = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not readable JSON ({type(exc).__name__})") from None
    if not isinstance(history, list) or not all(
        isinstance(r, dict) and all(k in r for k in HISTORY_KEYS) for r in history
    ):
        raise DataError(
            f"{path}: expected a list of epochs with {', '.join(HISTORY_KEYS)}"
        )
    return history


def predict_all(model: MLP, x: np.ndarray) -> np.ndarray:
    """Class probabilities of host inputs, computed on the model's device.

    Args:
        model: the model.
        x: inputs on any device, (N, D).

    Returns:
        probabilities on the host, (N, C).
    """
    xp = xp_of(model.params["dense1.w"])
    return to_numpy(model.predict_proba(to_device(x, xp)))


def pick_examples(
    y_true: np.ndarray, y_pred: np.ndarray, confidence: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """The examples the galleries show.

    Args:
        y_true: labels, (N,).
        y_pred: predictions, (N,).
        confidence: probability of each prediction, (N,).
        count: at most this many of each.

    Returns:
        ``(correct, mistakes)``: indices of the first ``count`` correct
        predictions in test order, and of the ``count`` most confident mistakes,
        most confident first.
    """
    correct = np.flatnonzero(y_pred == y_true)[:count]  # (k,)
    mistakes = np.flatnonzero(y_pred != y_true)  # (m,)
    order = np.argsort(-confidence[mistakes], kind="stable")  # (m,)
    return correct, mistakes[order][:count]


def write_evaluation(
    out: str | Path,
    model: MLP,
    x_test: Any,
    y_test: Any,
    class_names: Sequence[str],
    history: list[dict] | None,
    *,
    examples: int = 25,
    reference: dict | None = None,
    quiet: bool = False,
) -> dict:
    """Write the report, its JSON and the pictures into ``out``.

    Args:
        out: the output folder (created if needed).
        model: the trained model.
        x_test: test inputs on any device, (N, D) in [0, 1].
        y_test: integer test labels on any device, (N,).
        class_names: one name per class.
        history: the run's per-epoch records, or None to skip curves.png.
        examples: examples per gallery.
        reference: numbers to draw on the curves (the paper's, for MNIST).
        quiet: do not list the files written (notes of skipped pictures still
            go to stderr).

    Returns:
        the content of report.json.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if quiet else print
    x_host, y_true = to_numpy(x_test), to_numpy(y_test).astype(np.int64)  # (N, D), (N,)
    xp = xp_of(model.params["dense1.w"])
    test_loss, test_accuracy = loss_and_accuracy(
        model, to_device(x_host, xp), to_device(y_true, xp)
    )
    probs = predict_all(model, x_host)  # (N, C)
    y_pred = probs.argmax(axis=1)  # (N,)
    confidence = probs[np.arange(len(y_pred)), y_pred]  # (N,)
    names = list(class_names)
    report = classification_report(y_true, y_pred, names)
    matrix = confusion_matrix(y_true, y_pred, len(names))  # (C, C)
    result = {
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
        "num_examples": len(y_true),
        "class_names": names,
        "report": report,
        "confusion_matrix": matrix.tolist(),
    }
    atomic_write_text(out / "report.txt", format_report(report))
    atomic_write_text(out / "report.json", json.dumps(result, indent=2) + "\n")
    written = ["report.txt", "report.json"]

    if history:
        plots.plot_curves(history, out / "curves.png", reference)
        written.append("curves.png")
    else:
        why = f"no {HISTORY_FILE} next to the model" if history is None else "no epochs"
        print(f"note: {why}: curves.png skipped, the rest still made", file=sys.stderr)
    plots.plot_confusion(matrix, names, out / "confusion.png")
    written.append("confusion.png")
    try:
        right, wrong = pick_examples(y_true, y_pred, confidence, examples)
        for name, idx, title in (
            ("correct.png", right, f"Correctly recognised (first {len(right)})"),
            (
                "mistakes.png",
                wrong,
                f"Mistakes, most confident first ({len(wrong)} of "
                f"{int((y_pred != y_true).sum())})",
            ),
        ):
            plots.plot_gallery(
                x_host[idx],
                y_true[idx],
                y_pred[idx],
                confidence[idx],
                names,
                out / name,
                title,
            )
            written.append(name)
        plots.plot_weights(to_numpy(model.params["dense1.w"]), out / "weights.png")
        written.append("weights.png")
    except DataError as exc:  # inputs that are not square images
        print(f"note: {exc}: galleries and weights.png skipped", file=sys.stderr)
    say(f"wrote {', '.join(written)} to {out}")
    return result


def headline(result: dict, paper: bool = True) -> str:
    """The test accuracy and loss, next to the paper's when ``paper`` (MNIST)."""
    acc, loss = result["test_accuracy"], result["test_loss"]
    if not paper:
        return f"test accuracy {acc:.4f}, test loss {loss:.4f}"
    return (
        f"test accuracy {acc:.4f} (paper {PAPER['test_accuracy']}), "
        f"test loss {loss:.4f} (paper {PAPER['test_loss']})"
    )


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; every default is shown in ``--help``."""
    p = argparse.ArgumentParser(
        prog="python -m backprop.evaluate",
        description="Report, curves, confusion matrix, example galleries and "
        "weight pictures of a trained model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("model", type=Path, help="a run folder or its model.npz")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: the folder of the model)",
    )
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default=None,
        help="evaluate on this dataset (default: the run's)",
    )
    p.add_argument(
        "--data-dir",
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
    if args.examples < 1:
        parser.error(f"--examples must be >= 1, got {args.examples}")
    try:
        model, ckpt, folder = load_model(args.model, args.device)
        config = ckpt.config
        dataset = args.dataset or config.get("dataset", "mnist")
        if args.data_dir is not None:
            data_dir = args.data_dir
        elif args.dataset is not None:
            data_dir = None  # a dataset named on the command line, not the run's
        else:
            data_dir = config.get("data_dir")
        _, (x_test, y_test) = load_dataset(dataset, data_dir, model.dtype)
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
            args.out or folder,
            model,
            x_test,
            y_test,
            class_names_for(dataset, model.sizes[-1]),
            read_history(folder),
            examples=args.examples,
            reference=PAPER if is_paper_data else None,
            quiet=args.quiet,
        )
    except BackpropError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print("\n" + format_report(result["report"]))
    print(headline(result, is_paper_data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
