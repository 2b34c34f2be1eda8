"""Where the time of one training step goes, phase by phase, in both kernel modes.

    python benchmarks/profile_step.py                 # writes into runs/benchmarks/
    python benchmarks/profile_step.py --batch-size 1024 --kernels fused
    python benchmarks/profile_step.py --kernels fused,fused-numba1   # threads
    python benchmarks/profile_step.py --densities 0.1,0.2,0.3,0.4,0.5,0.6

Runs the steps of an epoch with a clock around each phase: the batch gather,
the forward pass, the loss (with the correct count), the backward pass and
Adam. ``reference`` is the lectures' code (``x[batch]``, ``MLP.forward``,
``softmax_cross_entropy``, ``MLP.backward``, ``Adam.step``); ``fused`` is
``backprop.kernels.step.FusedStep``'s phases, where the gather groups the
batch's compressed images by pixel and the first layer's two products run on
the non-zero pixels (Numba on all cores, BLAS held to one thread);
``fused-numba1`` is the same step with the threads the other way round
(Numba's kernels on one thread, BLAS on all of its). The forward and backward
phases are split again into their products (the sparse ones and BLAS's) and
the rest by timing the same products alone, into preallocated buffers, right
after. Reports microseconds per step (mean and median over the full-size
steps of ``--epochs`` epochs).

``--densities`` instead times the first layer's two products of one batch,
sparse against dense (gather, then BLAS), on random images of each share of
non-zero pixels: where the lines cross is ``sparse.DENSE_ABOVE``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np
from compare import DEFAULT_OUT, check_settings, cpu_model, fail, machine_line
from workers import blas_info

from backprop.data import NUM_CLASSES, load_pixels, to_inputs
from backprop.kernels import kernels_for, warm_up
from backprop.kernels.step import FusedStep, SparseBatch
from backprop.losses import softmax_cross_entropy
from backprop.model import MLP
from backprop.optim import Adam

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; every default is shown in ``--help``."""
    p = argparse.ArgumentParser(
        prog="python benchmarks/profile_step.py",
        description="Microseconds per training step, phase by phase.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--epochs", type=int, default=2, help="epochs to time")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="IDX folder instead of MNIST")
    p.add_argument(
        "--train-limit", type=int, default=None, help="use the first N examples"
    )
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="folder for the results"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="allow replacing the committed results in benchmarks/results/",
    )
    p.add_argument(
        "--kernels",
        default="reference,fused",
        help="comma-separated modes to profile: " + ", ".join(MODES),
    )
    p.add_argument(
        "--densities",
        default=None,
        help="comma-separated shares of non-zero pixels: time the first layer's "
        "products sparse and dense instead",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing")
    return p


MODES = ("reference", "fused", "fused-numba1")


def products(
    model: MLP, buffers: FusedStep, x: np.ndarray | SparseBatch
) -> tuple[float, float]:
    """Seconds of the forward and of the backward products alone."""
    params, n, layers, k = model.params, len(x), model.num_layers, buffers.k
    t0 = time.perf_counter()
    h = x
    for i in range(1, layers + 1):
        out = buffers.outs[i - 1][:n]
        if isinstance(h, SparseBatch):
            k.sparse_forward(
                buffers.sparse, h.rows, buffers.scale, params["dense1.w"], out
            )
        else:
            np.matmul(h, params[f"dense{i}.w"], out=out)
        h = out
    t1 = time.perf_counter()
    for i in range(layers, 0, -1):
        dout = buffers.douts[i - 1][:n]
        h_in = x if i == 1 else buffers.outs[i - 2][:n]
        if isinstance(h_in, SparseBatch):
            k.sparse_weight_grad(h_in.groups, dout, buffers.grads["dense1.w"])
        else:
            np.matmul(h_in.T, dout, out=buffers.grads[f"dense{i}.w"])
        if i > 1:
            np.matmul(dout, params[f"dense{i}.w"].T, out=buffers.douts[i - 2][:n])
    return t1 - t0, time.perf_counter() - t1


PHASES = ("gather", "forward", "loss", "backward", "adam")
SPLIT = ("forward products", "backward products")


def profile(
    args: argparse.Namespace, kernels: str
) -> tuple[list[int], dict[str, list[float]]]:
    """Seconds of each phase at every full-size step of ``--epochs`` epochs.

    Args:
        args: the flags.
        kernels: ``"reference"`` or ``"fused"``.

    Returns:
        the network's sizes, and phase -> seconds at each timed step.
    """
    (pixels, y), _ = load_pixels("mnist", args.data_dir)
    pixels, y = pixels[: args.train_limit], y[: args.train_limit]
    x = pixels  # (N, D): both steps gather uint8 rows and scale them
    rng = np.random.default_rng(args.seed)
    model = MLP([x.shape[1], args.hidden, NUM_CLASSES], rng=rng, dtype="float32")
    opt = Adam()
    cpu = kernels_for(np)
    warm_up(cpu, "float32")
    fused = FusedStep(model, opt, pixels, y, args.batch_size, cpu)  # also buffers
    threads = numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(1 if kernels == "fused-numba1" else threads)
    blas_with_sparse = None if kernels == "fused-numba1" else 1  # None: all
    times: dict[str, list[float]] = {phase: [] for phase in PHASES + SPLIT}
    clock = time.perf_counter
    steps = len(x) // args.batch_size  # full batches only
    if steps == 0:
        sys.exit(
            f"error: --batch-size {args.batch_size} is larger than the "
            f"{len(x)} training examples; no full batch to time"
        )
    for epoch in range(args.epochs + 1):  # the first epoch warms up
        order = rng.permutation(len(x))
        for step in range(steps):
            batch = order[step * args.batch_size : (step + 1) * args.batch_size]
            t0 = clock()
            if kernels == "reference":
                xb, yb = to_inputs(pixels[batch], "float32"), y[batch]
                t1 = clock()
                logits, caches = model.forward(xb)
                t2 = clock()
                _, dlogits = softmax_cross_entropy(logits, yb)
                int((logits.argmax(axis=1) == yb).sum())
                t3 = clock()
                grads = model.backward(dlogits, caches)
                t4 = clock()
                opt.step(model.params, grads)
            else:
                xb, yb = fused.gather(batch)
                if isinstance(xb, SparseBatch):  # as FusedStep.__call__ does
                    fused.blas.set(blas_with_sparse)
                t1 = clock()
                logits = fused.forward(xb)
                t2 = clock()
                fused.loss(logits, yb)
                t3 = clock()
                fused.backward(xb)
                t4 = clock()
                fused.adam_step()
            t5 = clock()
            forward_s, backward_s = products(model, fused, xb)
            fused.blas.set(None)
            if epoch:
                stamps = (t0, t1, t2, t3, t4, t5)
                for phase, a, b in zip(PHASES, stamps, stamps[1:]):
                    times[phase].append(b - a)
                times["forward products"].append(forward_s)
                times["backward products"].append(backward_s)
    numba.set_num_threads(threads)
    return model.sizes, times


def summarize(times: dict[str, list[float]]) -> list[dict]:
    """Mean and median microseconds per step of each phase, and its share.

    The means add up to the epoch's time (slow steps included); the medians
    show a typical step. Shares are of the sum of the five phases' means.
    """
    mean = {phase: statistics.fmean(ts) * 1e6 for phase, ts in times.items()}
    median = {phase: statistics.median(ts) * 1e6 for phase, ts in times.items()}
    step = sum(mean[p] for p in PHASES)

    def row(label: str, phases: list[str], minus: list[str] = ()) -> dict:
        us = sum(mean[p] for p in phases) - sum(mean[p] for p in minus)
        med = sum(median[p] for p in phases) - sum(median[p] for p in minus)
        return {
            "phase": label,
            "us_per_step_mean": us,
            "us_per_step_median": med,
            "share_of_step": us / step,
        }

    products = ["forward products", "backward products"]
    return [
        *(row(p, [p]) for p in PHASES),
        row("of forward + backward: the matrix products", products),
        row("of forward + backward: the rest", ["forward", "backward"], products),
        row("step (the five phases)", list(PHASES)),
    ]


def markdown(result: dict) -> str:
    """The profile as Markdown: one table per kernel mode."""
    m = result["machine"]
    lines = [
        "# Profile: one training step of the engine, phase by phase",
        "",
        f"Command: `{result['command']}`",
        "",
        machine_line(m),
        "",
        f"Network {result['sizes']}, batch {result['batch_size']}, float32; "
        f"{result['steps_timed']} steps timed per mode. The mean includes the slow "
        "steps (what an epoch pays); the median is a typical step. Share: of the "
        "sum of the five phases' means.",
    ]
    for kernels, rows in result["modes"].items():
        lines += [
            "",
            f"## {kernels}",
            "",
            "| phase | mean us/step | median us/step | share of the step |",
            "| --- | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {r['phase']} | {r['us_per_step_mean']:.1f} "
            f"| {r['us_per_step_median']:.1f} | {r['share_of_step']:.0%} |"
            for r in rows
        ]
    return "\n".join(lines) + "\n"


def crossover(args: argparse.Namespace) -> dict:
    """Microseconds of the first layer's two products, sparse and dense.

    For each share of non-zero pixels, random uint8 images (4096, D) of that
    density; one batch of ``--batch-size`` rows; min over 50 repeats of the
    sparse path (group by pixel, ``sparse_forward``, ``sparse_weight_grad``,
    BLAS held to one thread) and of the dense path (``gather_scale`` and two
    BLAS products on all of BLAS's threads).
    """
    cpu = kernels_for(np)
    warm_up(cpu, "float32")
    rng = np.random.default_rng(args.seed)
    d, h, b = 784, args.hidden, args.batch_size
    w = rng.standard_normal((d, h)).astype(np.float32)  # (D, H)
    dz = rng.standard_normal((b, h)).astype(np.float32)  # (b, H)
    out, dw = np.empty((b, h), np.float32), np.empty((d, h), np.float32)
    x = np.empty((b, d), np.float32)  # (b, D)
    scale = cpu.scale_table(np.float32)
    blas = fused_blas_threads()
    rows = []
    for density in args.densities:
        keep = rng.random((4096, d)) < density
        images = (keep * rng.integers(1, 256, (4096, d))).astype(np.uint8)
        sparse = cpu.compress(images)
        batch = rng.permutation(4096)[:b].astype(np.int64)

        def sparse_path(sparse=sparse, batch=batch) -> None:
            blas.set(1)
            groups = cpu.group_by_pixel(sparse, batch, scale)
            cpu.sparse_forward(sparse, batch, scale, w, out)
            cpu.sparse_weight_grad(groups, dz, dw)
            blas.set(None)

        def dense_path(images=images, batch=batch) -> None:
            cpu.gather_scale(images, batch, x)
            np.matmul(x, w, out=out)
            np.matmul(x.T, dz, out=dw)

        row = {"density": density}
        for name, fn in (("sparse_us", sparse_path), ("dense_us", dense_path)):
            fn()
            samples = []
            for _ in range(50):
                t0 = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - t0)
            row[name] = min(samples) * 1e6
        rows.append(row)
    return {"batch_size": b, "hidden": h, "rows": rows}


