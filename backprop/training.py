"""Training: the settings of a run, one epoch of steps, and the test score.

Each epoch draws a fresh permutation of the training set from the run's one
generator (no replacement), cuts it into batches and takes one step per batch.
A step is the code lectures 4 and 6 derive, and nothing else::

    loss, grads = model.loss_and_grads(xb, yb)
    opt.step(model.params, grads)

``--kernels fused`` swaps in ``backprop.kernels.FusedStep``, which does the
same arithmetic with hand-written kernels and is tested against this step.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from backprop.data import to_inputs
from backprop.device import to_device, to_numpy, xp_of
from backprop.errors import ConfigError, NonFiniteLossError
from backprop.losses import log_softmax
from backprop.model import MLP
from backprop.optim import Adam

Array = Any  # a numpy.ndarray or cupy.ndarray
# step(batch) -> (mean loss of the batch, its number of correct answers), both
# 0-d arrays on the device, measured before the update the step makes.
Step = Callable[[Array], tuple[Array, Array]]
C = TypeVar("C", bound="TrainConfig")

# What the reference paper reports after 20 epochs of its configuration.
PAPER_RESULTS = {
    "test_accuracy": 0.976,
    "test_loss": 0.105,
    "train_accuracy": 0.9808,
    "train_loss": 0.0704,
}


@dataclass(frozen=True)
class TrainConfig:
    """Settings every training command shares; the defaults are the paper's.

    ``backprop.train`` (``EngineConfig``) and ``tf_reference.train`` extend it,
    so one experiment is named by the same flags in both.
    """

    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    hidden: tuple[int, ...] = (128,)
    seed: int = 0
    dtype: str = "float32"
    dataset: str = "mnist"
    data_dir: str | None = None

    def validate(self) -> None:
        """Raise ConfigError naming the first value out of range."""
        if self.epochs < 1:
            raise ConfigError(f"--epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"--lr must be a finite number > 0, got {self.lr}")
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"--hidden needs positive widths, got {self.hidden}")
        if self.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {self.seed}")

    @classmethod
    def from_namespace(cls: type[C], args: argparse.Namespace) -> C:
        """The config named by parsed flags (flags that are not fields are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in vars(args).items() if k in names})


@dataclass(frozen=True)
class EngineConfig(TrainConfig):
    """A run of the engine: the shared settings plus the engine's own."""

    device: str = "auto"
    init: str = "paper"
    adam: str = "keras"
    kernels: str = "auto"
    augment: bool = False
    augment_strength: float = 1.0
    augment_fraction: float = 1.0

    def validate(self) -> None:
        """Raise ConfigError naming the first value out of range."""
        super().validate()
        s = self.augment_strength
        if not (math.isfinite(s) and 0 < s <= 4):
            raise ConfigError(f"--augment-strength must be in (0, 4], got {s}")
        f = self.augment_fraction
        if not (math.isfinite(f) and 0 < f <= 1):
            raise ConfigError(f"--augment-fraction must be in (0, 1], got {f}")
        if not self.augment and (s, f) != (1.0, 1.0):
            raise ConfigError(
                "--augment-strength and --augment-fraction need --augment"
            )


def reference_step(
    model: MLP, opt: Adam, x: Array, y: Array
) -> Callable[[Array], tuple[Array, Array]]:
    """The training step of the lectures, over a dataset held on the device.

    Args:
        model: updated in place.
        opt: the optimizer.
        x: all training inputs, (N, D).
        y: their integer labels, (N,).

    Returns:
        ``step(batch)``: for row indices ``batch`` (B,), one forward and
        backward pass and one optimizer step; it returns the batch's mean loss
        and its number of correct answers, both from before the update, and
        keeps the step's gradients in ``step.grads`` (``backprop.diagnostics``
        reads them).
    """

    def step(batch: Array) -> tuple[Array, Array]:
        xb, yb = x[batch], y[batch]  # (B, D), (B,)
        loss, grads, logits = model.loss_and_grads(xb, yb, return_logits=True)
        opt.step(model.params, grads)
        step.grads = grads  # the last gradients, kept as FusedStep keeps them
        return loss, (logits.argmax(axis=1) == yb).sum()

    return step


def make_step(
    kernels: str, model: MLP, opt: Adam, x: Array, y: Array, batch_size: int
) -> Step:
    """The step training takes: the reference, or the fused kernels.

    Args:
        kernels: ``"reference"`` or ``"fused"`` (from
            ``backprop.kernels.resolve_kernels``).
        model: updated in place.
        opt: the optimizer.
        x: all training inputs: floats in [0, 1] for the reference, the uint8
            pixels for the fused step (it scales each batch itself), (N, D).
        y: their integer labels, (N,).
        batch_size: the largest batch.

    Returns:
        ``step(batch)`` as ``train_epoch`` takes it.
    """
    if kernels == "reference":
        return reference_step(model, opt, x, y)
    from backprop.kernels import kernels_for, warm_up
    from backprop.kernels.step import FusedStep

    module = kernels_for(xp_of(x))
    warm_up(module, model.dtype)  # compile, or load from Numba's cache, now
    # no batch is larger than the data, so neither are the step's buffers
    return FusedStep(model, opt, x, y, max(1, min(batch_size, len(x))), module)


