"""One implementation of the paper's training, timed: run by ``compare.py``.

    python benchmarks/workers.py engine-fused --epochs 3 --json-out row.json

Each call trains one implementation in this process and writes one JSON object
(the seconds of every timed epoch, the final test accuracy, the peak resident
memory, the BLAS that NumPy uses) to ``--json-out``. ``compare.py`` starts one
such process per implementation and round, so no implementation inherits
another's threads, caches or memory.

Every implementation gets the same work: the same training and test data
(float32 in [0, 1]), the same initial weights (drawn by the engine's ``MLP``
from ``--seed``), the same batch size, learning rate and Adam settings, and, in
every loop written out here, the same batch order (each epoch's permutation is
drawn from the same NumPy generator, as ``backprop.train`` does). Keras
``fit`` shuffles by itself.

The implementations (``IMPLEMENTATIONS``):

* ``engine-fused``: ``backprop.loop.train_epoch`` on NumPy with the fused
  step (``backprop.kernels.step.FusedStep``, Numba kernels around BLAS).
* ``engine-reference``: the same loop with the reference step,
  ``MLP.loss_and_grads`` then ``Adam.step``: the lectures' code.
* ``engine-cupy``: the reference step on CuPy (needs a GPU).
* ``tf-eager``: the paper's ``tf.GradientTape`` loop, ``tf_reference.train``.
* ``tf-function``: the same step compiled by ``tf.function``.
* ``keras-fit``: the same network and optimizer in Keras, ``model.fit``.
* ``pytorch``: ``nn.Linear`` layers and ``torch.optim.Adam`` (optional).
* ``matmul-bound``: no training; times the float32 matrix products of one
  epoch (NumPy's BLAS), the least time any implementation that multiplies
  every pixel, zero or not, needs on this CPU.
* ``sparse-bound``: no training; the multiply-adds of an epoch when the first
  layer skips the zero pixels (2 per non-zero pixel and hidden unit: forward
  and weight gradient) plus the other layers' products, at the machine's
  measured peak rate (a cache-resident float32 BLAS product).
* ``adam-bound``: no training; Adam's memory traffic per epoch (per step it
  reads parameters, gradients and both moments and writes back three: 7
  float32 per parameter) at the measured bandwidth of a NumPy ``a + b`` on
  arrays of the parameters' size (the cache level Adam works in).
* ``engine-cnn``, ``pytorch-cnn``, ``keras-cnn``: LeNet-5 in the engine,
  PyTorch and Keras (``cnn_workers.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
from cnn_workers import CNN_ROWS, run_cnn

from backprop.data import NUM_CLASSES, load_dataset, load_pixels
from backprop.device import get_xp, synchronize, to_device
from backprop.kernels import make_step
from backprop.loop import loss_and_accuracy, train_epoch
from backprop.model import MLP
from backprop.optim import Adam

ROOT = Path(__file__).resolve().parents[1]

IMPLEMENTATIONS = (
    "engine-fused",
    "engine-reference",
    "engine-cupy",
    "tf-eager",
    "tf-function",
    "keras-fit",
    "pytorch",
    "matmul-bound",
    "sparse-bound",
    "adam-bound",
    *CNN_ROWS,  # LeNet-5: cnn_workers.py
)
BOUNDS = ("matmul-bound", "sparse-bound", "adam-bound")  # not training runs
LR = 1e-3


def build_parser() -> argparse.ArgumentParser:
    """The worker's flags; compare.py passes the same ones to every worker."""
    p = argparse.ArgumentParser(
        prog="python benchmarks/workers.py",
        description="Train and time one implementation; write one JSON object.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("implementation", choices=IMPLEMENTATIONS)
    p.add_argument("--json-out", type=Path, required=True, help="where to write")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    p.add_argument("--batch-size", type=int, default=256, help="examples per step")
    p.add_argument("--hidden", type=int, default=128, help="hidden width")
    p.add_argument("--seed", type=int, default=0, help="weights and batch order")
    p.add_argument("--data-dir", default=None, help="IDX folder instead of MNIST")
    p.add_argument(
        "--train-limit", type=int, default=None, help="use the first N examples"
    )
    p.add_argument(
        "--test-limit", type=int, default=None, help="use the first N test examples"
    )
    return p


def load_data(args: argparse.Namespace) -> tuple:
    """``(x_train, y_train), (x_test, y_test)`` as NumPy float32 and int64."""
    (x, y), (xt, yt) = load_dataset("mnist", args.data_dir, "float32")
    return (x[: args.train_limit], y[: args.train_limit]), (
        xt[: args.test_limit],
        yt[: args.test_limit],
    )


def blas_info() -> dict:
    """NumPy's BLAS as threadpoolctl sees it: library, version, kernel, threads."""
    info = {
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
    }
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {**info, "library": "unknown (threadpoolctl is not installed)"}
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return {
                **info,
                "library": pool.get("internal_api"),
                "version": pool.get("version"),
                "kernel": pool.get("architecture"),
                "threads": pool.get("num_threads"),
                "file": Path(pool.get("filepath", "")).name,
            }
    return {**info, "library": "unknown"}


def versions() -> dict:
    """Versions of the libraries this process imported."""
    found = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("tensorflow", "keras", "torch", "cupy"):
        module = sys.modules.get(name)
        if module is not None:
            found[name] = getattr(module, "__version__", "?")
    return found


def initial_model(sizes: list[int], seed: int) -> tuple[MLP, np.random.Generator]:
    """The engine's initial weights and the generator that then draws batches.

    As in ``backprop.train``: one generator seeded by ``seed`` draws the
    weights, then each epoch's permutation.
    """
    rng = np.random.default_rng(seed)
    return MLP(sizes, rng=rng, dtype="float32", device="cpu"), rng


def timed_epochs(run_epoch, warmup: int, epochs: int, sync=lambda: None) -> list:
    """Run ``warmup`` untimed epochs, then time ``epochs`` of ``run_epoch()``."""
    for _ in range(warmup):
        run_epoch()
    sync()
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        run_epoch()
        sync()  # queued GPU work is part of the epoch
        seconds.append(time.perf_counter() - start)
    return seconds


def run_engine(args, data, sizes, device: str, kernels: str) -> dict:
    """The hand-written engine: ``train_epoch`` with the reference or fused step."""
    (x, y), (xt, yt) = data
    model, rng = initial_model(sizes, args.seed)
    xp = get_xp(device)
    if device == "gpu":
        model = MLP.from_params(model.params, device="gpu")
    # both steps gather and scale the uint8 pixels, a batch at a time
    (pixels, _), _ = load_pixels("mnist", args.data_dir)
    x = pixels[: args.train_limit]  # (N, D), the pixels x was made from
    x, y, xt, yt = (to_device(a, xp) for a in (x, y, xt, yt))
    opt = Adam(lr=LR)
    step = make_step(kernels, model, opt, x, y, args.batch_size)  # compiles here

    def run_epoch() -> None:
        train_epoch(model, opt, x, y, args.batch_size, rng, step=step)

    seconds = timed_epochs(run_epoch, args.warmup, args.epochs, lambda: synchronize(xp))
    return {
        "epoch_seconds": seconds,
        "test_accuracy": loss_and_accuracy(model, xt, yt)[1],
    }


def gpu_name() -> str | None:
    """The name of CUDA device 0, when CuPy sees one."""
    from backprop.device import gpu_status

    if gpu_status() is not None:
        return None
    import cupy

    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def run_tf(args, data, sizes, compiled: bool) -> dict:
    """The paper's ``tf.GradientTape`` loop from ``tf_reference``, eager or not."""
    import tensorflow as tf

    from tf_reference.convert import params_to_module
    from tf_reference.paper_model import paper_optimizer
    from tf_reference.tape_training import loss_and_accuracy as tf_loss_and_accuracy
    from tf_reference.tape_training import train_epoch as tf_train_epoch
    from tf_reference.tape_training import train_step

    (x, y), (xt, yt) = data
    engine_model, rng = initial_model(sizes, args.seed)
    model = params_to_module(engine_model.params)
    opt = paper_optimizer(LR)
    step = tf.function(train_step) if compiled else train_step
    x, y = tf.constant(x), tf.constant(y)

    def run_epoch() -> None:
        tf_train_epoch(model, opt, x, y, args.batch_size, rng, step=step)

    seconds = timed_epochs(run_epoch, args.warmup, args.epochs)
    accuracy = tf_loss_and_accuracy(model, tf.constant(xt), tf.constant(yt))[1]
    return {"epoch_seconds": seconds, "test_accuracy": accuracy}


def run_keras(args, data, sizes) -> dict:
    """The same network in Keras, trained by ``model.fit`` (it shuffles itself)."""
    import keras

    from tf_reference.convert import keras_model

    (x, y), (xt, yt) = data
    engine_model, _ = initial_model(sizes, args.seed)
    model = keras_model(engine_model.params)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LR),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    y_onehot = np.eye(NUM_CLASSES, dtype=np.float32)[y]  # (N, C)

    class EpochTimer(keras.callbacks.Callback):
        """Seconds of every epoch that fit runs."""

        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.seconds.append(time.perf_counter() - self.start)

    timer = EpochTimer()
    model.fit(
        x,
        y_onehot,
        batch_size=args.batch_size,
        epochs=args.warmup + args.epochs,
        shuffle=True,
        verbose=0,
        callbacks=[timer],
    )
    probs = model.predict(xt, batch_size=4096, verbose=0)  # (N, C)
    accuracy = float((probs.argmax(axis=1) == yt).mean())
    return {"epoch_seconds": timer.seconds[args.warmup :], "test_accuracy": accuracy}


