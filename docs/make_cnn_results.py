r"""The MLP against the CNN: what finished runs measured, in docs/results/cnn.json.

    python -m backprop.train --seed 0 --out runs/mlp-seed0
    python -m backprop.train --model cnn --seed 0 --out runs/cnn-seed0
    python docs/make_cnn_results.py runs/mlp-seed0 runs/cnn-seed0 \
        --load-log load.log --note "what else ran on the machine" --overwrite

Reads each run folder's config.json and history.json (the seconds and the test
accuracy of every epoch, as ``backprop.train`` wrote them) and writes, per
run: the model, seed and epochs finished; the median and total seconds per
epoch; the first epoch whose test accuracy reaches the paper's 0.976 and the
seconds up to the end of it; the last epoch's test accuracy. A run still
training (or stopped) is reported with the epochs it holds. The machine (CPU
model, cores) and the load are recorded beside the numbers: ``--load-log``
names a file of ``HH:MM:SS load1 load5 load15`` lines sampled while the runs
trained (``while true; do echo "$(date -u +%T) $(cut -d' ' -f1-3
/proc/loadavg)"; sleep 30; done``), summarised as the min, median and max of
the 1-minute load. ``--ood`` names the JSON that ``ood/measure.py --json``
wrote for the same runs: each run's accuracy on the out-of-distribution sets
(``tune``, ``fonts``, ``optdigits``) is added to its entry, matched by the
run folder's path.
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

PAPER_ACCURACY = 0.976  # the paper's MNIST test accuracy after 20 epochs
OUT = Path(__file__).resolve().parent / "results" / "cnn.json"


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo, or the platform's."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def summarize_run(folder: Path) -> dict:
    """One run's numbers from its config.json and history.json."""
    config = json.loads((folder / "config.json").read_text())
    history = json.loads((folder / "history.json").read_text())
    seconds = [r["seconds"] for r in history]
    reached = next(
        (r["epoch"] for r in history if r["test_accuracy"] >= PAPER_ACCURACY), None
    )
    return {
        "run": folder.name,
        "model": config.get("model", "mlp"),
        "network": config.get("cnn", {}).get("layers") or config.get("sizes"),
        "kernels": config.get("kernels"),
        "seed": config["seed"],
        "augment": bool(config.get("augment", False)),
        "augment_strength": config.get("augment_strength", 1.0),
        "lr": config.get("lr"),
        "ema": config.get("ema", 0.0),
        "epochs_planned": config["epochs"],
        "epochs_finished": len(history),
        "s_per_epoch_median": statistics.median(seconds) if seconds else None,
        "s_per_epoch_min": min(seconds, default=None),
        "seconds_total": sum(seconds),
        "epoch_reaching_0.976": reached,
        "seconds_to_0.976": sum(seconds[:reached]) if reached else None,
        "final_test_accuracy": history[-1]["test_accuracy"] if history else None,
        "best_test_accuracy": max((r["test_accuracy"] for r in history), default=None),
        "epochs": [
            {
                "epoch": r["epoch"],
                "seconds": r["seconds"],
                "test_accuracy": r["test_accuracy"],
            }
            for r in history
        ],
    }


