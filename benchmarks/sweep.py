"""How the engine's cost grows with the work: a sweep of batch size and width.

    python benchmarks/sweep.py                       # writes sweep.* in results/
    python benchmarks/sweep.py --rounds 1 --train-limit 10000

Trains the engine (NumPy, ``backprop.loop.train_epoch``) for one epoch per
configuration and round: first the batch size from 32 to 4096 at the paper's
width (128), then the hidden width from 32 to 2048 at the paper's batch size
(256). Rounds visit the configurations in a rotated order and the table gives
the median. For each configuration it also times the float32 matrix products
of an epoch alone (``workers.matmul_shapes``), so the table shows how much of
the epoch the products take and how many GFLOP/s training reaches: small
batches pay Python's per-step overhead on little arithmetic; large ones
approach the BLAS's speed.

Writes ``sweep.json``, ``sweep.md`` and ``sweep.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from compare import DEFAULT_OUT, check_settings, cpu_model, fail, machine_line
from workers import blas_info, matmul_shapes, time_matmul

from backprop.data import NUM_CLASSES, load_pixels
from backprop.loop import train_epoch
from backprop.model import MLP
from backprop.optim import Adam

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

PAPER_BATCH, PAPER_WIDTH = 256, 128


def int_list(text: str) -> list[int]:
    """Parse ``32,64,128`` into a list of positive ints."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers like 32,64, got {text!r}"
        ) from None
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"values must be >= 1, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; every default is shown in ``--help``."""
    p = argparse.ArgumentParser(
        prog="python benchmarks/sweep.py",
        description="Seconds per epoch of the engine against batch size and width.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--batch-sizes",
        type=int_list,
        default=[32, 64, 128, 256, 512, 1024, 2048, 4096],
        help="batch sizes, at width --width",
    )
    p.add_argument(
        "--widths",
        type=int_list,
        default=[32, 64, 128, 256, 512, 1024, 2048],
        help="hidden widths, at batch size --batch-size",
    )
    p.add_argument("--batch-size", type=int, default=PAPER_BATCH)
    p.add_argument("--width", type=int, default=PAPER_WIDTH)
    p.add_argument("--rounds", type=int, default=3, help="timed epochs per config")
    p.add_argument("--seed", type=int, default=0, help="weights and batch order")
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
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def configurations(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    """``(sweep, batch size, width)`` for every point of both sweeps."""
    points = [("batch size", b, args.width) for b in args.batch_sizes]
    points += [("width", args.batch_size, w) for w in args.widths]
    return points


def matmul_epoch_seconds(sizes: list[int], n: int, batch_size: int) -> float:
    """Seconds that the matrix products of one epoch take, timed one by one."""
    full, rest = divmod(n, batch_size)
    total = 0.0
    for count, rows in ((full, batch_size), (1 if rest else 0, rest)):
        if count:
            total += count * sum(
                time_matmul(a, b, repeats=3) for _, a, b in matmul_shapes(sizes, rows)
            )
    return total


def epoch_gflop(sizes: list[int], n: int, batch_size: int) -> float:
    """GFLOP of the matrix products of one epoch."""
    full, rest = divmod(n, batch_size)
    return (
        sum(
            count * 2 * a[0] * a[1] * b[1]
            for count, rows in ((full, batch_size), (1 if rest else 0, rest))
            for _, a, b in matmul_shapes(sizes, rows)
        )
        / 1e9
    )


def run_sweep(args: argparse.Namespace, say) -> tuple[int, list[dict]]:
    """Time every configuration ``--rounds`` times, interleaved.

    Returns:
        the number of training examples, and one row per configuration.
    """
    (x, y), _ = load_pixels("mnist", args.data_dir)  # each step scales its batch
    x, y = x[: args.train_limit], y[: args.train_limit]
    n = len(x)
    points = configurations(args)
    runs = {}
    for point in points:  # a model, optimizer and generator per configuration
        _, batch_size, width = point
        rng = np.random.default_rng(args.seed)
        model = MLP([x.shape[1], width, NUM_CLASSES], rng=rng, dtype="float32")
        opt = Adam()
        train_epoch(model, opt, x, y, batch_size, rng, max_steps=3)  # warm-up
        runs[point] = (model, opt, rng, [])
    for round_index in range(args.rounds):
        shift = round_index % len(points)
        for point in points[shift:] + points[:shift]:
            model, opt, rng, seconds = runs[point]
            start = time.perf_counter()
            train_epoch(model, opt, x, y, point[1], rng)
            seconds.append(time.perf_counter() - start)
            say(f"round {round_index + 1}/{args.rounds} {point}: {seconds[-1]:.3f} s")
    rows = []
    for point in points:
        sweep, batch_size, width = point
        model, _, _, seconds = runs[point]
        median = statistics.median(seconds)
        gflop = epoch_gflop(model.sizes, n, batch_size)
        bound = matmul_epoch_seconds(model.sizes, n, batch_size)
        rows.append(
            {
                "sweep": sweep,
                "batch_size": batch_size,
                "hidden": width,
                "steps_per_epoch": math.ceil(n / batch_size),
                "s_per_epoch_median": median,
                "s_per_epoch_min": min(seconds),
                "s_per_epoch_max": max(seconds),
                "samples_per_s": n / median,
                "gflop_per_epoch": gflop,
                "gflop_per_s": gflop / median,
                "matmul_s_per_epoch": bound,
                "matmul_share": bound / median,
            }
        )
    return n, rows


def markdown(result: dict) -> str:
    """The sweep as Markdown: one table per sweep."""
    m = result["machine"]
    lines = [
        "# Sweep: the engine's cost against batch size and hidden width",
        "",
        f"Command: `{result['command']}`",
        "",
        machine_line(m),
        "",
        f"Work: one epoch of {result['train_examples']} examples per configuration "
        f"and round, float32, median of {result['rounds']} interleaved rounds. "
        "GFLOP/s counts the matrix products only; 'matmul share' is the time those "
        "products take alone (timed one by one) over the epoch's time.",
    ]
    for sweep in ("batch size", "width"):
        rows = [r for r in result["rows"] if r["sweep"] == sweep]
        if not rows:
            continue
        lines += [
            "",
            f"## {sweep}",
            "",
            "| batch | hidden | steps | s/epoch median | min | max | samples/s "
            "| GFLOP/s | matmul s/epoch | matmul share |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {r['batch_size']} | {r['hidden']} | {r['steps_per_epoch']} "
            f"| {r['s_per_epoch_median']:.3f} | {r['s_per_epoch_min']:.3f} "
            f"| {r['s_per_epoch_max']:.3f} | {r['samples_per_s']:,.0f} "
            f"| {r['gflop_per_s']:.1f} | {r['matmul_s_per_epoch']:.3f} "
            f"| {r['matmul_share']:.0%} |"
            for r in rows
        ]
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    """Two panels: samples/s and GFLOP/s against batch size, and against width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, sweep, key, label in (
        (axes[0], "batch size", "batch_size", "batch size"),
        (axes[1], "width", "hidden", "hidden width"),
    ):
        rows = [r for r in result["rows"] if r["sweep"] == sweep]
        if not rows:
            ax.set_visible(False)
            continue
        xs = [r[key] for r in rows]
        ax.plot(xs, [r["samples_per_s"] for r in rows], "o-", color="tab:blue")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("training samples per second", color="tab:blue")
        twin = ax.twinx()
        twin.plot(xs, [r["gflop_per_s"] for r in rows], "s--", color="tab:orange")
        twin.set_ylabel("GFLOP/s in matrix products", color="tab:orange")
        twin.set_ylim(bottom=0)
        ax.grid(True, which="both", alpha=0.3)
        fixed = (
            f"hidden {rows[0]['hidden']}"
            if sweep == "batch size"
            else f"batch {rows[0]['batch_size']}"
        )
        ax.set_title(f"engine (NumPy) against {label}, {fixed}", fontsize=9)
    m = result["machine"]
    fig.suptitle(f"{m['cpu']}, {m['cores']} cores", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rounds < 1:
        fail(parser, "--rounds must be >= 1")
    if args.width < 1:
        fail(parser, f"--width must be >= 1, got {args.width}")
    check_settings(parser, args, ("sweep.json", "sweep.md", "sweep.png"))
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "blas": blas_info()}
    if hasattr(os, "getloadavg"):
        machine["load_average_at_start"] = list(os.getloadavg())
    n, rows = run_sweep(args, say)
    if hasattr(os, "getloadavg"):
        machine["load_average_at_end"] = list(os.getloadavg())
    argv_shown = sys.argv[1:] if argv is None else argv
    result = {
        "command": shlex.join(["python", "benchmarks/sweep.py", *argv_shown]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine,
        "rounds": args.rounds,
        "train_examples": n,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "sweep.md").write_text(markdown(result))
    plot(result, args.out / "sweep.png")
    say(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
