"""A model for the explorer when none is given: the paper's, trained briefly.

``train_first_run`` runs the training command itself, ``python -m
backprop.train``, for ``FIRST_RUN_EPOCHS`` epochs of the paper's configuration
(``backprop.training.EngineConfig``), in a process of its own that shares the
terminal (its progress bar and epoch lines show). So the run folder it leaves
is exactly what ``backprop.train`` leaves, with the same guards: config.json,
history.json (with the diagnostics) and model.npz, which ``--resume`` can
continue.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from backprop.errors import BackpropError
from backprop.runs import new_run_dir
from backprop.training import EngineConfig

FIRST_RUN_EPOCHS = 2


def train_flags(cfg: EngineConfig) -> list[str]:
    """The command-line flags of ``backprop.train`` that name ``cfg``."""
    flags = []
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        if value is None or value is False:
            continue
        if value is True:  # a switch: --augment
            flags.append("--" + field.name.replace("_", "-"))
            continue
        if isinstance(value, tuple):  # --hidden 256,128
            value = ",".join(str(v) for v in value)
        flags += ["--" + field.name.replace("_", "-"), str(value)]
    return flags


def train_first_run(
    out: Path | None = None,
    cfg: EngineConfig | None = None,
    *,
    quiet: bool = False,
) -> Path:
    """Train a model into a new run folder and return the folder.

    Args:
        out: the folder (default: a new one under ``runs/``).
        cfg: the settings (default: the paper's, for ``FIRST_RUN_EPOCHS``).
        quiet: no progress bar or per-epoch lines.

    Returns:
        the run folder, holding config.json, history.json and model.npz.

    Raises:
        BackpropError: the training command failed (it has said why).
        KeyboardInterrupt: it was interrupted.
    """
    cfg = cfg or EngineConfig(epochs=FIRST_RUN_EPOCHS)
    out = out or new_run_dir(f"{cfg.dataset}-seed{cfg.seed}")
    command = [sys.executable, "-m", "backprop.train", "--out", str(out)]
    command += train_flags(cfg) + (["--quiet"] if quiet else [])
    status = subprocess.run(command).returncode
    if status == 130:
        raise KeyboardInterrupt
    if status != 0:
        raise BackpropError(
            f"training the first model into {out} failed (python -m backprop.train "
            f"exit status {status}; its message is above)"
        )
    return out
