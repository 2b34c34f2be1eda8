"""Checkpoints: weights, optimizer state, RNG state, config and history in one .npz.

Everything is stored as plain arrays (JSON for the structured parts), so a file
loads with ``numpy.load(path, allow_pickle=False)``. Writes are atomic
(``backprop.app.runs.files``).
"""

from __future__ import annotations

import json
import platform
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backprop.app.finite import first_non_finite
from backprop.app.runs.fields import check_meta, check_optimizer, check_params
from backprop.app.runs.files import atomic_write, not_a_file
from backprop.device import to_numpy
from backprop.errors import BackpropError, CheckpointError

FORMAT = "backprop-checkpoint-1"


@dataclass
class Checkpoint:
    """What a checkpoint holds, on the host."""

    params: dict[str, np.ndarray]
    optimizer: dict[str, Any] = field(default_factory=dict)
    rng_state: dict | None = None
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    versions: dict = field(default_factory=dict)


def library_versions() -> dict[str, str]:
    """Versions of Python, NumPy and the engine, recorded in each checkpoint."""
    from backprop import __version__

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "backprop": __version__,
    }


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> None:
    """Save a checkpoint atomically as a .npz readable without pickle."""
    arrays: dict[str, np.ndarray] = {"format": np.array(FORMAT)}
    for name, value in ckpt.params.items():
        arrays[f"param/{name}"] = to_numpy(value)
    for name, value in ckpt.optimizer.items():
        arrays[f"optim/{name}"] = (
            to_numpy(value) if not isinstance(value, int) else np.array(value)
        )
    meta = {
        "rng_state": ckpt.rng_state,
        "config": ckpt.config,
        "history": ckpt.history,
        "versions": ckpt.versions or library_versions(),
    }
    found = first_non_finite(meta)
    if found:
        raise CheckpointError(f"{path}: not written, {found} is not a finite number")
    arrays["meta"] = np.array(json.dumps(meta, allow_nan=False))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load a checkpoint written by ``save_checkpoint``, checking every field.

    Raises:
        CheckpointError: the file is missing, not a .npz, not ours, damaged,
            or a field has the wrong type, shape or dtype, or is not finite
            (``backprop.app.runs.fields``).
    """
    path = Path(path)
    why = not_a_file(path)
    if why is not None:
        if why == "file not found":
            why = "checkpoint file not found"
        raise CheckpointError(f"{path}: {why}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path}: one .npy array, not a checkpoint (.npz)")
        with loaded as npz:
            if "format" not in npz.files or str(npz["format"]) != FORMAT:
                raise CheckpointError(f"{path}: not a backprop checkpoint")
            arrays = {k: npz[k] for k in npz.files}
            meta = json.loads(str(arrays["meta"]))
    except CheckpointError:
        raise
    except (
        OSError,
        ValueError,
        KeyError,
        zipfile.BadZipFile,
        EOFError,
        zlib.error,
        NotImplementedError,  # a zip member of an unknown compression
        RecursionError,  # metadata nested too deep
    ) as exc:
        raise CheckpointError(
            f"{path}: not a readable backprop checkpoint ({type(exc).__name__})"
        ) from None
    except MemoryError:
        raise CheckpointError(f"{path}: its arrays do not fit in memory") from None
    meta = check_meta(path, meta)
    params = {
        k[len("param/") :]: v for k, v in arrays.items() if k.startswith("param/")
    }
    check_params(path, params)
    optimizer: dict[str, Any] = {
        k[len("optim/") :]: v for k, v in arrays.items() if k.startswith("optim/")
    }
    optimizer = check_optimizer(path, optimizer, params)
    return Checkpoint(
        params=params,
        optimizer=optimizer,
        rng_state=meta.get("rng_state"),
        config=meta.get("config", {}),
        history=meta.get("history", []),
        versions=meta.get("versions", {}),
    )


def stored_epochs(path: str | Path) -> int | None:
    """How many epochs the checkpoint at ``path`` holds, or None if unreadable."""
    try:
        return len(load_checkpoint(path).history)
    except BackpropError:
        return None
