"""A model for the explorer when none is given: the paper's, trained briefly.

``train_first_run`` trains ``FIRST_RUN_EPOCHS`` epochs of the paper's
configuration through the one trainer (``backprop.app.trainer.train_run``),
in this process, with the same guards as ``backprop train``: the folder is
checked and locked first, and the run folder it leaves (config.json,
history.json with the diagnostics, model.npz, report.txt) is exactly what
``backprop train`` leaves, so ``--resume`` can continue it.
"""

from __future__ import annotations

from pathlib import Path

from backprop.app.config import EngineConfig
from backprop.app.runs import RUN_OUTPUTS, OutputFolder, new_run_dir
from backprop.app.trainer import train_run

FIRST_RUN_EPOCHS = 2


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
        BackpropError: the data, the folder or the training failed.
        KeyboardInterrupt: it was interrupted.
    """
    cfg = cfg or EngineConfig(epochs=FIRST_RUN_EPOCHS)
    out = out or new_run_dir(f"{cfg.dataset}-seed{cfg.seed}")
    with OutputFolder(out, RUN_OUTPUTS):
        train_run(cfg, out=out, quiet=quiet)
    return out
