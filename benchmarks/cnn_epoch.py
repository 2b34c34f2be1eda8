"""One training epoch of the LeNet-5 CNN: the engine beside PyTorch, on the CPU.

    python benchmarks/cnn_epoch.py                    # 3 rounds of full epochs
    python benchmarks/cnn_epoch.py --rounds 5 --max-steps 60

Both train the same network (``backprop.cnn.LENET5``: conv 5x5x6 "same",
ReLU, max-pool 2, conv 5x5x16 "valid", ReLU, max-pool 2, dense 120, 84, 10)
in float32 with Adam (lr 0.001), batch 256, from the same initial weights and
in the same batch order, on the bundled MNIST:

* ``reference``: the lectures' reference step, ``CNN.loss_and_grads`` then
  ``Adam.step``, once per batch (``backprop.loop.ReferenceStep``);
* ``fused``: the same step with each convolution's ReLU and max-pool fused
  into one Numba pass (``backprop.kernels.cnn_step.FusedCNNStep``, what
  ``--kernels auto`` trains with); its results equal the reference's bit for
  bit;
* ``pytorch``: ``nn.Conv2d``, ``nn.MaxPool2d``, ``nn.Linear``,
  ``F.cross_entropy``, ``torch.optim.Adam``; it flattens the images in the
  engine's (H, W, C) order, so the two compute the same function.

Both engine steps read the uint8 images and scale each batch, as training
does; PyTorch's images are scaled once before. Each round times one epoch of
each, in an order that turns from round to round, in one process, so load
from elsewhere on the machine falls on all alike; the ratios of each round are
engine / PyTorch (above 1: the engine is slower), and the summary is the
median of those ratios. ``--max-steps`` times the first steps
of each epoch only (quick runs). Prints a Markdown table naming the machine;
``--out DIR`` also writes it to ``DIR/cnn_epoch.md`` and the numbers to
``DIR/cnn_epoch.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from backprop.cnn import CNN
from backprop.data import load_pixels, to_inputs
from backprop.kernels import make_step
from backprop.optim import Adam


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags."""
    p = argparse.ArgumentParser(
        prog="python benchmarks/cnn_epoch.py",
        description="Time a CNN training epoch: the engine's two steps and PyTorch.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--rounds", type=int, default=3, help="timed epochs of each")
    p.add_argument("--max-steps", type=int, default=None, help="steps per epoch")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-size", type=int, default=None, help="first N images")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads of both: NumPy's BLAS (threadpoolctl) and PyTorch "
        "(set_num_threads); default: each library's own choice",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="a folder to write cnn_epoch.json and cnn_epoch.md into",
    )
    return p


