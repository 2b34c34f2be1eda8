"""Where the time of one training step goes, phase by phase (NumPy engine).

    python benchmarks/profile_step.py                 # writes profile.* in results/
    python benchmarks/profile_step.py --batch-size 1024

Runs the loop of ``backprop.train.train_epoch`` (the fast path: a
``Workspace`` and the in-place ``Adam``) with a clock around each phase of
every step: the batch gather, ``Workspace.forward``, ``Workspace.loss``,
``Workspace.backward``, ``Adam.step``, and the bookkeeping of the loss and
correct count. The forward and backward phases are split again into their
matrix products and the rest by timing the same products alone, on the same
buffers, right after. Reports microseconds per
step (median over the steps of ``--epochs`` epochs) for each phase.
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

from backprop.data import NUM_CLASSES, load_dataset
from backprop.model import MLP, Workspace
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
    p.add_argument("--quiet", action="store_true", help="print nothing")
    return p


def forward_products(ws: Workspace, x) -> None:
    """The matrix products of ``forward`` alone, on the same buffers."""
    params, n, h = ws.model.params, len(x), x
    for i in range(1, ws.model.num_layers + 1):
        np.matmul(h, params[f"dense{i}.w"], out=ws.outs[i - 1][:n])
        h = ws.outs[i - 1][:n]


def backward_products(ws: Workspace, x) -> None:
    """The matrix products of ``backward`` alone, on the same buffers."""
    params, n = ws.model.params, len(x)
    for i in range(ws.model.num_layers, 0, -1):
        dout = ws.douts[i - 1][:n]
        h_in = x if i == 1 else ws.outs[i - 2][:n]
        np.matmul(h_in.T, dout, out=ws.grads[f"dense{i}.w"])
        if i > 1:
            np.matmul(dout, params[f"dense{i}.w"].T, out=ws.douts[i - 2][:n])


PHASES = (
    "gather",
    "forward",
    "loss",
    "backward",
    "adam",
    "bookkeeping",
    "forward products",
    "backward products",
)


def profile(args: argparse.Namespace) -> tuple[list[int], dict[str, list[float]]]:
    """Seconds of each phase at every full-size step of ``--epochs`` epochs.

    Returns:
        the network's sizes, and phase -> seconds at each timed step.
    """
    (x, y), _ = load_dataset("mnist", args.data_dir, "float32")
    x, y = x[: args.train_limit], y[: args.train_limit]
    rng = np.random.default_rng(args.seed)
    model = MLP([x.shape[1], args.hidden, NUM_CLASSES], rng=rng, dtype="float32")
    opt = Adam()
    ws = Workspace(model, args.batch_size)
    times: dict[str, list[float]] = {phase: [] for phase in PHASES}
    clock = time.perf_counter
    steps = len(x) // args.batch_size  # full batches only
    for epoch in range(args.epochs + 1):  # the first epoch warms up
        order = rng.permutation(len(x))
        losses = np.zeros(steps)
        correct = np.zeros(steps, dtype=np.int64)
        for step in range(steps):
            batch = order[step * args.batch_size : (step + 1) * args.batch_size]
            t0 = clock()
            xb, yb = ws.gather(x, y, batch)
            t1 = clock()
            logits = ws.forward(xb)
            t2 = clock()
            loss = ws.loss(logits, yb)
            t3 = clock()
            ws.backward(xb)
            t4 = clock()
            opt.step(model.params, ws.grads)
            t5 = clock()
            losses[step] = loss
            correct[step] = (logits.argmax(axis=1) == yb).sum()
            t6 = clock()
            forward_products(ws, xb)
            t7 = clock()
            backward_products(ws, xb)
            t8 = clock()
            if epoch:
                stamps = (t0, t1, t2, t3, t4, t5, t6, t7, t8)
                for phase, a, b in zip(PHASES, stamps, stamps[1:]):
                    times[phase].append(b - a)
    return model.sizes, times


def summarize(times: dict[str, list[float]]) -> list[dict]:
    """Mean and median microseconds per step of each phase, and its share.

    The means add up to the epoch's time (slow steps included); the medians
    show a typical step. Shares are of the sum of the six phases' means.
    """
    mean = {phase: statistics.fmean(ts) * 1e6 for phase, ts in times.items()}
    median = {phase: statistics.median(ts) * 1e6 for phase, ts in times.items()}
    step = sum(mean[p] for p in PHASES[:6])

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
        *(row(p, [p]) for p in PHASES[:6]),
        row("of forward + backward: the matrix products", products),
        row("of forward + backward: the rest", ["forward", "backward"], products),
        row("step (the six phases)", list(PHASES[:6])),
    ]


def markdown(result: dict) -> str:
    """The profile as a Markdown table."""
    m = result["machine"]
    lines = [
        "# Profile: one training step of the engine (NumPy fast path)",
        "",
        f"Command: `{result['command']}`",
        "",
        machine_line(m),
        "",
        f"Network {result['sizes']}, batch {result['batch_size']}, float32; "
        f"{result['steps_timed']} steps timed. The mean includes the slow steps "
        "(what an epoch pays); the median is a typical step. Share: of the sum "
        "of the six phases' means.",
        "",
        "| phase | mean us/step | median us/step | share of the step |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['phase']} | {r['us_per_step_mean']:.1f} "
        f"| {r['us_per_step_median']:.1f} | {r['share_of_step']:.0%} |"
        for r in result["rows"]
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "blas": blas_info()}
    if hasattr(os, "getloadavg"):
        machine["load_average_at_start"] = list(os.getloadavg())
    sizes, times = profile(args)
    if hasattr(os, "getloadavg"):
        machine["load_average_at_end"] = list(os.getloadavg())
    shown = sys.argv[1:] if argv is None else argv
    result = {
        "command": shlex.join(["python", "benchmarks/profile_step.py", *shown]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine,
        "sizes": sizes,
        "batch_size": args.batch_size,
        "steps_timed": len(times["gather"]),
        "rows": summarize(times),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "profile.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "profile.md").write_text(markdown(result))
    if not args.quiet:
        print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
