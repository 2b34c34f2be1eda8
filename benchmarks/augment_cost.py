"""What ``--augment`` costs per epoch, beside the training step it feeds.

    python benchmarks/augment_cost.py               # writes augment.* in results/
    python benchmarks/augment_cost.py --rounds 5

In one process, on the same data, each timed ``--rounds`` times (medians):

* ``train epoch``: one epoch of the fused training step (``FusedStep`` through
  ``train_epoch``), no augmentation;
* ``distort (fused, T threads)``: ``backprop.app.augment.distort_all`` of every
  training image with ``backprop.kernels.cpu.distort``, for 1 thread and for
  the ``WORKERS`` threads training uses, the random draws included;
* ``distort (reference)``: the same with scipy.ndimage
  (``backprop.app.augment.reference``), on ``--reference-images`` images and
  scaled to the whole set (it takes seconds per epoch);
* ``train epoch with --augment``: the epoch as ``backprop.train --augment``
  runs it, the distortion of the training set and then the epoch.

Ratios are to the training epoch measured in the same run.
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

from backprop.app.augment import Augmentation, EpochAugmenter, distort_all, epoch
from backprop.data import NUM_CLASSES, load_pixels
from backprop.kernels import kernels_for, warm_up
from backprop.kernels.step import FusedStep
from backprop.loop import train_epoch
from backprop.model import MLP
from backprop.optim import Adam

HERE = Path(__file__).resolve().parent


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; every default is shown in ``--help``."""
    p = argparse.ArgumentParser(
        prog="python benchmarks/augment_cost.py",
        description="Seconds per epoch of --augment beside the training step.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--rounds", type=int, default=3, help="timings of each row")
    p.add_argument("--strength", type=float, default=Augmentation().strength)
    p.add_argument("--fraction", type=float, default=Augmentation().fraction)
    p.add_argument("--reference-images", type=int, default=4096)
    p.add_argument("--data-dir", default=None, help="IDX folder instead of MNIST")
    p.add_argument("--train-limit", type=int, default=None, help="first N only")
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--quiet", action="store_true")
    return p


def median_seconds(work, rounds: int) -> float:
    """Median wall time of ``work()`` over ``rounds`` calls."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Time every row; write augment.json and augment.md into ``--out``."""
    args = build_parser().parse_args(argv)
    load_at_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    (pixels, y), _ = load_pixels("mnist", args.data_dir)
    pixels = np.array(pixels[: args.train_limit])  # (N, 784), writable
    y = y[: args.train_limit]
    n = len(pixels)
    aug = Augmentation(strength=args.strength, fraction=args.fraction)
    rng = np.random.default_rng(0)
    model = MLP([pixels.shape[1], 128, NUM_CLASSES], rng=rng, dtype="float32")
    opt = Adam()
    cpu = kernels_for(np)
    warm_up(cpu, "float32")
    x = pixels.copy()  # (N, 784), what the step reads
    step = FusedStep(model, opt, x, y, min(256, n), cpu)
    augmenter = EpochAugmenter(pixels, x, aug, 7, "fused")
    augmenter.fill(1)  # compiles the kernel (or loads it from Numba's cache)

    def train() -> None:
        train_epoch(model, opt, x, y, 256, rng, step=step)

    train()  # warm-up
    rows = {"train epoch": median_seconds(train, args.rounds)}
    for threads in sorted({1, epoch.WORKERS}):
        saved, epoch.WORKERS = epoch.WORKERS, threads
        try:
            seconds = median_seconds(
                lambda: distort_all(pixels, aug, np.random.default_rng(1), "fused"),
                args.rounds,
            )
        finally:
            epoch.WORKERS = saved
        rows[f"distort (fused, {threads} thread{'s' * (threads > 1)})"] = seconds
    part = pixels[: args.reference_images]
    seconds = median_seconds(
        lambda: distort_all(part, aug, np.random.default_rng(1), "reference"),
        max(1, args.rounds // 2),
    )
    rows["distort (reference, scipy.ndimage)"] = seconds * n / len(part)
    epochs = iter(range(2, 10**6))

    def augmented() -> None:
        augmenter.fill(next(epochs))
        train()

    rows["train epoch with --augment"] = median_seconds(augmented, args.rounds)
    base = rows["train epoch"]
    result = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "blas": blas_info(),
            "load_average_at_start": load_at_start,
        },
        "images": n,
        "augmentation": {"strength": aug.strength, "fraction": aug.fraction},
        "rows": [
            {"row": name, "seconds": s, "ratio_to_train_epoch": s / base}
            for name, s in rows.items()
        ],
    }
    if hasattr(os, "getloadavg"):
        result["machine"]["load_average_at_end"] = list(os.getloadavg())
    lines = [
        f"# --augment's cost per epoch ({n} images, strength {aug.strength}, "
        f"fraction {aug.fraction})",
        "",
        f"Command: `{result['command']}`",
        "",
        machine_line(result["machine"]),
        "",
        "| row | s per epoch (median) | x train epoch |",
        "| --- | ---: | ---: |",
    ]
    for row in result["rows"]:
        ratio = row["ratio_to_train_epoch"]
        lines.append(f"| {row['row']} | {row['seconds']:.3f} | {ratio:.2f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "augment.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "augment.md").write_text("\n".join(lines) + "\n")
    if not args.quiet:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
