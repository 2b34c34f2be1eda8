"""Read the out-of-distribution sets with ``python -m backprop.predict``.

    python ood/measure.py RUN [RUN ...]                  # every set
    python ood/measure.py RUN --sets tune                # the choosing set only
    python ood/measure.py RUN ... --json results.json [--overwrite]

For each run folder (or model.npz), every image file of each set goes through
``python -m backprop.predict MODEL --json FILES`` in a subprocess, exactly as
a user would run it, and its answers are compared with the set's labels.csv.
The table gives each run's MNIST test accuracy (from its history.json) and
its accuracy on each set. ``tune`` chose ``--augment``'s defaults; ``fonts``
and ``optdigits`` are for measuring only (see ood/make_sets.py).

Every run, and the folder of ``--json``, is checked before anything is
measured; an existing ``--json`` file is replaced only with ``--overwrite``.
Each problem is one line on stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout's backprop, not another

from backprop.app.commands.flags_and_errors import run_command  # noqa: E402
from backprop.app.runs import find_model, load_checkpoint, read_history, write_json  # noqa: E402
from backprop.errors import ConfigError, DataError, OutputError  # noqa: E402

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
    path = os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}  # the same backprop as this script
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    answers: dict[str, int | None] = dict.fromkeys(files)
    for line in done.stdout.splitlines():
        record = json.loads(line)
        answers[record["file"]] = record.get("digit")
    if done.returncode not in (0, 1) or not any(
        v is not None for v in answers.values()
    ):
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        if done.returncode == 130:
            raise KeyboardInterrupt("interrupted; nothing written")
        raise DataError(f"backprop.predict failed on {model}: {last}")
    return answers


def mnist_accuracy(run: Path) -> float:
    """The last epoch's MNIST test accuracy of a run.

    Raises:
        CheckpointError: the run is missing, or its model is not a checkpoint.
        DataError: the run has no history.json with at least one epoch.
    """
    model, folder = find_model(run)
    load_checkpoint(model)  # an image or another file named as the run
    history = read_history(folder)
    if not history:
        raise DataError(f"{run}: no epochs in a history.json beside its model")
    return float(history[-1]["test_accuracy"])


def check_json_target(path: Path, overwrite: bool) -> None:
    """Refuse a ``--json`` target that cannot, or may not, be written.

    Raises:
        OutputError: its folder is missing, it is a folder, or it exists and
            ``overwrite`` is off.
    """
    if not path.parent.is_dir():
        raise OutputError(f"{path}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, not a file to write")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputError(f"{path}: exists; pass --overwrite to replace it")


def measure(run: Path, sets: list[str], limit: int | None = None) -> dict[str, float]:
    """MNIST test accuracy and each set's accuracy (of its first ``limit`` files)."""
    result = {"mnist_test": mnist_accuracy(run)}
    for name in sets:
        truth = dict(list(labels(name).items())[:limit])
        answers = predict(run, list(truth))
        result[name] = sum(answers[f] == y for f, y in truth.items()) / len(truth)
    return result


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags."""
    p = argparse.ArgumentParser(
        prog="python ood/measure.py", description=__doc__.splitlines()[0]
    )
    p.add_argument("runs", nargs="+", type=Path, help="run folders or model.npz files")
    p.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    p.add_argument("--json", type=Path, default=None, help="also write results here")
    p.add_argument(
        "--overwrite", action="store_true", help="let --json replace an existing file"
    )
    p.add_argument("--limit", type=int, default=None, help="first N files of each set")
    return p


def main(argv: list[str] | None = None) -> int:
    """Measure every run named; print a table, optionally write JSON."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(parser, lambda: run(args))


def run(args: argparse.Namespace) -> int:
    """Check every input, then measure; the body of ``main``."""
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {args.limit}")
    if args.json is not None:
        check_json_target(args.json, args.overwrite)
    for run_path in args.runs:
        mnist_accuracy(run_path)
    results = {str(run): measure(run, args.sets, args.limit) for run in args.runs}
    columns = ["mnist_test", *args.sets]
    print("| run | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for run_path, result in results.items():
        cells = " | ".join(f"{result[c]:.4f}" for c in columns)
        print(f"| {run_path} | {cells} |")
    if args.json is not None:
        check_json_target(args.json, args.overwrite)  # made while measuring?
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
