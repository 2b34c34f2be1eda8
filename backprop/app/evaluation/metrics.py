"""Accuracy, the confusion matrix and the per-class classification report.

These work on host (NumPy) arrays of integer labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of predictions equal to the labels; both shape (N,)."""
    return (
        float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else 0.0
    )


def confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, num_classes: int
) -> np.ndarray:
    """Counts ``m[i, j]`` of samples of true class i predicted as class j, (C, C)."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)  # (C, C)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Return num / den, with 0 where den is 0 (scikit-learn's zero_division=0)."""
    out = np.zeros(np.shape(num), dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]
) -> dict:
    """Precision, recall, f1-score and support per class, plus the averages.

    Laid out like scikit-learn's ``classification_report(output_dict=True)``:
    one entry per class name, then ``accuracy``, ``macro avg`` and
    ``weighted avg``. Ratios with a zero denominator count as 0.

    Args:
        y_true: integer labels, shape (N,).
        y_pred: predicted labels, shape (N,).
        class_names: one name per class index.

    Returns:
        the report as a dict of plain Python numbers.
    """
    m = confusion_matrix(y_true, y_pred, len(class_names))  # (C, C)
    tp = np.diag(m).astype(np.float64)  # (C,)
    support = m.sum(axis=1)  # (C,)
    precision = _ratio(tp, m.sum(axis=0))  # (C,)
    recall = _ratio(tp, support)  # (C,)
    f1 = _ratio(2 * precision * recall, precision + recall)  # (C,)
    report: dict = {}
    for i, name in enumerate(class_names):
        report[name] = {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1-score": float(f1[i]),
            "support": int(support[i]),
        }
    total = int(support.sum())
    report["accuracy"] = float(tp.sum() / total) if total else 0.0
    weights = support / total if total else np.zeros_like(tp)
    for avg, w in (
        ("macro avg", np.full(len(tp), 1 / len(tp))),
        ("weighted avg", weights),
    ):
        report[avg] = {
            "precision": float(precision @ w),
            "recall": float(recall @ w),
            "f1-score": float(f1 @ w),
            "support": total,
        }
    return report


def format_report(report: dict, digits: int = 4) -> str:
    """The report as text, in the layout of the paper (and scikit-learn)."""
    names = [k for k in report if k not in ("accuracy", "macro avg", "weighted avg")]
    width = max(len(n) for n in [*names, "weighted avg"])
    head = (
        f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    )
    lines = [head, ""]

    def row(name: str, r: dict) -> str:
        return (
            f"{name:>{width}} {r['precision']:>9.{digits}f} {r['recall']:>9.{digits}f} "
            f"{r['f1-score']:>9.{digits}f} {r['support']:>9}"
        )

    lines += [row(n, report[n]) for n in names]
    total = report["macro avg"]["support"]
    lines += [
        "",
        f"{'accuracy':>{width}} {'':>9} {'':>9} "
        f"{report['accuracy']:>9.{digits}f} {total:>9}",
    ]
    lines += [row(avg, report[avg]) for avg in ("macro avg", "weighted avg")]
    return "\n".join(lines) + "\n"