def training_inputs(pixels: Array, kernels: str, dtype: str) -> Array:
    """What ``make_step`` takes as ``x``: pixels for fused, floats for reference."""
    return pixels if kernels == "fused" else to_inputs(pixels, dtype)


def progress_bar(steps: int, epoch: int, progress: bool) -> tqdm:
    """The bar of one epoch's steps (hidden unless ``progress`` and a terminal)."""
    return tqdm(
        total=steps,
        desc=f"epoch {epoch}",
        leave=False,
        disable=None if progress else True,
        unit="step",
    )


def batch_sizes(n: int, batch_size: int, steps: int) -> np.ndarray:
    """Rows in each of an epoch's first ``steps`` batches; the last may be short."""
    batch_size = min(batch_size, max(n, 1))  # --batch-size 10**30 is one batch
    return np.minimum(batch_size, n - batch_size * np.arange(steps))  # (steps,)


def epoch_summary(
    losses: np.ndarray, correct: np.ndarray, sizes: np.ndarray, epoch: int
) -> tuple[float, float]:
    """An epoch's mean loss and accuracy from its per-step numbers.

    Args:
        losses: each step's mean loss, (steps,).
        correct: each step's number of correct answers, (steps,).
        sizes: each step's number of examples, (steps,).
        epoch: the epoch number, for the message.

    Returns:
        ``(mean loss, accuracy)`` weighted by batch size.

    Raises:
        NonFiniteLossError: a step's loss was NaN or infinite.
    """
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        raise NonFiniteLossError(
            f"epoch {epoch} step {bad[0] + 1}: loss is {losses[bad[0]]}; "
            "training stopped"
        )
    return float(losses @ sizes / sizes.sum()), float(correct.sum() / sizes.sum())


def train_epoch(
    model: MLP,
    opt: Adam,
    x: Array,
    y: Array,
    batch_size: int,
    rng: np.random.Generator,
    *,
    step: Step | None = None,
    epoch: int = 1,
    progress: bool = False,
    max_steps: int | None = None,
) -> tuple[float, float]:
    """One pass over the training set in a fresh random order.

    The permutation is drawn on the host (so CPU and GPU see the same order),
    moved to the device once, and batches are gathered there. Per-step losses
    and correct counts stay on the device and are read back once, at the end.

    Args:
        model: updated in place.
        opt: the optimizer.
        x: training inputs on the model's device, (N, D).
        y: integer labels on the same device, (N,).
        batch_size: examples per step; the last batch may be smaller.
        rng: the run's generator; draws this epoch's permutation.
        step: what one step does, given a batch of row indices; None is
            ``reference_step(model, opt, x, y)``.
        epoch: the epoch number, for messages.
        progress: show a progress bar.
        max_steps: stop after this many steps (``--dry-run``).

    Returns:
        ``(mean loss, accuracy)`` over the epoch's batches, weighted by batch
        size, measured before each step's update (as Keras reports them).

    Raises:
        NonFiniteLossError: a step's loss was NaN or infinite.
    """
    xp = xp_of(x)
    n = len(x)
    step = reference_step(model, opt, x, y) if step is None else step
    order = to_device(rng.permutation(n), xp)  # (N,)
    steps = math.ceil(n / batch_size)
    steps = steps if max_steps is None else min(max_steps, steps)
    losses = xp.zeros(steps, dtype=np.float64)  # (steps,), one mean loss per step
    correct = xp.zeros(steps, dtype=np.int64)  # (steps,)
    bar = progress_bar(steps, epoch, progress)
    for i in range(steps):
        batch = order[i * batch_size : (i + 1) * batch_size]  # (B,)
        losses[i], correct[i] = step(batch)
        if not bar.disable and i % 20 == 0:  # a read only for a visible bar
            bar.set_postfix(loss=f"{float(losses[i]):.4f}", refresh=False)
        bar.update()
    bar.close()
    sizes = batch_sizes(n, batch_size, steps)
    return epoch_summary(to_numpy(losses), to_numpy(correct), sizes, epoch)


def loss_and_accuracy(
    model: MLP, x: Array, y: Array, batch_size: int = 4096
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a dataset, read back once.

    Args:
        model: the model.
        x: inputs on the model's device, (N, D).
        y: integer labels on the same device, (N,).
        batch_size: rows per forward pass.

    Returns:
        ``(loss, accuracy)`` as floats.
    """
    xp = xp_of(x)
    total_loss = xp.zeros((), dtype=np.float64)
    total_correct = xp.zeros((), dtype=np.int64)
    for i in range(0, len(x), batch_size):
        logits, _ = model.forward(x[i : i + batch_size])  # (B, C)
        yb = y[i : i + batch_size]  # (B,)
        total_loss -= log_softmax(logits)[xp.arange(len(yb)), yb].sum()
        total_correct += (logits.argmax(axis=1) == yb).sum()
    n = max(len(x), 1)
    loss, correct = to_numpy(xp.stack([total_loss, total_correct]))  # one read
    return float(loss) / n, int(correct) / n


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