def table(result: dict) -> str:
    """The MLP and the CNN side by side, as the README shows them (Markdown).

    The accuracy rows come from the 20-epoch runs (one number per seed, in
    the order given); the seconds from the shorter timing runs (``--epochs``
    below 20), which ran alone on the machine.
    """

    def runs(model: str, augment: bool, full: bool = True) -> list[dict]:
        return [
            r
            for r in result["runs"]
            if r["model"] == model
            and r["augment"] == augment
            and (r["epochs_planned"] >= 20) == full
        ]

    def cells(pick, augment: bool = False, full: bool = True) -> list[str]:
        return [
            ", ".join(pick(r) for r in runs(m, augment, full)) or "-"
            for m in ("mlp", "cnn")
        ]

    def ood(name: str):
        return lambda r: f"{r['ood'][name]:.3f}" if r.get("ood") else "-"

    strength = {
        m: ", ".join(sorted({f"{r['augment_strength']:g}" for r in runs(m, True)}))
        for m in ("mlp", "cnn")
    }
    rows = [
        ("seconds per epoch (timing run)", cells(
            lambda r: f"{r['s_per_epoch_median']:.2f}", full=False)),
        ("epoch reaching 0.976", cells(lambda r: str(r["epoch_reaching_0.976"]))),
        ("seconds to 0.976 (timing run)", cells(
            lambda r: f"{r['seconds_to_0.976']:.1f}", full=False)),
        ("MNIST test, 20 epochs", cells(lambda r: f"{r['final_test_accuracy']:.4f}")),
        *((f"{name}", cells(ood(name))) for name in ("tune", "fonts", "optdigits")),
        (f"`--augment` (strength {strength['mlp']} / {strength['cnn']}): MNIST test",
         cells(lambda r: f"{r['final_test_accuracy']:.4f}", augment=True)),
        *((f"`--augment`: {name}", cells(ood(name), augment=True))
          for name in ("tune", "fonts", "optdigits")),
    ]  # fmt: skip
    lines = [
        "| seeds 0, 1, 2 | MLP 784-128-10 | CNN LeNet-5 |",
        "| --- | --- | --- |",
        *(f"| {name} | {mlp} | {cnn} |" for name, (mlp, cnn) in rows),
    ]
    return "\n".join(lines) + "\n"


def load_summary(path: Path | None) -> dict | None:
    """Min, median and max of the 1-minute load in a ``--load-log`` file."""
    if path is None:
        return None
    samples = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            samples.append((parts[0], float(parts[1])))
    if not samples:
        return None
    loads = [load for _, load in samples]
    return {
        "samples": len(samples),
        "from": samples[0][0],
        "to": samples[-1][0],
        "load1_min": min(loads),
        "load1_median": statistics.median(loads),
        "load1_max": max(loads),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog="python docs/make_cnn_results.py")
    p.add_argument("runs", nargs="*", type=Path, help="run folders of backprop.train")
    p.add_argument(
        "--table", action="store_true", help="print the table of --out and stop"
    )
    p.add_argument("--load-log", type=Path, default=None, help="sampled load (UTC)")
    p.add_argument("--note", default="", help="what else ran on the machine")
    p.add_argument("--ood", type=Path, default=None, help="ood/measure.py's JSON")
    p.add_argument("--out", type=Path, default=OUT, help="the JSON to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = p.parse_args(argv)
    if args.table:
        print(table(json.loads(args.out.read_text())), end="")
        return 0
    if not args.runs:
        p.exit(2, f"{p.prog}: error: name the run folders (or pass --table)\n")
    if args.out.exists() and not args.overwrite:
        p.exit(2, f"{p.prog}: error: {args.out} exists; --overwrite replaces it\n")
    missing = [str(f) for f in args.runs if not (f / "history.json").is_file()]
    if missing:
        p.exit(2, f"{p.prog}: error: no history.json in {', '.join(missing)}\n")
    ood = {}
    if args.ood is not None:
        try:
            measured = json.loads(args.ood.read_text())
        except (OSError, ValueError) as exc:
            p.exit(2, f"{p.prog}: error: cannot read --ood {args.ood}: {exc}\n")
        ood = {str(Path(run).resolve()): sets for run, sets in measured.items()}
    result = {
        "command": "python docs/make_cnn_results.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "load": load_summary(args.load_log),
        "load_average_now": list(os.getloadavg()),
        "note": args.note,
        "paper_accuracy": PAPER_ACCURACY,
        "runs": [summarize_run(folder) for folder in args.runs],
    }
    for run, folder in zip(result["runs"], args.runs):
        sets = ood.get(str(folder.resolve()), {})
        run["ood"] = {k: v for k, v in sets.items() if k != "mnist_test"} or None
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for run in result["runs"]:
        print(
            f"{run['model']} seed {run['seed']}: {run['epochs_finished']}/"
            f"{run['epochs_planned']} epochs, {run['s_per_epoch_median']:.1f} s/epoch "
            f"(median), 0.976 at epoch {run['epoch_reaching_0.976']} "
            f"({run['seconds_to_0.976'] or 0:.0f} s), last {run['final_test_accuracy']}"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