def fused_blas_threads() -> object:
    """The step's BLAS thread setter (``backprop.kernels.step.BlasThreads``)."""
    from backprop.kernels.step import BlasThreads

    return BlasThreads()


def crossover_markdown(result: dict) -> str:
    """The density table as Markdown."""
    lines = [
        "# The first layer's two products: sparse against dense",
        "",
        f"Command: `{result['command']}`",
        "",
        machine_line(result["machine"]),
        "",
        f"Batch {result['batch_size']}, 784 pixels, {result['hidden']} hidden "
        "units, float32; min of 50 repeats each.",
        "",
        "| non-zero pixels | sparse us | dense us | sparse / dense |",
        "| ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['density']:.0%} | {r['sparse_us']:.1f} | {r['dense_us']:.1f} "
        f"| {r['sparse_us'] / r['dense_us']:.2f} |"
        for r in result["rows"]
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.epochs < 1:
        fail(parser, "--epochs must be >= 1")
    modes = args.kernels.split(",")
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        fail(parser, f"unknown --kernels {', '.join(unknown)}")
    if args.densities is not None:
        try:
            args.densities = [float(v) for v in args.densities.split(",")]
        except ValueError:
            fail(parser, f"--densities: not numbers: {args.densities}")
        if not all(0 <= v <= 1 for v in args.densities):
            fail(parser, "--densities must be shares between 0 and 1")
    names = ("crossover.json", "crossover.md") if args.densities else FILES
    check_settings(parser, args, names)
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "blas": blas_info()}
    if hasattr(os, "getloadavg"):
        machine["load_average_at_start"] = list(os.getloadavg())
    shown = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "benchmarks/profile_step.py", *shown])
    if args.densities:
        result = {"command": command, **crossover(args)}
        if hasattr(os, "getloadavg"):
            machine["load_average_at_end"] = list(os.getloadavg())
        result["machine"] = machine
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / names[0]).write_text(json.dumps(result, indent=2) + "\n")
        (args.out / names[1]).write_text(crossover_markdown(result))
        if not args.quiet:
            print(crossover_markdown(result))
        return 0
    profiles = {kernels: profile(args, kernels) for kernels in modes}
    if hasattr(os, "getloadavg"):
        machine["load_average_at_end"] = list(os.getloadavg())
    sizes, times = profiles[modes[0]]
    result = {
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine,
        "sizes": sizes,
        "batch_size": args.batch_size,
        "steps_timed": len(times["gather"]),
        "modes": {kernels: summarize(t) for kernels, (_, t) in profiles.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / FILES[0]).write_text(json.dumps(result, indent=2) + "\n")
    (args.out / FILES[1]).write_text(markdown(result))
    if not args.quiet:
        print(markdown(result))
    return 0


FILES = ("profile.json", "profile.md")


if __name__ == "__main__":
    sys.exit(main())
