"""The training loop of lecture 8: one epoch of steps, and the score of a model.

Each epoch draws a fresh permutation of the training set from the run's one
generator (no replacement), cuts it into batches and takes one step per batch.
A step is the code lectures 4 and 6 derive, and nothing else::

    loss, grads = model.loss_and_grads(xb, yb)
    opt.step(model.params, grads)

Both steps take the training set as uint8 pixels, (N, D), and scale each
batch to floats in [0, 1] as they go (``backprop.data.to_inputs``: elementwise,
so a batch's rows equal the float array's rows bit for bit). ``--kernels
fused`` swaps in ``backprop.kernels.step.FusedStep`` (``backprop.kernels.make_step``
picks one), which does the same
arithmetic with hand-written kernels and is tested against ``ReferenceStep``.
Both return a ``StepResult``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Protocol

import numpy as np

from backprop.data import to_inputs
from backprop.device import to_device, to_numpy, xp_of
from backprop.diagnostics import Diagnostics
from backprop.errors import ConfigError, NonFiniteLossError
from backprop.losses import log_softmax
from backprop.model import MLP
from backprop.optim import Adam, WeightAverage

Array = Any  # a numpy.ndarray or cupy.ndarray


class StepResult(NamedTuple):
    """What one training step returns, all measured before its update.

    Attributes:
        loss: the batch's mean loss, a 0-d array on the device.
        correct: the batch's number of correct answers, a 0-d array.
        grads: the step's gradients, keyed like ``model.params``.
    """

    loss: Array
    correct: Array
    grads: dict[str, Array]


class Step(Protocol):
    """A training step: one batch of row indices in, a ``StepResult`` out."""

    def __call__(self, batch: Array) -> StepResult:
        """Take one step on the rows ``batch`` (B,) of the training set."""
        ...


class ReferenceStep:
    """The training step of the lectures, over a training set held on the device.

    Args:
        model: updated in place.
        opt: the optimizer.
        pixels: all training images as uint8 pixels, (N, D).
        labels: their integer labels, (N,).
    """

    def __init__(self, model: MLP, opt: Adam, pixels: Array, labels: Array) -> None:
        if pixels.dtype != np.uint8:
            raise ConfigError(
                f"the training step takes uint8 pixels (backprop.load_pixels), "
                f"not {pixels.dtype}: it scales each batch to [0, 1] itself"
            )
        self.model, self.opt = model, opt
        self.pixels, self.labels = pixels, labels

    def __call__(self, batch: Array) -> StepResult:
        """One forward and backward pass and one optimizer step on rows ``batch``.

        Args:
            batch: row indices, (B,).

        Returns:
            the batch's mean loss, its number of correct answers and the
            gradients, all from before the update.
        """
        model = self.model
        xb = to_inputs(self.pixels[batch], model.dtype)  # (B, D) in [0, 1]
        yb = self.labels[batch]  # (B,)
        loss, grads, logits = model.loss_and_grads(xb, yb, return_logits=True)
        self.opt.step(model.params, grads)
        return StepResult(loss, (logits.argmax(axis=1) == yb).sum(), grads)


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
    pixels: Array,
    labels: Array,
    batch_size: int,
    rng: np.random.Generator,
    *,
    step: Step | None = None,
    diagnostics: Diagnostics | None = None,
    average: WeightAverage | None = None,
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
        pixels: training images as uint8 pixels on the model's device, (N, D).
        labels: integer labels on the same device, (N,).
        batch_size: examples per step; the last batch may be smaller.
        rng: the run's generator; draws this epoch's permutation.
        step: what one step does, given a batch of row indices; None is
            ``ReferenceStep(model, opt, pixels, labels)``.
        diagnostics: measures the layers around each step (per-layer
            gradient norms, update ratios); None measures nothing.
        average: the weights' moving average, moved after every step
            (``--ema``); None keeps none.
        epoch: the epoch number, for messages.
        progress: show a progress bar (tqdm, on a terminal).
        max_steps: stop after this many steps (``--dry-run``).

    Returns:
        ``(mean loss, accuracy)`` over the epoch's batches, weighted by batch
        size, measured before each step's update (as Keras reports them).

    Raises:
        NonFiniteLossError: a step's loss was NaN or infinite.
    """
    xp = xp_of(pixels)
    n = len(pixels)
    step = ReferenceStep(model, opt, pixels, labels) if step is None else step
    order = to_device(rng.permutation(n), xp)  # (N,)
    steps = math.ceil(n / batch_size)
    steps = steps if max_steps is None else min(max_steps, steps)
    losses = xp.zeros(steps, dtype=np.float64)  # (steps,), one mean loss per step
    correct = xp.zeros(steps, dtype=np.int64)  # (steps,)
    bar = progress_bar(steps, epoch, progress)
    for i in range(steps):
        batch = order[i * batch_size : (i + 1) * batch_size]  # (B,)
        if diagnostics is not None:
            diagnostics.before_step()
        result = step(batch)
        if diagnostics is not None:
            diagnostics.after_step(result)
        if average is not None:
            average.update(model.params, opt.t)
        losses[i], correct[i] = result.loss, result.correct
        if not bar.disable and i % 20 == 0:  # a read only for a visible bar
            bar.set_postfix(loss=f"{float(losses[i]):.4f}", refresh=False)
        bar.update()
    bar.close()
    sizes = batch_sizes(n, batch_size, steps)
    return epoch_summary(to_numpy(losses), to_numpy(correct), sizes, epoch)


def progress_bar(steps: int, epoch: int, progress: bool) -> Any:
    """The tqdm bar of one epoch's steps (hidden unless ``progress`` and a terminal)."""
    from tqdm import tqdm  # imported when training, so `import backprop` needs NumPy

    return tqdm(
        total=steps,
        desc=f"epoch {epoch}",
        leave=False,
        disable=None if progress else True,
        unit="step",
    )


def loss_and_accuracy(
    model: MLP, x: Array, y: Array, batch_size: int = 4096
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a dataset, read back once.

    Args:
        model: the model.
        x: inputs on the model's device, floats in [0, 1], (N, D).
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
