"""Train the paper's MLP on MNIST with TensorFlow: the reference for the engine.

    python -m tf_reference.train             # the paper's experiment, 20 epochs
    python -m tf_reference.train --seed 1    # beside python -m backprop.train --seed 1
    python -m tf_reference.train --help

This file follows ``backprop/app/trainer.py`` step for step, so the two can be read
side by side: one NumPy generator seeded by ``--seed`` draws the initial
weights (the very numbers the engine starts from, unless ``--init tf``) and
then each epoch's permutation (the engine's batch order). Each step is the
paper's: the model's softmax probabilities, Keras's categorical cross-entropy,
``tf.GradientTape``, ``tf.optimizers.Adam``. The per-epoch line and
history.json have the engine's format; model.npz is an engine checkpoint, so
``python -m backprop.train --resume <out>/model.npz --epochs N`` continues a
TensorFlow run with the engine.

TensorFlow runs on the CPU (see ``tf_reference``), eagerly like the paper's
code unless ``--tf-function``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backprop.app.commands.flags_and_errors import (
    HelpFormatter,
    Parser,
    add_output_flags,
    add_training_flags,
    on_interrupt,
    run_command,
)
from backprop.app.config import TrainConfig
from backprop.app.evaluation.metrics import classification_report, format_report
from backprop.app.finite import check_finite
from backprop.app.memory import check_fits
from backprop.app.records import epoch_line, epoch_record, headline
from backprop.app.runs import (
    CONFIG_FILE,
    REPORT_FILE,
    RUN_OUTPUTS,
    Checkpoint,
    OutputFolder,
    RunWriter,
    atomic_write_text,
    data_record,
    library_versions,
    load_checkpoint,
    new_run_dir,
    write_json,
)
from backprop.data import CLASS_NAMES, NUM_CLASSES, load_dataset
from backprop.loop import batch_sizes, epoch_summary, progress_bar
from backprop.model import MLP
from tf_reference.convert import adam_state, module_to_params, params_to_module
from tf_reference.paper_model import (
    Sequential,
    paper_loss,
    paper_model,
    paper_optimizer,
    tf,
)

INITS = ("engine", "tf")
StepFn = Callable[..., tuple[tf.Tensor, tf.Tensor]]


@dataclass(frozen=True)
class TFConfig(TrainConfig):
    """One reference run: the shared settings, plus where the weights come from."""

    init: str = "engine"
    weights: str | None = None
    tf_function: bool = False


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; those shared with ``backprop.train`` mean the same."""
    d = TFConfig()
    p = Parser(
        prog="python -m tf_reference.train",
        description="Train the paper's MLP on MNIST with TensorFlow (the reference).",
        formatter_class=HelpFormatter,
    )
    add_training_flags(p, d)
    p.add_argument(
        "--init",
        choices=INITS,
        default=d.init,
        help="engine: the weights python -m backprop.train --seed S starts from; "
        "tf: tf.random.truncated_normal after tf.random.set_seed(S), as the paper",
    )
    p.add_argument(
        "--weights",
        default=d.weights,
        help="start from the weights of this engine checkpoint (a model.npz)",
    )
    p.add_argument(
        "--tf-function",
        action="store_true",
        help="compile the step with tf.function; Keras then computes the loss "
        "from the logits and skips its clip (faster, not the paper's eager path)",
    )
    add_output_flags(p, "a new folder under runs/")
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar or per-epoch lines"
    )
    return p


