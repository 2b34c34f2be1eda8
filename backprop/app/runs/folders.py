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

import numpy as np

from backprop.app.config import MODELS
from backprop.app.runs.checkpoint import Checkpoint, load_checkpoint
from backprop.app.runs.fields import HISTORY_KEYS, restore_rng
from backprop.app.runs.files import not_a_file, write_json
from backprop.cnn import CNN
from backprop.data import DATASETS
from backprop.device import resolve_device, to_device, xp_of
from backprop.errors import BackpropError, CheckpointError, ConfigError, DataError
from backprop.init import INITIALIZERS
from backprop.model import DTYPES, MLP
from backprop.optim import ADAM_MODES, Adam, WeightAverage

MODEL_FILE = "model.npz"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
REPORT_FILE = "report.txt"
RUN_FILES = (MODEL_FILE, CONFIG_FILE, HISTORY_FILE, REPORT_FILE)
EVALUATION_FILES = (
    REPORT_FILE,
    "report.json",
    "curves.png",
    "diagnostics.png",
    "confusion.png",
    "correct.png",
    "mistakes.png",
    "weights.png",
)
CROSSVAL_FILES = ("crossval.json", "crossval.txt")
# Any of these in a folder means it holds a run that a new one may not replace.
RUN_OUTPUTS = tuple(dict.fromkeys(RUN_FILES + EVALUATION_FILES + CROSSVAL_FILES))
# Settings that define the model and its training; a resumed run must keep them.
RUN_DEFINING = (
    "model",
    "hidden",
    "batch_size",
    "lr",
    "lr_decay",
    "ema",
    "seed",
    "dtype",
    "dataset",
    "data_dir",
    "init",
    "adam",
    "augment",
    "augment_strength",
    "augment_fraction",
)
# Run-defining settings that older checkpoints lack, with what they meant then.
ADDED_LATER = {
    "model": "mlp",
    "lr_decay": 1.0,
    "ema": 0.0,
    "augment": False,
    "augment_strength": 1.0,
    "augment_fraction": 1.0,
}
# What each run-defining setting must be in a checkpoint's config.
SAVED_CHOICES = {"dtype": DTYPES, "dataset": DATASETS, "init": tuple(INITIALIZERS)}
SAVED_CHOICES["adam"] = ADAM_MODES
SAVED_CHOICES["model"] = MODELS
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
    for i, record in enumerate(history, start=1):
        for key in HISTORY_KEYS:
            value = record[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise DataError(
                    f"{path}: epoch {i}'s {key} is a {type(value).__name__}, "
                    "not a number"
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
    why = not_a_file(path)
    if why == "file not found":
        raise CheckpointError(f"{path}: no such file or folder")
    if why is not None:
        raise CheckpointError(f"{path}: {why}")
    return path, path.parent


def model_from_checkpoint(ckpt: Checkpoint, device: str) -> MLP | CNN:
    """The network a checkpoint's weights belong to.

    An MLP, or with ``config["model"] == "cnn"`` the CNN its config's ``cnn``
    spec (``CNN.spec``) describes; older checkpoints hold MLPs.

    Raises:
        ConfigError: the weights do not form that network, or the spec is bad.
    """
    if ckpt.config.get("model", "mlp") != "cnn":
        return MLP.from_params(ckpt.params, device=device)
    spec = ckpt.config.get("cnn")
    if not isinstance(spec, dict) or not {"layers", "input_shape"} <= set(spec):
        raise ConfigError("a CNN's checkpoint without its layers (config 'cnn')")
    try:
        layers, shape = spec["layers"], spec["input_shape"]
        return CNN.from_params(
            ckpt.params, layers=layers, input_shape=shape, device=device
        )
    except (TypeError, ValueError, IndexError) as exc:
        raise ConfigError(f"its CNN layers {spec!r} are not valid ({exc})") from None


def load_model(
    path: str | Path, device: str = "cpu"
) -> tuple[MLP | CNN, Checkpoint, Path]:
    """Load a model saved by ``backprop.train``.

    Args:
        path: a run folder or its model.npz.
        device: where the model should live (``cpu``, ``gpu`` or ``auto``).

    Returns:
        ``(model, checkpoint, folder)``: the folder is where the model file is.

    Raises:
        CheckpointError: the file is missing, not ours, or not an MLP's or
            a CNN's.
    """
    model_path, folder = find_model(path)
    ckpt = load_checkpoint(model_path)
    try:
        model = model_from_checkpoint(ckpt, resolve_device(device))
    except BackpropError as exc:
        raise CheckpointError(f"{model_path}: {exc}") from None
    return model, ckpt, folder


def as_flag(value: Any) -> str:
    """A setting as it is typed on the command line: ``(256, 128)`` is ``256,128``."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def resume_config(cfg: C, ckpt: Checkpoint, typed: set[str], path: Path) -> C:
    """The checkpoint's run settings, refusing typed flags that contradict them.

    Args:
        cfg: the settings named on the command line (a frozen dataclass).
        ckpt: the checkpoint to continue.
        typed: the settings the user typed (the others are defaults).
        path: the checkpoint's path, for messages.

    Returns:
        ``cfg`` with every run-defining setting taken from the checkpoint.

    ``--data-dir`` may name another folder when the checkpoint records the
    SHA-256 of its data: the data found there is then compared with it.

    Raises:
        CheckpointError: the checkpoint has no config, a setting in it has the
            wrong type or is out of range, or a typed flag differs.
    """
    fields = {f.name for f in dataclasses.fields(cfg)}  # type: ignore[arg-type]
    defining = [k for k in RUN_DEFINING if k in fields]
    saved: dict[str, Any] = {**ADDED_LATER, **ckpt.config}
    missing = [k for k in defining if k not in saved]
    if missing:
        raise CheckpointError(
            f"{path}: checkpoint has no training config ({', '.join(missing)} missing)"
        )
    saved = {k: saved[k] for k in defining}
    check_saved_config(path, saved)
    saved["hidden"] = tuple(saved["hidden"])
    movable = {"data_dir"} if isinstance(ckpt.config.get("data"), dict) else set()
    for key in defining:
        if key in movable and key in typed:
            saved[key] = getattr(cfg, key)
        elif key in typed and getattr(cfg, key) != saved[key]:
            flag = "--" + key.replace("_", "-")
            used, asked = as_flag(saved[key]), as_flag(getattr(cfg, key))
            raise CheckpointError(f"{path}: the run used {flag} {used}, not {asked}")
    resumed = dataclasses.replace(cfg, **saved)
    try:
        dataclasses.replace(resumed, epochs=1).validate()
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its config is out of range: {exc}") from None
    return resumed


def saved_data(path: str | Path, config: dict[str, Any]) -> tuple[str, str | None]:
    """The dataset and data folder a checkpoint's config names.

    Checkpoints without them (weights only) get the bundled MNIST.

    Raises:
        CheckpointError: either is of the wrong type, or the dataset unknown.
    """
    dataset, data_dir = config.get("dataset", "mnist"), config.get("data_dir")
    if dataset not in DATASETS or not isinstance(data_dir, str | None):
        raise CheckpointError(
            f"{path}: its config names dataset {dataset!r} and data_dir "
            f"{data_dir!r}; expected one of {', '.join(DATASETS)} and a folder"
        )
    return dataset, data_dir


def check_saved_config(path: Path, saved: dict[str, Any]) -> None:
    """Refuse run-defining settings of the wrong type in a checkpoint's config.

    Raises:
        CheckpointError: naming the setting and what it holds.
    """

    def integer(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    hidden = saved["hidden"]
    good = {
        "hidden": isinstance(hidden, list) and all(map(integer, hidden)),
        "batch_size": integer(saved["batch_size"]),
        "lr": integer(saved["lr"]) or isinstance(saved["lr"], float),
        "lr_decay": integer(saved["lr_decay"]) or isinstance(saved["lr_decay"], float),
        "ema": integer(saved["ema"]) or isinstance(saved["ema"], float),
        "seed": integer(saved["seed"]),
        "data_dir": saved["data_dir"] is None or isinstance(saved["data_dir"], str),
    }
    if "augment" in saved:
        good["augment"] = isinstance(saved["augment"], bool)
        for key in ("augment_strength", "augment_fraction"):
            good[key] = integer(saved[key]) or isinstance(saved[key], float)
    good.update({k: saved[k] in choices for k, choices in SAVED_CHOICES.items()})
    for key, ok in good.items():
        if not ok:
            raise CheckpointError(
                f"{path}: its config holds {key} = {saved[key]!r}, which is not a "
                f"valid --{key.replace('_', '-')}"
            )


def restore_checkpoint(
    ckpt: Checkpoint,
    model: MLP | CNN,
    opt: Adam,
    average: WeightAverage | None,
    rng: np.random.Generator,
    n_train: int,
    cfg: Any,
    device: str,
    path: Path | None,
) -> MLP | CNN:
    """Put a checkpoint's weights, Adam's state and the generator's into a run.

    Args:
        ckpt: the checkpoint to continue.
        model: the run's freshly made model (its sizes and dtype must match).
        opt: the run's optimizer; takes the checkpoint's state.
        average: the run's weight average (``--ema``), or None. A checkpoint
            of such a run holds the average as its weights and the weights
            Adam steps as ``w.<name>`` beside Adam's moments.
        rng: the run's generator; takes the checkpoint's state.
        n_train: training examples, to check Adam's step count.
        cfg: the run's ``EngineConfig``.
        device: where the model lives.
        path: the checkpoint, for messages.

    Returns:
        the checkpoint's model.

    Raises:
        CheckpointError: the checkpoint does not fit the data, or holds the
            stepped weights when its config has no ``--ema`` (or the reverse).
        ConfigError: it already holds ``cfg.epochs`` epochs.
    """
    try:
        restored = model_from_checkpoint(ckpt, device)
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    steps = len(ckpt.history) * -(-n_train // cfg.batch_size)
    if ckpt.optimizer.get("t") != steps:
        raise CheckpointError(
            f"{path}: Adam's step count is {ckpt.optimizer.get('t')}, but "
            f"{len(ckpt.history)} epochs of this data take {steps} steps"
        )
    same = type(restored) is type(model) and restored.sizes == model.sizes
    if isinstance(model, CNN):
        same = same and (restored.layers, restored.input_shape) == (
            model.layers,
            model.input_shape,
        )
    if not same or restored.dtype != model.dtype:
        raise CheckpointError(
            f"{path}: its model {restored.sizes} {restored.dtype} does not match "
            "the data"
        )
    stepped = {name: ckpt.optimizer.get(f"w.{name}") for name in restored.params}
    kept = all(w is not None for w in stepped.values())  # or none (check_optimizer)
    if steps and kept != (average is not None):  # after a step, --ema keeps them
        raise CheckpointError(
            f"{path}: the run used --ema {as_flag(cfg.ema)}, but its checkpoint "
            f"holds {'' if kept else 'no '}weights Adam steps (optimizer w.<name>)"
        )
    if average is not None and kept:
        average.load(ckpt.params, restored.params)
        for name, w in stepped.items():  # the weights Adam steps
            restored.params[name][...] = to_device(w, xp_of(restored.flat))
    opt.load_state_dict(ckpt.optimizer, restored.params)
    restore_rng(rng, ckpt.rng_state, path)
    if len(ckpt.history) >= cfg.epochs:
        raise ConfigError(
            f"{path} already holds {len(ckpt.history)} epochs; "
            "pass --epochs greater than that"
        )
    return restored
