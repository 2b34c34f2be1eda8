"""Run folders: where a run writes, what it leaves there, and reading it back.

A training run leaves ``config.json`` (its settings), ``history.json`` (one
record per epoch), ``report.txt`` and ``model.npz`` (the checkpoint) in one
folder, by default a new one under ``runs/`` named by the time. Every command
that reads a run (evaluate, predict, resume) goes through this module.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, TypeVar

from backprop.device import resolve_device
from backprop.errors import BackpropError, CheckpointError, DataError
from backprop.model import MLP
from backprop.runs.checkpoint import Checkpoint, load_checkpoint
from backprop.runs.files import write_json

MODEL_FILE = "model.npz"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
REPORT_FILE = "report.txt"
HISTORY_KEYS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
# Settings that define the model and its training; a resumed run must keep them.
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
C = TypeVar("C")


def new_run_dir(name: str, root: str | Path = "runs") -> Path:
    """A folder under ``root`` that does not exist yet: ``<time>-<name>[-k]``.

    Args:
        name: what the run is, e.g. ``mnist-seed0``.
        root: the folder of runs.
    """
    base = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def write_history(folder: Path, history: list[dict]) -> None:
    """Write the run's per-epoch records to history.json, atomically."""
    write_json(folder / HISTORY_FILE, history)


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


def resume_config(cfg: C, ckpt: Checkpoint, typed: set[str], path: Path) -> C:
    """The checkpoint's run settings, refusing typed flags that contradict them.

    Args:
        cfg: the settings named on the command line (a frozen dataclass).
        ckpt: the checkpoint to continue.
        typed: the settings the user typed (the others are defaults).
        path: the checkpoint's path, for messages.

    Returns:
        ``cfg`` with every run-defining setting taken from the checkpoint.

    Raises:
        CheckpointError: the checkpoint has no config, or a typed flag differs.
    """
    saved: dict[str, Any] = ckpt.config
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