def torch_twin(model: CNN):
    """The engine's CNN in PyTorch, holding copies of its weights."""
    import torch
    from torch import nn

    class Twin(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.dense1, self.dense2 = nn.Linear(400, 120), nn.Linear(120, 84)
            self.dense3 = nn.Linear(84, 10)

        def forward(self, x):  # x: (N, 784)
            x = x.reshape(-1, 1, 28, 28)  # (N, 1, 28, 28)
            x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
            x = x.permute(0, 2, 3, 1).flatten(1)  # (N, 400) in (H, W, C) order
            x = torch.relu(self.dense1(x))
            return self.dense3(torch.relu(self.dense2(x)))  # (N, 10)

    twin = Twin()
    with torch.no_grad():
        for name, value in model.params.items():
            layer, kind = name.split(".")
            value = torch.from_numpy(np.array(value))
            if kind == "b":
                getattr(twin, layer).bias.copy_(value)
            elif layer.startswith("conv"):  # (KH, KW, C, F) -> (F, C, KH, KW)
                getattr(twin, layer).weight.copy_(value.permute(3, 2, 0, 1))
            else:  # (D, H) -> (H, D)
                getattr(twin, layer).weight.copy_(value.T)
    return twin


def torch_epoch(twin, opt, x, y, order, batch_size: int, steps: int) -> float:
    """One epoch of PyTorch steps in the given order; returns the mean loss."""
    import torch

    total = 0.0
    for i in range(steps):
        batch = torch.from_numpy(order[i * batch_size : (i + 1) * batch_size])
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(twin(x[batch]), y[batch])
        loss.backward()
        opt.step()
        total += loss.item()
    return total / steps


def blas_threads() -> int | None:
    """Threads of the BLAS libraries now (the most of any), as threadpoolctl says."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    found = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    return max(found) if found else None  # NumPy's, and SciPy's where loaded


def engine_epoch(step, order, batch_size: int, steps: int) -> float:
    """One epoch of an engine step in the given order; returns the mean loss."""
    total = 0.0
    for i in range(steps):
        total += float(step(order[i * batch_size : (i + 1) * batch_size]).loss)
    return total / steps


def markdown(result: dict) -> str:
    """The results as a Markdown table, with the machine named above it."""
    m = result["machine"]
    load = " ".join(f"{v:.2f}" for v in m["load_average_at_end"])
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores; PyTorch {m['torch']} with "
        f"{m['torch_threads']} threads, NumPy {m['numpy']} with a BLAS of "
        f"{m['blas_threads']} threads; load average at the "
        f"end {load}. {result['steps_per_epoch']} steps of "
        f"{result['batch_size']} images per epoch, float32.",
        "",
        "| round | reference (s) | fused (s) | PyTorch (s) | reference / PyTorch "
        "| fused / PyTorch |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["rounds"]:
        s = row["seconds"]
        lines.append(
            f"| {row['round']} | {s['reference']:.1f} | {s['fused']:.1f} | "
            f"{s['pytorch']:.1f} | {s['reference'] / s['pytorch']:.2f} | "
            f"{s['fused'] / s['pytorch']:.2f} |"
        )
    median = result["ratio_median"]
    lines += [
        "",
        f"Median ratios: reference / PyTorch {median['reference']:.2f}, "
        f"fused / PyTorch {median['fused']:.2f}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the rounds; print the table."""
    args = build_parser().parse_args(argv)
    import torch

    (pixels, y), _ = load_pixels("mnist")
    pixels, y = pixels[: args.train_size], y[: args.train_size]
    x = to_inputs(pixels, "float32")  # (N, 784), for PyTorch
    steps = -(-len(x) // args.batch_size)
    steps = steps if args.max_steps is None else min(steps, args.max_steps)
    engines = {}
    for kernels in ("reference", "fused"):
        model = CNN(seed=args.seed)  # the same weights for all three
        engines[kernels] = make_step(
            kernels, model, Adam(), pixels, y, args.batch_size
        )  # the fused one compiles here
    if args.threads is not None:  # after the fused step's Numba, which loads
        torch.set_num_threads(args.threads)  # SciPy's own OpenBLAS beside NumPy's
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.threads)  # every BLAS in this process
    twin = torch_twin(model)
    torch_opt = torch.optim.Adam(twin.parameters(), lr=1e-3, eps=1e-7)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    rng = np.random.default_rng(args.seed)
    rows = []
    names = ["reference", "fused", "pytorch"]
    for r in range(args.rounds):
        order = rng.permutation(len(x))
        times, losses = {}, {}
        for name in names[r % 3 :] + names[: r % 3]:
            start = time.perf_counter()
            if name == "pytorch":
                losses[name] = torch_epoch(
                    twin, torch_opt, tx, ty, order, args.batch_size, steps
                )
            else:
                losses[name] = engine_epoch(
                    engines[name], order, args.batch_size, steps
                )
            times[name] = time.perf_counter() - start
        rows.append({"round": r + 1, "seconds": times, "mean_loss": losses})
        print(
            f"round {r + 1}: reference {times['reference']:.2f} s, fused "
            f"{times['fused']:.2f} s, pytorch {times['pytorch']:.2f} s; ratios "
            f"{times['reference'] / times['pytorch']:.2f}, "
            f"{times['fused'] / times['pytorch']:.2f} (mean loss "
            f"{losses['reference']:.4f} / {losses['fused']:.4f} / "
            f"{losses['pytorch']:.4f})",
            flush=True,
        )
    ratios = {
        name: statistics.median(
            row["seconds"][name] / row["seconds"]["pytorch"] for row in rows
        )
        for name in ("reference", "fused")
    }
    result = {
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "blas_threads": blas_threads(),
            "load_average_at_end": list(os.getloadavg()),
            "numpy": np.__version__,
            "torch": torch.__version__,
        },
        "steps_per_epoch": steps,
        "batch_size": args.batch_size,
        "rounds": rows,
        "ratio_median": ratios,
    }
    print("\n" + markdown(result))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "cnn_epoch.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / "cnn_epoch.md").write_text(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