def run_pytorch(args, data, sizes) -> dict:
    """``nn.Linear`` layers, ``F.cross_entropy`` and ``torch.optim.Adam``."""
    import torch
    from torch import nn
    from torch.nn import functional

    (x, y), (xt, yt) = data
    engine_model, rng = initial_model(sizes, args.seed)
    count = len(sizes) - 1
    layers: list[nn.Module] = []
    for i in range(1, count + 1):
        linear = nn.Linear(sizes[i - 1], sizes[i])
        with torch.no_grad():  # torch keeps weights (H, D): the engine's transpose
            linear.weight.copy_(torch.from_numpy(engine_model.params[f"dense{i}.w"].T))
            linear.bias.copy_(torch.from_numpy(engine_model.params[f"dense{i}.b"]))
        layers += [linear, nn.ReLU()] if i < count else [linear]
    model = nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=LR, eps=1e-7)
    x, y = torch.from_numpy(x), torch.from_numpy(y)

    def run_epoch() -> None:
        order = torch.from_numpy(rng.permutation(len(x)))  # (N,)
        steps = math.ceil(len(x) / args.batch_size)
        losses = torch.zeros(steps)  # (steps,), read once at the end, like the engine
        correct = torch.zeros(steps, dtype=torch.int64)
        for i in range(steps):
            batch = order[i * args.batch_size : (i + 1) * args.batch_size]
            xb, yb = x[batch], y[batch]  # (B, D), (B,)
            logits = model(xb)  # (B, C)
            loss = functional.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses[i] = loss.detach()
            correct[i] = (logits.detach().argmax(1) == yb).sum()

    seconds = timed_epochs(run_epoch, args.warmup, args.epochs)
    with torch.no_grad():
        predicted = model(torch.from_numpy(xt)).argmax(1).numpy()
    return {
        "epoch_seconds": seconds,
        "test_accuracy": float((predicted == yt).mean()),
        "torch_threads": torch.get_num_threads(),
    }


