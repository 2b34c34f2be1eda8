"""Read the out-of-distribution sets with ``python -m backprop.predict``.

    python ood/measure.py RUN [RUN ...]                  # every set
    python ood/measure.py RUN --sets tune                # the choosing set only
    python ood/measure.py RUN ... --json results.json

For each run folder (or model.npz), every image file of each set goes through
``python -m backprop.predict MODEL --json FILES`` in a subprocess, exactly as
a user would run it, and its answers are compared with the set's labels.csv.
The table gives each run's MNIST test accuracy (from its history.json) and
its accuracy on each set. ``tune`` chose ``--augment``'s defaults; ``fonts``
and ``optdigits`` are for measuring only (see ood/make_sets.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETS = ("tune", "fonts", "optdigits")


def labels(name: str) -> dict[str, int]:
    """File path -> label of set ``name``."""
    folder = HERE / "sets" / name
    with open(folder / "labels.csv", newline="") as f:
        return {
            str(folder / row["file"]): int(row["label"]) for row in csv.DictReader(f)
        }


def predict(
    model: Path, files: list[str], multi: bool = False
) -> dict[str, int | None]:
    """File -> digit that ``backprop.predict`` reads (None where it found none)."""
    command = [sys.executable, "-m", "backprop.predict", str(model), "--json", *files]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    answers: dict[str, int | None] = dict.fromkeys(files)
    for line in done.stdout.splitlines():
        record = json.loads(line)
        answers[record["file"]] = record.get("digit")
    if done.returncode not in (0, 1) or not any(
        v is not None for v in answers.values()
    ):
        sys.exit(f"error: backprop.predict failed on {model}:\n{done.stderr[-2000:]}")
    return answers


def mnist_accuracy(run: Path) -> float:
    """The last epoch's MNIST test accuracy of a run."""
    folder = run if run.is_dir() else run.parent
    history = json.loads((folder / "history.json").read_text())
    return float(history[-1]["test_accuracy"])


def measure(run: Path, sets: list[str], limit: int | None = None) -> dict[str, float]:
    """MNIST test accuracy and each set's accuracy (of its first ``limit`` files)."""
    result = {"mnist_test": mnist_accuracy(run)}
    for name in sets:
        truth = dict(list(labels(name).items())[:limit])
        answers = predict(run, list(truth))
        result[name] = sum(answers[f] == y for f, y in truth.items()) / len(truth)
    return result


def main(argv: list[str] | None = None) -> int:
    """Measure every run named; print a table, optionally write JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders or model.npz files")
    p.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    p.add_argument("--json", type=Path, default=None, help="also write results here")
    p.add_argument("--limit", type=int, default=None, help="first N files of each set")
    args = p.parse_args(argv)
    results = {str(run): measure(run, args.sets, args.limit) for run in args.runs}
    columns = ["mnist_test", *args.sets]
    print("| run | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for run, result in results.items():
        print(f"| {run} | " + " | ".join(f"{result[c]:.4f}" for c in columns) + " |")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
