"""The one trainer: a run built from its config, and the loop over its epochs.

``backprop train``, ``backprop crossval`` and the explorer's first model all
train through this module:

* ``build`` makes a ``Run`` from an ``EngineConfig``: the model (or the one a
  checkpoint holds), Adam, the step (``backprop.kernels.make_step``), the
  diagnostics and, with ``--augment``, the augmenter; the data go to the
  device once, here.
* ``fit`` is the loop over epochs, top to bottom: distort, train an epoch,
  score the held-out set, record, check, checkpoint, print.
* ``train_run`` is what ``backprop train`` does: load the data, build the
  run (resuming a checkpoint), fit it into its folder, write the report.

From ``main`` to the weight update in ``--kernels reference`` mode the stack
is ``commands.train.main`` -> ``train_run`` -> ``fit`` ->
``backprop.loop.train_epoch`` -> ``backprop.loop.ReferenceStep.__call__`` ->
``backprop.optim.Adam.step``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backprop.app.augment import Augmentation, EpochAugmenter, augmentation_record
from backprop.app.config import EngineConfig
from backprop.app.evaluation.outputs import finish_training
from backprop.app.finite import check_finite
from backprop.app.memory import check_fits
from backprop.app.networks import make_model, network_name, run_kernels
from backprop.app.records import epoch_line, epoch_record
from backprop.app.runs import (
    CONFIG_FILE,
    Checkpoint,
    RunWriter,
    check_same_data,
    data_record,
    library_versions,
    load_checkpoint,
    restore_checkpoint,
    resume_config,
    write_json,
)
from backprop.cnn import CNN
from backprop.data import CLASS_NAMES, NUM_CLASSES, load_pixels, to_inputs
from backprop.device import get_xp, resolve_device, to_device
from backprop.diagnostics import PROBE_SIZE, Diagnostics
from backprop.kernels import make_step
from backprop.loop import Array, Step, loss_and_accuracy, train_epoch
from backprop.model import MLP
from backprop.optim import Adam, WeightAverage, averaged


@dataclass
class Run:
    """Everything a run trains with, on its device.

    Attributes:
        cfg: the settings.
        device: ``"cpu"`` or ``"gpu"``.
        kernels: ``"reference"`` or ``"fused"``.
        model: the model, updated in place.
        opt: Adam.
        average: the weights' moving average (``--ema``), which the run
            scores, saves and predicts with; None without ``--ema``.
        rng: the run's one generator (initial weights, then each epoch's order).
        step: the training step.
        diagnostics: per-layer statistics of each epoch.
        pixels: the training images as uint8 pixels on the device, (N, D).
        labels: their labels, (N,).
        x_held: the held-out inputs (the test set, or a validation fold) as
            floats on the device, (M, D); scored after every epoch.
        y_held: their labels, (M,).
        augmenter: writes each epoch's distorted images into ``pixels``.
        history: one record per finished epoch.
        config: what config.json and the checkpoint record of the run.
        writer: saves the checkpoint after every epoch; None writes nothing.
    """

    cfg: EngineConfig
    device: str
    kernels: str
    model: MLP | CNN
    opt: Adam
    average: WeightAverage | None
    rng: np.random.Generator
    step: Step
    diagnostics: Diagnostics
    pixels: Array
    labels: Array
    x_held: Array
    y_held: Array
    augmenter: EpochAugmenter | None = None
    history: list[dict] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    writer: RunWriter | None = None


def build(
    cfg: EngineConfig,
    pixels: np.ndarray,
    labels: np.ndarray,
    held_out: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    device: str,
    kernels: str,
    *,
    ckpt: Checkpoint | None = None,
    resume: Path | None = None,
    data: dict[str, Any] | None = None,
) -> Run:
    """A run ready to train: model, Adam, step, diagnostics and data on the device.

    The generator draws, in this order, the initial weights and (with
    ``--augment``) the augmentation key; a resumed run then takes the saved
    weights, Adam's state, the generator's state and the history.

    Args:
        cfg: the settings.
        pixels: the training images, uint8 on the host, (N, D).
        labels: their labels, (N,).
        held_out: ``(pixels, labels)`` scored after each epoch, (M, D), (M,).
        rng: the run's generator.
        device: ``"cpu"`` or ``"gpu"``.
        kernels: ``"reference"`` or ``"fused"``.
        ckpt: a checkpoint to continue, or None.
        resume: its path, for messages.
        data: where the data came from (``backprop.app.runs.data_record``),
            kept in the run's config.

    Returns:
        the ``Run``.

    Raises:
        CheckpointError: the checkpoint does not fit the data or the settings.
        ConfigError: the run already holds ``cfg.epochs`` epochs.
    """
    xp = get_xp(device)
    model = make_model(cfg, pixels.shape[1], rng, device)
    opt = Adam(lr=cfg.lr, mode=cfg.adam)
    average = WeightAverage(cfg.ema) if cfg.ema else None
    history: list[dict] = []
    if ckpt is not None:
        model = restore_checkpoint(
            ckpt, model, opt, average, rng, len(pixels), cfg, device, resume
        )
        history = list(ckpt.history)
    augmentation = None  # --augment's settings and key, kept in the checkpoint
    if cfg.augment:
        saved = None if ckpt is None else ckpt.config.get("augmentation")
        augmentation = augmentation_record(
            cfg.augment_strength,
            cfg.augment_fraction,
            saved,
            resume if ckpt is not None else None,
            rng,
            pixels.shape[1],
        )
    # The data go to the device once, here, and stay there. With --augment
    # the augmenter writes each epoch's images into the training pixels, so
    # only their room goes to the device (the pixels cross once, in it).
    if augmentation is None:
        train_pixels = to_device(pixels, xp)  # (N, D)
    else:
        train_pixels = xp.empty(pixels.shape, pixels.dtype)  # (N, D)
    x_held = to_device(to_inputs(held_out[0], cfg.dtype), xp)  # (M, D)
    run = Run(
        cfg=cfg,
        device=device,
        kernels=kernels,
        model=model,
        opt=opt,
        average=average,
        rng=rng,
        step=None,  # made below, once the data are on the device
        diagnostics=Diagnostics(model, x_held[:PROBE_SIZE]),
        pixels=train_pixels,
        labels=to_device(labels, xp),
        x_held=x_held,
        y_held=to_device(held_out[1], xp),
        history=history,
        config={**dataclasses.asdict(cfg), "device": device, "kernels": kernels},
    )
    run.config["sizes"] = model.sizes
    if cfg.model == "cnn":  # what load_model rebuilds the network from
        run.config["cnn"] = model.spec
    if data is not None:
        run.config["data"] = data  # where the data was, and its files' SHA-256
    run.step = make_step(kernels, model, opt, run.pixels, run.labels, cfg.batch_size)
    if augmentation is not None:  # writes each epoch's distortions into pixels
        aug = Augmentation(**augmentation["settings"])
        run.augmenter = EpochAugmenter(
            pixels, run.pixels, aug, augmentation["entropy"], kernels
        )
        run.config["augmentation"] = augmentation
    return run


def fit(run: Run, *, progress: bool = False, echo: bool = False) -> list[dict]:
    """Train ``run`` up to ``run.cfg.epochs`` epochs; the loop a reader wants.

    Args:
        run: from ``build``; its model, history and files are updated.
        progress: show a progress bar per epoch.
        echo: print one line per epoch.

    Returns:
        the run's history, one record per epoch.

    Raises:
        NonFiniteLossError: an epoch's loss, scores or weights were not finite.
    """
    model, opt, cfg = run.model, run.opt, run.cfg
    for epoch in range(len(run.history) + 1, cfg.epochs + 1):
        start = time.perf_counter()
        opt.lr = cfg.lr_at(epoch)  # lr * lr_decay ** (epoch - 1); decay 1 keeps lr
        if run.augmenter is not None:
            run.augmenter.fill(epoch)  # this epoch's distorted training images
        train = train_epoch(
            model,
            opt,
            run.pixels,
            run.labels,
            cfg.batch_size,
            run.rng,
            step=run.step,
            diagnostics=run.diagnostics,
            average=run.average,
            epoch=epoch,
            progress=progress,
        )
        diagnostics = run.diagnostics.summary()  # read back once per epoch
        with averaged(model.params, run.average):  # the weights it predicts with
            held = loss_and_accuracy(model, run.x_held, run.y_held)
        seconds = time.perf_counter() - start
        record = epoch_record(epoch, train, held, seconds, diagnostics)
        moments = {"Adam's m": opt.m_flat, "Adam's v": opt.v_flat}
        check_finite(epoch, record, {"the weights": model.flat, **moments})
        run.history.append(record)
        if run.writer is not None:
            save(run)
        if echo:
            print(epoch_line(record, cfg.epochs), flush=True)
    return run.history


def save(run: Run) -> None:
    """Write the run's checkpoint and history.json (atomically, each).

    With ``--ema`` the checkpoint's weights are the average, which every
    command reads, and Adam's state keeps the stepped weights as ``w.<name>``.
    """
    params, optimizer = run.model.params, run.opt.state_dict()
    if run.average is not None and run.average.params:
        optimizer.update({f"w.{name}": p for name, p in params.items()})
        params = run.average.params
    state = Checkpoint(
        params,
        optimizer,
        run.rng.bit_generator.state,
        run.config,
        run.history,
        library_versions(),
    )
    run.writer.save(state)


def train_run(
    cfg: EngineConfig,
    *,
    out: Path | None,
    resume: Path | None = None,
    typed: frozenset[str] = frozenset(),
    dry_run: bool = False,
    quiet: bool = False,
    plots: bool = False,
) -> int:
    """Train as ``backprop train`` does, into the folder ``out``.

    Args:
        cfg: the settings named by the flags.
        out: the run folder (already checked and locked by the caller); None
            only with ``dry_run``.
        resume: a checkpoint to continue, or None.
        typed: the settings the user typed (a resumed run refuses changes).
        dry_run: one step and one test batch; write nothing.
        quiet: no progress bar or per-epoch lines.
        plots: also write what ``backprop evaluate`` writes.

    Returns:
        the exit status, 0.
    """
    ckpt = load_checkpoint(resume) if resume is not None else None
    if ckpt is not None:
        cfg = resume_config(cfg, ckpt, set(typed), resume)
    cfg.validate()
    device = resolve_device(cfg.device, announce=not quiet)
    xp = get_xp(device)
    kernels = run_kernels(cfg, xp, announce=not quiet)
    digests: dict[str, str] = {}  # the SHA-256 of the four files, by name
    (px_train, y_train), test = load_pixels(cfg.dataset, cfg.data_dir, digests)
    data = data_record(cfg.dataset, cfg.data_dir, digests)
    if ckpt is not None:
        check_same_data(resume, ckpt.config.get("data"), data)
    sizes = [px_train.shape[1], *cfg.hidden, NUM_CLASSES]
    check_fits(sizes, cfg.batch_size, len(px_train), len(test[0]), cfg.dtype, xp)
    # The run's one generator: the initial weights, then each epoch's order.
    rng = np.random.default_rng(cfg.seed)
    run = build(
        cfg,
        px_train,
        y_train,
        test,
        rng,
        device,
        kernels,
        ckpt=ckpt,
        resume=resume,
        data=data,
    )
    if dry_run:
        print(dry_run_line(run))
        return 0
    # Resumed in its own folder, the checkpoint there already holds the epochs.
    own = resume is not None and out.resolve() == resume.parent.resolve()
    run.writer = RunWriter(out, saved=len(run.history) if own else None)
    with run.writer.guarding():
        write_json(out / CONFIG_FILE, run.config)
        if run.writer.saved is None:
            save(run)  # what Ctrl-C or a NaN in the first epoch leaves behind
        if not quiet:
            distorted = ", distorted afresh each epoch" if cfg.augment else ""
            print(
                f"training {network_name(run.model)} on {device} ({cfg.dtype}, "
                f"{kernels} kernels), {len(px_train)} examples{distorted}; "
                f"writing to {out}"
            )
        fit(run, progress=not quiet, echo=not quiet)
    if run.average is not None and run.average.params:
        run.average.copy_to(run.model.params)  # the run predicts with the average
    with run.writer.guarding(f"after training, while writing the report in {out}"):
        paper_data = cfg.dataset == "mnist" and cfg.data_dir is None
        names = CLASS_NAMES[cfg.dataset]  # also names the classes of a --data-dir
        held = (run.model, run.x_held, run.y_held, names, run.history)
        finish_training(out, *held, paper_data, quiet=quiet, plots=plots)
    return 0


def dry_run_line(run: Run) -> str:
    """One step and one test batch of ``run``, said in a line; nothing is written."""
    cfg = run.cfg
    if run.augmenter is not None:
        run.augmenter.fill(1)
    loss, _ = train_epoch(
        run.model,
        run.opt,
        run.pixels,
        run.labels,
        cfg.batch_size,
        run.rng,
        step=run.step,
        max_steps=1,
    )
    batch = cfg.batch_size
    test_loss, _ = loss_and_accuracy(run.model, run.x_held[:batch], run.y_held[:batch])
    return (
        f"dry run on {run.device} ({run.kernels} kernels): one step, loss "
        f"{loss:.4f}; one test batch, loss {test_loss:.4f}; nothing written"
    )