def train_step(
    model: Sequential, opt: tf.optimizers.Adam, xb: tf.Tensor, yb: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """One step of the paper's loop: forward on a tape, gradients, Adam.

    Args:
        model: updated in place.
        opt: the optimizer.
        xb: a batch of inputs, (B, D).
        yb: its integer labels, (B,).

    Returns:
        ``(loss, probs)``: the batch's mean loss and the (B, C) probabilities,
        both from before the update.
    """
    y_true = tf.one_hot(yb, NUM_CLASSES, dtype=xb.dtype)  # (B, C)
    with tf.GradientTape() as tape:
        probs = model(xb)  # (B, C)
        loss = paper_loss(y_true, probs)
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    return loss, probs


def train_epoch(
    model: Sequential,
    opt: tf.optimizers.Adam,
    x: tf.Tensor,
    y: tf.Tensor,
    batch_size: int,
    rng: np.random.Generator,
    *,
    epoch: int = 1,
    progress: bool = False,
    step: StepFn = train_step,
    order: np.ndarray | None = None,
) -> tuple[float, float]:
    """One pass over the training set in a fresh random order.

    The permutation comes from the run's NumPy generator, exactly as in
    ``backprop.loop.train_epoch``, so a run with the same seed visits the
    batches in the engine's order.

    Args:
        model: updated in place.
        opt: the optimizer.
        x: training inputs, (N, D).
        y: integer labels, (N,).
        batch_size: examples per step; the last batch may be smaller.
        rng: the run's generator; draws this epoch's permutation.
        epoch: the epoch number, for messages.
        progress: show a progress bar.
        step: ``train_step``, or it compiled by ``tf.function``.
        order: a permutation of range(N) to use instead of drawing one.

    Returns:
        ``(mean loss, accuracy)`` over the epoch's batches, weighted by batch
        size, measured before each step's update (as Keras reports them).

    Raises:
        NonFiniteLossError: a step's loss was NaN or infinite.
    """
    n = int(x.shape[0])
    order = rng.permutation(n) if order is None else np.asarray(order)  # (N,)
    steps = math.ceil(n / batch_size)
    losses = np.zeros(steps, dtype=np.float64)  # (steps,), one mean loss per step
    correct = np.zeros(steps, dtype=np.int64)  # (steps,)
    bar = progress_bar(steps, epoch, progress)
    for i in range(steps):
        batch = order[i * batch_size : (i + 1) * batch_size]  # (B,)
        xb, yb = tf.gather(x, batch), tf.gather(y, batch)  # (B, D), (B,)
        loss, probs = step(model, opt, xb, yb)
        losses[i] = float(loss)
        correct[i] = int(tf.reduce_sum(tf.cast(tf.argmax(probs, 1) == yb, tf.int64)))
        if progress and i % 20 == 0:
            bar.set_postfix(loss=f"{losses[i]:.4f}", refresh=False)
        bar.update()
    bar.close()
    return epoch_summary(losses, correct, batch_sizes(n, batch_size, steps), epoch)


def loss_and_accuracy(
    model: Sequential, x: tf.Tensor, y: tf.Tensor, batch_size: int = 4096
) -> tuple[float, float]:
    """Mean loss (the paper's, clipped) and accuracy over a dataset.

    Args:
        model: the model.
        x: inputs, (N, D).
        y: integer labels, (N,).
        batch_size: rows per forward pass.

    Returns:
        ``(loss, accuracy)`` as floats.
    """
    total_loss, total_correct = 0.0, 0
    n = int(x.shape[0])
    for i in range(0, n, batch_size):
        probs = model(x[i : i + batch_size])  # (B, C)
        yb = y[i : i + batch_size]  # (B,)
        y_true = tf.one_hot(yb, NUM_CLASSES, dtype=probs.dtype)  # (B, C)
        total_loss += float(paper_loss(y_true, probs)) * int(yb.shape[0])
        total_correct += int(tf.reduce_sum(tf.cast(tf.argmax(probs, 1) == yb, "int64")))
    n = max(n, 1)
    return total_loss / n, total_correct / n


def engine_config(cfg: TFConfig, sizes: list[int]) -> dict:
    """The run's settings as ``backprop.train`` writes them, for its ``--resume``."""
    return {
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "hidden": list(cfg.hidden),
        "seed": cfg.seed,
        "device": "cpu",
        "dtype": cfg.dtype,
        "dataset": cfg.dataset,
        "data_dir": cfg.data_dir,
        "init": "paper",  # truncated normal, stddev 0.1, whoever drew it
        "adam": "keras",
        "sizes": sizes,
        "trained_by": f"tf_reference (TensorFlow {tf.__version__})",
    }


def run(cfg: TFConfig, *, out: Path | None, quiet: bool) -> int:
    """Train as configured; the body of ``main`` once flags are parsed."""
    cfg.validate()

    # The run's one generator: it draws the initial weights, then each
    # epoch's permutation.
    rng = np.random.default_rng(cfg.seed)
    digests: dict[str, str] = {}  # the SHA-256 of the four files, by name
    (x_train, y_train), (x_test, y_test) = load_dataset(
        cfg.dataset, cfg.data_dir, cfg.dtype, digests
    )
    data = data_record(cfg.dataset, cfg.data_dir, digests)
    sizes = [x_train.shape[1], *cfg.hidden, NUM_CLASSES]
    check_fits(sizes, cfg.batch_size, len(x_train), len(x_test), cfg.dtype)
    engine_init = MLP(sizes, rng=rng, dtype=cfg.dtype, init="paper")  # as the engine
    model = paper_model(cfg.hidden, NUM_CLASSES, dtype=tf.as_dtype(cfg.dtype))
    if cfg.weights is not None:
        params_to_module(load_checkpoint(cfg.weights).params, model)
    elif cfg.init == "engine":
        params_to_module(engine_init.params, model)
    else:
        tf.random.set_seed(cfg.seed)
        model(tf.zeros([1, sizes[0]], cfg.dtype))  # the layers draw their weights
    opt = paper_optimizer(cfg.lr)
    opt.build(model.trainable_variables)
    step = tf.function(train_step) if cfg.tf_function else train_step
    history: list[dict] = []
    x_train, y_train = tf.constant(x_train), tf.constant(y_train)
    x_test, y_test = tf.constant(x_test), tf.constant(y_test)

    out = out or new_run_dir(f"{cfg.dataset}-seed{cfg.seed}-tf")
    out.mkdir(parents=True, exist_ok=True)
    writer = RunWriter(out)
    run_config = {
        **dataclasses.asdict(cfg),
        "sizes": sizes,
        "tensorflow": tf.__version__,
        "data": data,  # where the data was, and the SHA-256 of its files
    }

    def checkpoint() -> None:
        writer.save(
            Checkpoint(
                module_to_params(model),
                adam_state(opt, model),
                rng.bit_generator.state,
                {**engine_config(cfg, sizes), "data": data},
                history,
                {**library_versions(), "tensorflow": tf.__version__},
            ),
        )

    with writer.guarding():
        write_json(out / CONFIG_FILE, run_config)
        checkpoint()  # epoch 0
        if not quiet:
            mode = "tf.function" if cfg.tf_function else "eager"
            print(
                f"training {sizes} with TensorFlow {tf.__version__} on the CPU "
                f"({cfg.dtype}, {mode}), {len(x_train)} examples; writing to {out}"
            )
        for epoch in range(1, cfg.epochs + 1):
            start = time.perf_counter()
            train = train_epoch(
                model,
                opt,
                x_train,
                y_train,
                cfg.batch_size,
                rng,
                epoch=epoch,
                progress=not quiet,
                step=step,
            )
            test = loss_and_accuracy(model, x_test, y_test)
            record = epoch_record(epoch, train, test, time.perf_counter() - start)
            state = {**module_to_params(model), **adam_state(opt, model)}
            check_finite(epoch, record, state)
            history.append(record)
            checkpoint()
            if not quiet:
                print(epoch_line(record, cfg.epochs), flush=True)
    with writer.guarding(f"after training, while writing the report in {out}"):
        finish(cfg, model, out, x_test, y_test, history[-1], quiet=quiet)
    return 0


def finish(
    cfg: TFConfig,
    model: Sequential,
    out: Path,
    x_test: tf.Tensor,
    y_test: tf.Tensor,
    last: dict,
    *,
    quiet: bool,
) -> None:
    """After the epochs: the report and the headline."""
    y_pred = np.concatenate(
        [
            tf.argmax(model(x_test[i : i + 4096]), 1).numpy()
            for i in range(0, len(x_test), 4096)
        ]
    )
    names = CLASS_NAMES.get(
        cfg.dataset if cfg.data_dir is None else "mnist", CLASS_NAMES["mnist"]
    )
    report = format_report(classification_report(y_test.numpy(), y_pred, names))
    atomic_write_text(out / REPORT_FILE, report)
    if not quiet:
        print("\n" + report)
    paper_data = cfg.dataset == "mnist" and cfg.data_dir is None
    print(headline(last, paper_data) + f"; results in {out}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg = TFConfig.from_namespace(args)

    def body() -> int:
        cfg.validate()
        out = args.out or new_run_dir(f"{cfg.dataset}-seed{cfg.seed}-tf")
        with OutputFolder(out, RUN_OUTPUTS, replace=args.overwrite):
            with on_interrupt("interrupted before training; nothing written"):
                return run(cfg, out=out, quiet=args.quiet)

    return run_command(parser, body)


if __name__ == "__main__":
    sys.exit(main())
