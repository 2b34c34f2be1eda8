"""The data a run was trained on: where it was and the SHA-256 of its files.

``backprop.train`` records this in config.json and in the checkpoint, so
that resuming a run, or evaluating it, from any folder finds the same data
or says that it did not. A folder is stored as an absolute path; the bundled
MNIST and Fashion-MNIST are named by ``--dataset``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from backprop.errors import CheckpointError


def data_record(
    dataset: str, data_dir: str | Path | None, digests: dict[str, str]
) -> dict[str, Any]:
    """What identifies a run's data, for its config.

    Args:
        dataset: ``--dataset``.
        data_dir: ``--data-dir``, or None for the dataset's own files.
        digests: file stem -> SHA-256 of its decompressed bytes, as
            ``backprop.data.load_pixels`` fills them in.
    """
    return {
        "dataset": dataset,
        "folder": None if data_dir is None else os.path.abspath(data_dir),
        "sha256": dict(sorted(digests.items())),
    }


def describe(record: dict[str, Any]) -> str:
    """``--data-dir /abs/folder`` or ``--dataset mnist``: where data came from."""
    if record.get("folder") is None:
        return f"--dataset {record.get('dataset')}"
    return f"--data-dir {record['folder']}"


def check_same_data(
    path: str | Path,
    saved: Any,
    current: dict[str, Any],
    stems: tuple[str, ...] | None = None,
) -> None:
    """Refuse data other than the data a run was trained on.

    Args:
        path: the run's checkpoint, for the message.
        saved: the record in its config (None for runs that kept none: those
            are not checked).
        current: ``data_record`` of the data just loaded.
        stems: the files to compare (default: all four).

    Raises:
        CheckpointError: a file's SHA-256 differs; the message names both
            sources and the files that differ.
    """
    if not isinstance(saved, dict) or not isinstance(saved.get("sha256"), dict):
        return
    stems = tuple(current["sha256"]) if stems is None else stems
    differ = [s for s in stems if saved["sha256"].get(s) != current["sha256"].get(s)]
    if differ:
        raise CheckpointError(
            f"{path}: the run was trained on {describe(saved)}, but "
            f"{describe(current)} holds other data ({', '.join(differ)} differ)"
        )
