"""A model for the explorer when none is given: the paper's, trained briefly.

``train_first_run`` trains the paper's 784-128-10 MLP (its defaults, see
``backprop.training.EngineConfig``) for ``FIRST_RUN_EPOCHS`` epochs with a
progress bar, and leaves a run folder as ``backprop.train`` does:
``config.json``, ``history.json`` (with the diagnostics of
``backprop.diagnostics``) and ``model.npz``, which ``--resume`` can continue.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from backprop.data import NUM_CLASSES, load_pixels, to_inputs
from backprop.device import get_xp, resolve_device, to_device
from backprop.diagnostics import PROBE_SIZE, Diagnostics
from backprop.kernels import resolve_kernels
from backprop.model import MLP
from backprop.optim import Adam
from backprop.runs import (
    CONFIG_FILE,
    MODEL_FILE,
    Checkpoint,
    library_versions,
    new_run_dir,
    save_checkpoint,
    write_history,
    write_json,
)
from backprop.training import (
    EngineConfig,
    epoch_line,
    epoch_record,
    loss_and_accuracy,
    make_step,
    train_epoch,
    training_inputs,
)

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
        BackpropError: bad settings or data (as ``backprop.train``).
    """
    cfg = cfg or EngineConfig(epochs=FIRST_RUN_EPOCHS)
    cfg.validate()
    device = resolve_device(cfg.device, announce=not quiet)
    xp = get_xp(device)
    kernels = resolve_kernels(cfg.kernels, xp, announce=not quiet)
    rng = np.random.default_rng(cfg.seed)  # the weights, then each epoch's order
    (px_train, y_train), (px_test, y_test) = load_pixels(cfg.dataset, cfg.data_dir)
    x_train = to_device(training_inputs(px_train, kernels, cfg.dtype), xp)  # (N, D)
    y_train = to_device(y_train, xp)  # (N,)
    x_test = to_device(to_inputs(px_test, cfg.dtype), xp)  # (N_test, D)
    y_test = to_device(y_test, xp)  # (N_test,)
    sizes = [x_train.shape[1], *cfg.hidden, NUM_CLASSES]
    model = MLP(sizes, rng=rng, dtype=cfg.dtype, device=device, init=cfg.init)
    opt = Adam(lr=cfg.lr, mode=cfg.adam)
    step = Diagnostics(
        make_step(kernels, model, opt, x_train, y_train, cfg.batch_size),
        model,
        x_test[:PROBE_SIZE],
    )
    out = out or new_run_dir(f"{cfg.dataset}-seed{cfg.seed}")
    out.mkdir(parents=True, exist_ok=True)
    run_config = {
        **dataclasses.asdict(cfg),
        "device": device,
        "kernels": kernels,
        "sizes": model.sizes,
    }
    write_json(out / CONFIG_FILE, run_config)
    history: list[dict] = []
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        train = train_epoch(
            model,
            opt,
            x_train,
            y_train,
            cfg.batch_size,
            rng,
            step=step,
            epoch=epoch,
            progress=not quiet,
        )
        diagnostics = step.summary()
        test = loss_and_accuracy(model, x_test, y_test)
        seconds = time.perf_counter() - start
        history.append(epoch_record(epoch, train, test, seconds, diagnostics))
        if not quiet:
            print(epoch_line(history[-1], cfg.epochs), flush=True)
    write_history(out, history)
    save_checkpoint(
        out / MODEL_FILE,
        Checkpoint(
            model.params,
            opt.state_dict(),
            rng.bit_generator.state,
            run_config,
            history,
            library_versions(),
        ),
    )
    return out
