"""A trained model's evaluation: the report, its JSON and the pictures.

``write_evaluation`` writes, into one folder:

- ``curves.png``: train and test loss and accuracy per epoch (the paper's
  Fig. 9 and 10), from the run's history;
- ``diagnostics.png``: per layer and epoch, the mean gradient norm, the
  update-to-weight ratio and the dead ReLUs (``backprop.diagnostics``), when
  the history has them;
- ``report.txt``, ``report.json``: precision, recall, f1-score and support per
  class, accuracy, macro and weighted averages (the paper's Fig. 11), and in
  the JSON the confusion matrix;
- ``confusion.png``: the confusion matrix;
- ``correct.png``, ``mistakes.png``: test examples with their true label,
  predicted label and confidence (the paper's Fig. 12); mistakes are sorted
  by confidence, most confident first;
- ``weights.png``: the first layer's weight vectors as images.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backprop.app.evaluation import plots
from backprop.app.evaluation.metrics import (
    classification_report,
    confusion_matrix,
    format_report,
)
from backprop.app.records import PAPER_RESULTS, headline
from backprop.app.runs import (
    EVALUATION_FILES,
    HISTORY_FILE,
    REPORT_FILE,
    atomic_write_text,
    write_json,
)
from backprop.device import to_device, to_numpy, xp_of
from backprop.errors import DataError
from backprop.loop import loss_and_accuracy
from backprop.model import MLP


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
    atomic_write_text(out / REPORT_FILE, format_report(report))
    write_json(out / "report.json", result)
    written = ["report.txt", "report.json"]

    if history:
        plots.plot_curves(history, out / "curves.png", reference)
        written.append("curves.png")
        if any(r.get("diagnostics") for r in history):
            try:
                plots.plot_diagnostics(history, out / "diagnostics.png")
                written.append("diagnostics.png")
            except DataError as exc:  # diagnostics that are not ours
                print(f"note: {exc}: diagnostics.png skipped", file=sys.stderr)
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
        plots.plot_weights(first_weights(model), out / "weights.png")
        written.append("weights.png")
    except DataError as exc:  # inputs that are not square images
        print(f"note: {exc}: galleries and weights.png skipped", file=sys.stderr)
    say(f"wrote {', '.join(written)} to {out}")
    return result


def finish_training(
    out: Path,
    model: Any,
    x: Any,
    y: Any,
    names: Sequence[str],
    history: list[dict],
    paper_data: bool,
    *,
    quiet: bool,
    plots: bool,
) -> None:
    """After a run's epochs: the report, the pictures with ``plots``, the headline.

    Pictures already in ``out`` (a resumed run that was evaluated) are drawn
    again, so that none shows the earlier epochs.

    Args:
        out: the run folder.
        model: the trained model.
        x: the held-out inputs on the model's device, (M, D).
        y: their labels on the same device, (M,).
        names: the class names.
        history: the run's records, one per epoch.
        paper_data: the bundled MNIST, whose curves show the paper's numbers.
        quiet: print only the headline.
        plots: also write what ``backprop evaluate`` writes.
    """
    stale = [n for n in EVALUATION_FILES if n != REPORT_FILE and (out / n).exists()]
    if stale and not plots:
        print(
            f"note: drawing {', '.join(stale)} again for the new epochs",
            file=sys.stderr,
        )
        plots = True
    y_pred = to_numpy(model.predict(x))
    text = format_report(classification_report(to_numpy(y), y_pred, names))
    atomic_write_text(out / REPORT_FILE, text)
    if not quiet:
        print("\n" + text)
    if plots:
        reference = PAPER_RESULTS if paper_data else None
        write_evaluation(
            out, model, x, y, names, history, reference=reference, quiet=quiet
        )
    print(headline(history[-1], paper_data) + f"; results in {out}")


def first_weights(model: Any) -> np.ndarray:
    """The first layer's weights as (pixels, units) columns to draw as images.

    An MLP's ``dense1.w`` (784, H); a CNN's first kernels ``conv1.w``
    (KH, KW, 1, F) as (KH*KW, F), each filter a KH x KW image.
    """
    if "conv1.w" in model.params:
        w = to_numpy(model.params["conv1.w"])  # (KH, KW, C, F)
        return w.reshape(-1, w.shape[-1])  # (KH*KW*C, F)
    return to_numpy(model.params["dense1.w"])  # (D, H)
