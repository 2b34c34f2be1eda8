"""Where the time of one training step goes, phase by phase, in both kernel modes.

    python benchmarks/profile_step.py                 # writes profile.* in results/
    python benchmarks/profile_step.py --batch-size 1024 --kernels fused

Runs the steps of an epoch with a clock around each phase: the batch gather,
the forward pass, the loss (with the correct count), the backward pass and
Adam. ``reference`` is the lectures' code (``x[batch]``, ``MLP.forward``,
``softmax_cross_entropy``, ``MLP.backward``, ``Adam.step``); ``fused`` is
``backprop.kernels.step.FusedStep``'s phases. The forward and backward phases
are split again into their matrix products and the rest by timing the same
products alone, into preallocated buffers, right after. Reports microseconds
per step (mean and median over the full-size steps of ``--epochs`` epochs).
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

import numpy as np
from compare import cpu_model, machine_line
from workers import blas_info

from backprop.data import NUM_CLASSES, load_pixels, to_inputs
from backprop.kernels import kernels_for, warm_up
from backprop.kernels.step import FusedStep
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
        "--out", type=Path, default=HERE / "results", help="folder for the results"
    )
    p.add_argument(
        "--kernels",
        default="reference,fused",
        help="comma-separated modes to profile: reference, fused",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing")
    return p


def products(model: MLP, buffers: FusedStep, x: np.ndarray) -> tuple[float, float]:
    """Seconds of the forward and of the backward matrix products alone."""
    params, n, layers = model.params, len(x), model.num_layers
    t0 = time.perf_counter()
    h = x
    for i in range(1, layers + 1):
        np.matmul(h, params[f"dense{i}.w"], out=buffers.outs[i - 1][:n])
        h = buffers.outs[i - 1][:n]
    t1 = time.perf_counter()
    for i in range(layers, 0, -1):
        dout = buffers.douts[i - 1][:n]
        h_in = x if i == 1 else buffers.outs[i - 2][:n]
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
    times: dict[str, list[float]] = {phase: [] for phase in PHASES + SPLIT}
    clock = time.perf_counter
    steps = len(x) // args.batch_size  # full batches only
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
            if epoch:
                stamps = (t0, t1, t2, t3, t4, t5)
                for phase, a, b in zip(PHASES, stamps, stamps[1:]):
                    times[phase].append(b - a)
                times["forward products"].append(forward_s)
                times["backward products"].append(backward_s)
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


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    modes = args.kernels.split(",")
    unknown = sorted(set(modes) - {"reference", "fused"})
    if unknown:
        parser.error(f"unknown --kernels {', '.join(unknown)}")
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "blas": blas_info()}
    if hasattr(os, "getloadavg"):
        machine["load_average_at_start"] = list(os.getloadavg())
    profiles = {kernels: profile(args, kernels) for kernels in modes}
    if hasattr(os, "getloadavg"):
        machine["load_average_at_end"] = list(os.getloadavg())
    shown = sys.argv[1:] if argv is None else argv
    sizes, times = profiles[modes[0]]
    result = {
        "command": shlex.join(["python", "benchmarks/profile_step.py", *shown]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine,
        "sizes": sizes,
        "batch_size": args.batch_size,
        "steps_timed": len(times["gather"]),
        "modes": {kernels: summarize(t) for kernels, (_, t) in profiles.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "profile.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "profile.md").write_text(markdown(result))
    if not args.quiet:
        print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