def matmul_shapes(sizes: list[int], n: int) -> list[tuple[str, tuple, tuple]]:
    """The matrix products of one training step on a batch of n rows.

    Returns:
        ``(label, shape of a, shape of b)`` for each product ``a @ b``: the
        forward product of every layer, its weight gradient, and (after the
        first layer) the gradient of its input.
    """
    shapes = []
    for i, (d, h) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        shapes.append((f"forward {i}: ({n},{d}) @ ({d},{h})", (n, d), (d, h)))
        shapes.append((f"weight grad {i}: ({d},{n}) @ ({n},{h})", (d, n), (n, h)))
        if i > 1:
            shapes.append((f"input grad {i}: ({n},{h}) @ ({h},{d})", (n, h), (h, d)))
    return shapes


def time_matmul(a_shape: tuple, b_shape: tuple, repeats: int = 25) -> float:
    """Seconds of one float32 ``a @ b`` into a preallocated output: min of N.

    Each of ``repeats`` samples times about 2 ms of back-to-back products;
    the fastest sample is kept, so that work from other processes on a
    shared machine adds as little as it can.
    """
    rng = np.random.default_rng(0)
    a = rng.random(a_shape, dtype=np.float32)
    b = rng.random(b_shape, dtype=np.float32)
    out = np.empty((a_shape[0], b_shape[1]), np.float32)
    np.matmul(a, b, out=out)
    start = time.perf_counter()
    np.matmul(a, b, out=out)
    first = time.perf_counter() - start
    number = max(1, min(1000, int(0.002 / max(first, 1e-7))))  # ~2 ms per sample
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            np.matmul(a, b, out=out)
        samples.append((time.perf_counter() - start) / number)
    return min(samples)


def run_matmul_bound(args, data, sizes) -> dict:
    """Seconds per epoch of the matrix products alone, at this BLAS's speed.

    An epoch is ``N // B`` full batches and one smaller one; each step does
    the products of ``matmul_shapes``. The same is timed once per "epoch" so
    the result has the rows' format (one sample per process).
    """
    n = len(data[0][0])
    full, rest = divmod(n, args.batch_size)
    products = []
    step_seconds = {args.batch_size: 0.0, rest: 0.0}
    for rows in sorted({args.batch_size, rest} - {0}):
        for label, a_shape, b_shape in matmul_shapes(sizes, rows):
            seconds = time_matmul(a_shape, b_shape)
            step_seconds[rows] += seconds
            flops = 2 * a_shape[0] * a_shape[1] * b_shape[1]
            products.append(
                {
                    "product": label,
                    "microseconds": seconds * 1e6,
                    "gflop_per_s": flops / seconds / 1e9,
                }
            )
    epoch = full * step_seconds[args.batch_size] + (rest and step_seconds[rest])
    flops_per_epoch = sum(
        count * 2 * a[0] * a[1] * b[1]
        for count, rows in ((full, args.batch_size), (1 if rest else 0, rest))
        for _, a, b in matmul_shapes(sizes, rows)
    )
    return {
        "epoch_seconds": [epoch],
        "test_accuracy": None,
        "gflop_per_epoch": flops_per_epoch / 1e9,
        "products": products,
    }


