"""An epoch's record in history.json, its printed line, and the final headline.

The engine (``backprop train``) and the TensorFlow reference
(``tf_reference.train``) write the same records and print the same lines, so
their runs compare line by line.
"""

from __future__ import annotations

from typing import Any

# What the reference paper reports after 20 epochs of its configuration.
PAPER_RESULTS = {
    "test_accuracy": 0.976,
    "test_loss": 0.105,
    "train_accuracy": 0.9808,
    "train_loss": 0.0704,
}


def epoch_record(
    epoch: int,
    train: tuple[float, float],
    test: tuple[float, float],
    seconds: float,
    diagnostics: dict | None = None,
) -> dict[str, Any]:
    """One entry of history.json: an epoch's train and test numbers.

    ``diagnostics`` (``backprop.diagnostics.Diagnostics.summary()``), when
    given, is kept under the key ``"diagnostics"``.
    """
    record: dict[str, Any] = {
        "epoch": epoch,
        "train_loss": train[0],
        "train_accuracy": train[1],
        "test_loss": test[0],
        "test_accuracy": test[1],
        "seconds": seconds,
    }
    if diagnostics is not None:
        record["diagnostics"] = diagnostics
    return record


def epoch_line(record: dict, epochs: int) -> str:
    """One printed line per epoch, the same for the engine and TensorFlow."""
    return (
        f"epoch {record['epoch']:>3}/{epochs} | train loss {record['train_loss']:.4f} "
        f"acc {record['train_accuracy']:.4f} | test loss {record['test_loss']:.4f} "
        f"acc {record['test_accuracy']:.4f} | {record['seconds']:.2f} s"
    )


def headline(result: dict, paper: bool) -> str:
    """The test accuracy and loss, next to the paper's when ``paper`` (MNIST)."""
    acc, loss = result["test_accuracy"], result["test_loss"]
    if not paper:
        return f"test accuracy {acc:.4f}, test loss {loss:.4f}"
    return (
        f"test accuracy {acc:.4f} (paper {PAPER_RESULTS['test_accuracy']}), "
        f"test loss {loss:.4f} (paper {PAPER_RESULTS['test_loss']})"
    )
