"""What the first run costs: Numba compiling the fused kernels, cold and warm cache.

    python benchmarks/first_run.py                     # writes first_run.* in results/
    python benchmarks/first_run.py --repeats 5

Times the whole command ``python -m backprop.train --epochs 1`` (start-up,
loading MNIST, one epoch, the test pass, writing the run) as a user runs it:

* ``fused, cold cache``: Numba's on-disk cache is empty (a fresh
  ``NUMBA_CACHE_DIR``), so every kernel is compiled: the first run after an
  install;
* ``fused, warm cache``: the same command again, the kernels loaded from that
  cache: every later run;
* ``reference``: ``--kernels reference``, which compiles nothing.

It also reads, from each run's history.json, the epoch's own time, which the
compilation never falls into (``make_step`` compiles before the first epoch).
Each case runs ``--repeats`` times, interleaved; the table shows medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compare import cpu_model, machine_line
from workers import blas_info

HERE = Path(__file__).resolve().parent
CASES = ("fused, cold cache", "fused, warm cache", "reference")


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; every default is shown in ``--help``."""
    p = argparse.ArgumentParser(
        prog="python benchmarks/first_run.py",
        description="Wall time of a one-epoch training run, cold and warm JIT cache.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--repeats", type=int, default=3, help="runs of each case")
    p.add_argument("--data-dir", default=None, help="IDX folder instead of MNIST")
    p.add_argument("--hidden", type=int, default=128, help="hidden width")
    p.add_argument(
        "--out", type=Path, default=HERE / "results", help="folder for the results"
    )
    p.add_argument("--quiet", action="store_true", help="print nothing")
    return p


def timed_run(case: str, cache: Path, out: Path, args: argparse.Namespace) -> dict:
    """Run the training command once; its wall time and its epoch's time."""
    kernels = "reference" if case == "reference" else "fused"
    cmd = [sys.executable, "-m", "backprop.train", "--epochs", "1", "--quiet"]
    cmd += ["--device", "cpu", "--kernels", kernels, "--out", str(out)]
    cmd += ["--hidden", str(args.hidden)]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise SystemExit(f"error: {case}: {lines[-1] if lines else proc.returncode}")
    history = json.loads((out / "history.json").read_text())
    return {"wall_s": wall, "epoch_s": history[0]["seconds"]}


def measure(args: argparse.Namespace) -> dict[str, list[dict]]:
    """Every case ``--repeats`` times; a fresh cache before each cold run."""
    runs: dict[str, list[dict]] = {case: [] for case in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            cache = Path(tmp) / f"cache-{r}"  # empty: the cold run compiles
            for case in CASES:
                out = Path(tmp) / f"run-{r}-{CASES.index(case)}"
                runs[case].append(timed_run(case, cache, out, args))
    return runs


def markdown(result: dict) -> str:
    """The table of medians."""
    lines = [
        "# The first run: compiling the fused kernels",
        "",
        f"Command: `{result['command']}`",
        "",
        machine_line(result["machine"]),
        "",
        "Wall time of `python -m backprop.train --epochs 1 --device cpu` (start-up, "
        "data, one epoch, test, files), and the epoch's own time from history.json; "
        f"medians of {result['repeats']} runs each.",
        "",
        "| case | wall s | epoch s |",
        "| --- | ---: | ---: |",
    ]
    for case, row in result["cases"].items():
        lines.append(f"| {case} | {row['wall_s']:.2f} | {row['epoch_s']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "blas": blas_info()}
    if hasattr(os, "getloadavg"):
        machine["load_average_at_start"] = list(os.getloadavg())
    runs = measure(args)
    if hasattr(os, "getloadavg"):
        machine["load_average_at_end"] = list(os.getloadavg())
    shown = sys.argv[1:] if argv is None else argv
    result = {
        "command": shlex.join(["python", "benchmarks/first_run.py", *shown]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine,
        "repeats": args.repeats,
        "runs": runs,
        "cases": {
            case: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
            for case, rs in runs.items()
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "first_run.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "first_run.md").write_text(markdown(result))
    if not args.quiet:
        print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