def peak_rate() -> tuple[float, dict]:
    """FLOP/s of a cache-resident float32 product, (256, 256) @ (256, 256)."""
    seconds = time_matmul((256, 256), (256, 256), repeats=100)
    flops = 2 * 256**3
    row = {
        "product": "peak: (256,256) @ (256,256), float32, in cache",
        "microseconds": seconds * 1e6,
        "gflop_per_s": flops / seconds / 1e9,
    }
    return flops / seconds, row


def run_sparse_bound(args, data, sizes) -> dict:
    """Seconds per epoch of the multiply-adds left when zero pixels are skipped."""
    (pixels, _), _ = load_pixels("mnist", args.data_dir)
    pixels = pixels[: args.train_limit]  # (N, D)
    n = len(pixels)
    nonzeros = int(np.count_nonzero(pixels))
    first = 2 * 2 * nonzeros * sizes[1]  # forward and weight gradient, 2 FLOP each
    full, rest = divmod(n, args.batch_size)
    others = sum(
        count * 2 * a[0] * a[1] * b[1]
        for count, rows in ((full, args.batch_size), (1 if rest else 0, rest))
        for label, a, b in matmul_shapes(sizes, rows)
        if not label.startswith(("forward 1:", "weight grad 1:"))
    )
    rate, row = peak_rate()
    return {
        "epoch_seconds": [(first + others) / rate],
        "test_accuracy": None,
        "gflop_per_epoch": (first + others) / 1e9,
        "nonzero_share": nonzeros / max(1, pixels.size),
        "products": [row],
    }


def run_adam_bound(args, data, sizes) -> dict:
    """Seconds per epoch of Adam's memory traffic at the measured bandwidth."""
    params = sum(d * h + h for d, h in zip(sizes[:-1], sizes[1:]))
    a, b, c = (np.ones(params, np.float32) for _ in range(3))  # (P,) each
    np.add(a, b, out=c)
    samples = []
    for _ in range(200):
        start = time.perf_counter()
        np.add(a, b, out=c)
        samples.append(time.perf_counter() - start)
    bandwidth = 3 * 4 * params / min(samples)  # bytes/s: read a, b; write c
    steps = math.ceil(len(data[0][0]) / args.batch_size)
    traffic = steps * 7 * 4 * params  # bytes per epoch
    return {
        "epoch_seconds": [traffic / bandwidth],
        "test_accuracy": None,
        "gbyte_per_epoch": traffic / 1e9,
        "gbyte_per_s": bandwidth / 1e9,
    }


def run(args: argparse.Namespace) -> dict:
    """Train and time ``args.implementation``; the worker's result."""
    data = load_data(args)
    sizes = [data[0][0].shape[1], args.hidden, NUM_CLASSES]
    name = args.implementation
    device = "cpu"
    if name == "engine-fused":
        result = run_engine(args, data, sizes, "cpu", "fused")
    elif name == "engine-reference":
        result = run_engine(args, data, sizes, "cpu", "reference")
    elif name == "engine-cupy":
        device = f"gpu ({gpu_name()})"
        result = run_engine(args, data, sizes, "gpu", "reference")
    elif name in ("tf-eager", "tf-function"):
        result = run_tf(args, data, sizes, compiled=name == "tf-function")
    elif name == "keras-fit":
        result = run_keras(args, data, sizes)
    elif name == "pytorch":
        result = run_pytorch(args, data, sizes)
    elif name == "sparse-bound":
        result = run_sparse_bound(args, data, sizes)
    elif name == "adam-bound":
        result = run_adam_bound(args, data, sizes)
    elif name in CNN_ROWS:
        result = run_cnn(name, args, data, timed_epochs)
        sizes = result.pop("sizes")
    else:
        result = run_matmul_bound(args, data, sizes)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "implementation": name,
        "device": device,
        **result,
        "train_examples": len(data[0][0]),
        "sizes": sizes,
        "peak_rss_mib": usage.ru_maxrss / 1024,  # Linux reports KiB
        "blas": blas_info(),
        "versions": versions(),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    result = run(args)
    args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
