"""Side-by-side benchmark: the engine against TensorFlow, Keras and PyTorch.

    python benchmarks/compare.py --quick              # under a minute
    python benchmarks/compare.py                      # every implementation here
    python benchmarks/compare.py --epochs 5 --rounds 5
    python benchmarks/compare.py --only engine-fused,tf-eager --out /tmp/bench
    python benchmarks/compare.py --models mlp,cnn     # also LeNet-5's rows
    python benchmarks/compare.py --out benchmarks/results --overwrite  # publish

Each implementation of the paper's training (``workers.IMPLEMENTATIONS``)
runs in its own process: one warm-up epoch, then ``--epochs`` timed epochs.
``--rounds`` rounds start every implementation once each, in a rotated order,
so a burst of load from elsewhere on the machine falls on all of them alike;
the table reports the median, min and max over every timed epoch of every
round. The ``*-bound`` rows are not training runs: ``matmul-bound`` is the
time the float32 matrix products of one epoch take at this machine's BLAS
speed, the floor of any implementation that multiplies every pixel;
``sparse-bound`` the multiply-adds left when the first layer skips the zero
pixels, at the machine's measured peak rate; ``adam-bound`` Adam's memory
traffic at the measured bandwidth (``workers.py`` says how each is measured).

``--quick`` is one round of one warm-up and one timed epoch of the engine's
two modes, PyTorch, tf.function and the bounds (under a minute on 2 idle
cores); every process compiles and warms up before its clock starts.

OpenBLAS picks its kernels from the CPU, unless ``OPENBLAS_CORETYPE`` names
one. When that variable or ``OPENBLAS_L2_SIZE`` is set, the NumPy rows are
also run with both removed from their environment (``--blas-env``), and
threadpoolctl names the kernel each run used.

Writes ``results.json``, ``results.md`` and ``results.png`` into ``--out``
(default ``runs/benchmarks/``, not tracked by git); the committed results in
``benchmarks/results/`` are replaced only with ``--overwrite``. Flags are
checked before anything runs.
``--models cnn`` (or ``mlp,cnn``) adds the rows of LeNet-5 in the engine,
PyTorch and Keras (``cnn_workers.py``); ``--quick`` runs the engine's and
PyTorch's.
Implementations whose library is missing (TensorFlow, PyTorch, a GPU for
CuPy) are skipped and listed as such.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnn_workers import CNN_ROWS
from workers import IMPLEMENTATIONS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

LABELS = {
    "engine-fused": "engine, NumPy + fused Numba kernels (--kernels fused)",
    "engine-reference": "engine, NumPy, reference step (--kernels reference)",
    "engine-cupy": "engine, CuPy, reference step",
    "tf-eager": "TensorFlow, the paper's eager GradientTape loop",
    "tf-function": "TensorFlow, the same step under tf.function",
    "keras-fit": "Keras model.fit",
    "pytorch": "PyTorch (nn.Linear, Adam)",
    "matmul-bound": "float32 matrix-multiply bound (BLAS alone)",
    "sparse-bound": "sparse bound: non-zero multiply-adds at peak FMA rate",
    "adam-bound": "Adam's memory traffic at measured bandwidth",
    "engine-cnn": "CNN (LeNet-5): engine, NumPy, ReLU and pooling fused (Numba)",
    "engine-cnn-reference": "CNN (LeNet-5): engine, NumPy, reference step",
    "pytorch-cnn": "CNN (LeNet-5): PyTorch (nn.Conv2d, Adam)",
    "keras-cnn": "CNN (LeNet-5): Keras model.fit",
}
MODELS = {
    "mlp": tuple(n for n in IMPLEMENTATIONS if n not in CNN_ROWS),
    "cnn": CNN_ROWS,
}
QUICK_CNN_ROWS = ("engine-cnn", "pytorch-cnn")
BOUND_ROWS = ("matmul-bound", "sparse-bound", "adam-bound")
QUICK_ROWS = (
    "engine-fused",
    "engine-reference",
    "pytorch",
    "tf-function",
    *BOUND_ROWS,
)
DEFAULT_OUT = ROOT / "runs" / "benchmarks"
COMMITTED = HERE / "results"  # the results the README shows
# the rows run again with the BLAS variables unset
NUMPY_ROWS = ("engine-fused", "engine-reference", "matmul-bound")
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
ENGINE = "engine-fused"  # every MLP row's ratio is to this row
CNN_ENGINE = "engine-cnn"  # every CNN row's ratio is to this one
UNSET_SUFFIX = "+blas-unset"


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; every default is shown in ``--help``."""
    p = argparse.ArgumentParser(
        prog="python benchmarks/compare.py",
        description="Time the paper's training in every implementation available.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per process")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="processes per implementation, interleaved with the others",
    )
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs per process")
    p.add_argument(
        "--quick",
        action="store_true",
        help="1 round, 1 warm-up and 1 timed epoch of: " + ", ".join(QUICK_ROWS),
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
        "--models",
        default="mlp",
        help="comma-separated networks whose rows run: mlp (the paper's), cnn "
        f"(LeNet-5: {', '.join(CNN_ROWS)}), or mlp,cnn",
    )
    p.add_argument(
        "--only",
        default=None,
        help=f"comma-separated subset of: {', '.join(IMPLEMENTATIONS)}",
    )
    p.add_argument(
        "--blas-env",
        choices=("auto", "given", "both"),
        default="auto",
        help="run the NumPy rows with the environment as given, or also with "
        f"{' and '.join(BLAS_VARIABLES)} removed (auto: both when one is set)",
    )
    p.add_argument("--batch-size", type=int, default=256, help="examples per step")
    p.add_argument("--hidden", type=int, default=128, help="hidden width")
    p.add_argument("--seed", type=int, default=0, help="weights and batch order")
    p.add_argument("--data-dir", default=None, help="IDX folder instead of MNIST")
    p.add_argument(
        "--train-limit", type=int, default=None, help="use the first N examples"
    )
    p.add_argument(
        "--test-limit", type=int, default=None, help="use the first N test examples"
    )
    p.add_argument(
        "--timeout", type=float, default=1800, help="seconds allowed per process"
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def fail(parser: argparse.ArgumentParser, message: str) -> None:
    """Exit with status 2 and one line: ``prog: error: message``."""
    parser.exit(2, f"{parser.prog}: error: {message}\n")


def check_settings(
    parser: argparse.ArgumentParser, args: argparse.Namespace, files: tuple
) -> None:
    """Refuse, in one line, flags that would fail later or lose results.

    Checks the sizes (``--batch-size``, ``--hidden``, the limits) are
    positive, ``--data-dir`` is a folder, ``--out`` is not a file, and that
    ``files`` would not replace committed results in ``benchmarks/results/``
    without ``--overwrite``.
    """
    for flag in ("batch_size", "hidden", "train_limit", "test_limit"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            fail(parser, f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    data_dir = getattr(args, "data_dir", None)
    if data_dir is not None and not Path(data_dir).is_dir():
        fail(parser, f"--data-dir {data_dir}: no such folder")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        fail(parser, f"--out {out} is a file, not a folder")
    there = [f for f in files if (out / f).exists()]
    committed = out.resolve() == COMMITTED.resolve()
    if committed and there and not getattr(args, "overwrite", False):
        fail(
            parser,
            f"--out {out} holds the committed {', '.join(there)}; "
            "pass --overwrite to replace them, or another --out",
        )


def available(name: str) -> str | None:
    """Why implementation ``name`` cannot run here, or None when it can."""
    needs = {
        "tf-eager": "tensorflow",
        "tf-function": "tensorflow",
        "keras-fit": "tensorflow",
        "pytorch": "torch",
        "keras-cnn": "tensorflow",
        "pytorch-cnn": "torch",
    }
    if name == "engine-fused":
        from backprop.kernels import numba_status

        return numba_status()
    module = needs.get(name)
    if module is not None and importlib.util.find_spec(module) is None:
        return f"{module} is not installed"
    if name == "engine-cupy":
        from backprop.device import gpu_status

        return gpu_status()
    return None


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """The machine: CPU, cores, load, operating system, GPU, BLAS variables."""
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "gpu": None,
        "blas_environment": {k: os.environ.get(k) for k in BLAS_VARIABLES},
    }
    if available("engine-cupy") is None:
        from workers import gpu_name

        info["gpu"] = gpu_name()
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = list(os.getloadavg())
    return info


def plan_runs(
    names: list[str], blas_env: str, environ: dict | None = None
) -> list[tuple[str, str, dict]]:
    """``(row key, implementation, environment)`` for every row to measure.

    Args:
        names: the implementations to run.
        blas_env: ``auto``, ``given`` or ``both`` (see ``--blas-env``).
        environ: the environment as given (default: ``os.environ``).
    """
    given = dict(os.environ if environ is None else environ)
    unset = {k: v for k, v in given.items() if k not in BLAS_VARIABLES}
    if blas_env == "auto":
        blas_env = "both" if given != unset else "given"
    runs = [(name, name, given) for name in names]
    if blas_env == "both":
        runs += [(n + UNSET_SUFFIX, n, unset) for n in names if n in NUMPY_ROWS]
    return runs


def worker_command(implementation: str, args: argparse.Namespace, out: Path) -> list:
    """The command line of one worker process."""
    cmd = [
        sys.executable,
        str(HERE / "workers.py"),
        implementation,
        "--json-out",
        str(out),
        "--epochs",
        str(args.epochs),
        "--warmup",
        str(args.warmup),
        "--batch-size",
        str(args.batch_size),
        "--hidden",
        str(args.hidden),
        "--seed",
        str(args.seed),
    ]
    for flag in ("data_dir", "train_limit", "test_limit"):
        value = getattr(args, flag)
        if value is not None:
            cmd += ["--" + flag.replace("_", "-"), str(value)]
    return cmd


def run_worker(cmd: list, env: dict, out: Path, timeout: float) -> dict:
    """Run one worker; its JSON result, or ``{"error": ...}`` when it failed."""
    env = {**env, "TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0 or not out.is_file():
        lines = (proc.stderr or proc.stdout or "").strip().splitlines()
        return {"error": lines[-1] if lines else f"exit status {proc.returncode}"}
    return json.loads(out.read_text())


def summarize(key: str, implementation: str, results: list[dict]) -> dict:
    """One table row from the results of every round of one implementation."""
    good = [r for r in results if "error" not in r]
    row = {
        "key": key,
        "implementation": implementation,
        "name": LABELS[implementation]
        + (" [OPENBLAS_* unset]" if key.endswith(UNSET_SUFFIX) else ""),
    }
    if not good:
        return {**row, "error": results[0]["error"] if results else "not run"}
    seconds = [s for r in good for s in r["epoch_seconds"]]
    accuracies = [r["test_accuracy"] for r in good if r["test_accuracy"] is not None]
    median = statistics.median(seconds)
    last = good[-1]
    row.update(
        device=last["device"],
        s_per_epoch_median=median,
        s_per_epoch_min=min(seconds),
        s_per_epoch_max=max(seconds),
        timed_epochs=len(seconds),
        samples_per_s=last["train_examples"] / median,
        test_accuracy=statistics.median(accuracies) if accuracies else None,
        peak_rss_mib=max(r["peak_rss_mib"] for r in good),
        train_examples=last["train_examples"],
        sizes=last["sizes"],
        blas_library=last["blas"].get("library"),
        blas_version=last["blas"].get("version"),
        blas_kernel=last["blas"].get("kernel"),
        blas_threads=last["blas"].get("threads"),
        blas_environment={k: last["blas"].get(k) for k in BLAS_VARIABLES},
        versions=last["versions"],
        failed_rounds=len(results) - len(good),
    )
    extras = ("gflop_per_epoch", "torch_threads", "nonzero_share")
    for extra in (*extras, "gbyte_per_epoch", "gbyte_per_s"):
        if extra in last:
            row[extra] = last[extra]
    if "products" in last:  # matmul-bound: each product's median over the rounds
        row["products"] = [
            {
                "product": product["product"],
                "microseconds": statistics.median(
                    r["products"][i]["microseconds"] for r in good
                ),
                "gflop_per_s": statistics.median(
                    r["products"][i]["gflop_per_s"] for r in good
                ),
            }
            for i, product in enumerate(last["products"])
        ]
    return row


def add_ratios(rows: list[dict]) -> None:
    """Each row's median time as a multiple of the engine's (NumPy) median.

    An MLP row is divided by ``engine-fused``'s, a CNN row by ``engine-cnn``'s.
    """
    engines = {
        key: next((r for r in rows if r["key"] == key and "error" not in r), None)
        for key in (ENGINE, CNN_ENGINE)
    }
    for row in rows:
        cnn = row["implementation"] in CNN_ROWS
        engine = engines[CNN_ENGINE if cnn else ENGINE]
        if engine is not None and "error" not in row:
            row["ratio_to_engine"] = (
                row["s_per_epoch_median"] / (engine["s_per_epoch_median"])
            )
        else:
            row["ratio_to_engine"] = None


def fmt(value, spec: str) -> str:
    """``format(value, spec)``, or a dash for None."""
    return "-" if value is None else format(value, spec)


def markdown(result: dict) -> str:
    """The results as a Markdown page: settings, machine, table, notes."""
    m, s = result["machine"], result["settings"]
    blas = next(
        (r for r in result["rows"] if r.get("blas_kernel") and "error" not in r), {}
    )
    lines = [
        "# Benchmark: seconds per training epoch",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores; GPU: {m['gpu'] or 'none'}; "
        f"{m['platform']}; Python {m['python']}.",
        f"NumPy {blas.get('versions', {}).get('numpy', '?')} with "
        f"{blas.get('blas_library', '?')} {blas.get('blas_version', '')} "
        f"({blas.get('blas_threads', '?')} threads); environment "
        + ", ".join(
            f"{k}={v if v is not None else '(unset)'}"
            for k, v in m["blas_environment"].items()
        )
        + ".",
        "Load average (1, 5, 15 min) at start "
        f"{fmt_load(m.get('load_average_at_start'))}, "
        f"at end {fmt_load(m.get('load_average_at_end'))}.",
        "",
        f"Work: {s['train_examples']} training examples, network {s['sizes']}, "
        f"batch {s['batch_size']}, {s['dtype']}, Adam lr {s['lr']}; "
        f"{s['warmup']} warm-up epoch(s) then {s['epochs']} timed epoch(s) per "
        f"process, {s['rounds']} interleaved rounds; test accuracy after "
        f"{s['warmup'] + s['epochs']} epochs.",
        "",
        "| implementation | device | BLAS kernel | s/epoch median | min | max "
        "| samples/s | x engine | test accuracy | peak RSS MiB |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["rows"]:
        if "error" in row:
            lines.append(f"| {row['name']} | not run: {row['error']} |||||||||")
            continue
        numpy_row = row["implementation"] in NUMPY_ROWS + BOUND_ROWS
        kernel = row["blas_kernel"] if numpy_row else ""
        lines.append(
            f"| {row['name']} | {row['device']} | {kernel or ''} "
            f"| {row['s_per_epoch_median']:.3f} | {row['s_per_epoch_min']:.3f} "
            f"| {row['s_per_epoch_max']:.3f} | {row['samples_per_s']:,.0f} "
            f"| {fmt(row['ratio_to_engine'], '.2f')} "
            f"| {fmt(row['test_accuracy'], '.4f')} | {row['peak_rss_mib']:.0f} |"
        )
    bounds = [r for r in result["rows"] if r.get("implementation") in BOUND_ROWS]
    if any("error" not in r for r in bounds):
        lines += ["", "What the bound rows count:", ""]
    for row in bounds:
        if "error" in row:
            continue
        if row["implementation"] == "sparse-bound":
            lines.append(
                f"- {row['name']}: {row['gflop_per_epoch']:.2f} GFLOP per epoch "
                f"({row['nonzero_share']:.1%} of the pixels are non-zero) at "
                f"{row['products'][0]['gflop_per_s']:.1f} GFLOP/s."
            )
        elif row["implementation"] == "adam-bound":
            lines.append(
                f"- {row['name']}: {row['gbyte_per_epoch']:.2f} GB per epoch at "
                f"{row['gbyte_per_s']:.1f} GB/s."
            )
        else:
            lines.append(
                f"- {row['name']}: {row['gflop_per_epoch']:.2f} GFLOP per epoch."
            )
    for row in result["rows"]:
        if row.get("products") and row["implementation"] == "matmul-bound":
            lines += [
                "",
                f"Matrix products of one step ({row['name']}; "
                f"{row['gflop_per_epoch']:.1f} GFLOP per epoch; medians over the "
                "rounds):",
                "",
                "| product | microseconds | GFLOP/s |",
                "| --- | ---: | ---: |",
            ]
            lines += [
                f"| {p['product']} | {p['microseconds']:.1f} | {p['gflop_per_s']:.1f} |"
                for p in row["products"]
            ]
    skipped = result.get("skipped", {})
    if skipped:
        lines += ["", "Skipped: " + "; ".join(f"{k} ({v})" for k, v in skipped.items())]
    lines += [
        "",
        "x engine: the row's median divided by the engine's (NumPy, environment "
        "as given; a CNN row by the engine's CNN row); below 1 is faster than "
        "the engine. The bound rows are no training: each is measured in its "
        "own process. The CNN rows (if any) train LeNet-5 "
        "(backprop.cnn.LENET5, 61,706 parameters) from the same initial "
        "weights, batch size and Adam settings; the network above is the MLP's.",
        "",
    ]
    return "\n".join(lines)


def fmt_load(load: list | None) -> str:
    """A load-average triple as ``1.00 0.50 0.25``."""
    return "-" if not load else " ".join(f"{v:.2f}" for v in load)


def machine_line(m: dict) -> str:
    """One Markdown line naming the machine, its BLAS and its load."""
    blas = m["blas"]
    return (
        f"Machine: {m['cpu']}, {m['cores']} cores; BLAS {blas.get('library')} "
        f"{blas.get('version')}, kernel {blas.get('kernel')}, "
        f"{blas.get('threads')} threads; load average at start "
        f"{fmt_load(m.get('load_average_at_start'))}, at end "
        f"{fmt_load(m.get('load_average_at_end'))}."
    )


def bar_chart(result: dict, path: Path) -> None:
    """A horizontal bar per row: median s/epoch, whiskers from min to max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["rows"] if "error" not in r]
    rows.sort(key=lambda r: r["s_per_epoch_median"], reverse=True)
    medians = [r["s_per_epoch_median"] for r in rows]
    low = [r["s_per_epoch_median"] - r["s_per_epoch_min"] for r in rows]
    high = [r["s_per_epoch_max"] - r["s_per_epoch_median"] for r in rows]
    colors = [
        "tab:gray"
        if r["implementation"] in BOUND_ROWS
        else "tab:blue"
        if r["implementation"].startswith("engine")
        else "tab:orange"
        for r in rows
    ]
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(rows) + 1.6))
    ax.barh(range(len(rows)), medians, xerr=[low, high], color=colors, capsize=3)
    ax.set_yticks(range(len(rows)), [r["name"] for r in rows], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per training epoch (median; whiskers: min to max)")
    for i, r in enumerate(rows):
        ax.text(
            r["s_per_epoch_max"] * 1.05,  # right of the whisker
            i,
            f"{r['s_per_epoch_median']:.3f} s",
            va="center",
            fontsize=8,
        )
    m = result["machine"]
    ax.set_title(
        f"The paper's MLP on MNIST, {m['cpu']}, {m['cores']} cores", fontsize=9
    )
    ax.set_xlim(
        min(r["s_per_epoch_min"] for r in rows) / 1.5,
        max(r["s_per_epoch_max"] for r in rows) * 3,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def settings(args: argparse.Namespace, rows: list[dict]) -> dict:
    """The work every implementation did."""
    sample = next((r for r in rows if "error" not in r), {})
    return {
        "epochs": args.epochs,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "batch_size": args.batch_size,
        "hidden": args.hidden,
        "sizes": sample.get("sizes"),
        "seed": args.seed,
        "dtype": "float32",
        "lr": 1e-3,
        "train_examples": sample.get("train_examples"),
        "data": args.data_dir or "bundled MNIST",
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.rounds, args.warmup = 1, 1, 1
    if args.epochs < 1 or args.rounds < 1 or args.warmup < 0:
        fail(parser, "--epochs and --rounds must be >= 1, --warmup >= 0")
    check_settings(parser, args, ("results.json", "results.md", "results.png"))
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models or set(models) - set(MODELS):
        fail(parser, f"--models {args.models}: choose from {', '.join(MODELS)}")
    quick = {"mlp": QUICK_ROWS, "cnn": QUICK_CNN_ROWS}
    names = [n for m in models for n in (quick[m] if args.quick else MODELS[m])]
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(names) - set(IMPLEMENTATIONS))
        if unknown:
            fail(parser, f"--only: unknown {', '.join(unknown)}")
    skipped = {n: why for n in names if (why := available(n)) is not None}
    runs = plan_runs([n for n in names if n not in skipped], args.blas_env)
    machine = machine_info()
    results: dict[str, list[dict]] = {key: [] for key, _, _ in runs}
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            shift = round_index % max(len(runs), 1)
            for key, implementation, env in runs[shift:] + runs[:shift]:
                out = Path(tmp) / f"{key}-{round_index}.json"
                start = time.perf_counter()
                result = run_worker(
                    worker_command(implementation, args, out), env, out, args.timeout
                )
                results[key].append(result)
                what = result.get("error") or " ".join(
                    f"{s:.3f}" for s in result["epoch_seconds"]
                )
                say(
                    f"round {round_index + 1}/{args.rounds} {key}: {what} "
                    f"({time.perf_counter() - start:.0f} s in all)"
                )
    rows = [summarize(key, impl, results[key]) for key, impl, _ in runs]
    add_ratios(rows)
    if hasattr(os, "getloadavg"):
        machine["load_average_at_end"] = list(os.getloadavg())
    result = {
        "command": shlex.join(
            [
                "python",
                "benchmarks/compare.py",
                *(sys.argv[1:] if argv is None else argv),
            ]
        ),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine,
        "settings": settings(args, rows),
        "rows": rows,
        "skipped": skipped,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(result))
    if any("error" not in r for r in rows):
        bar_chart(result, args.out / "results.png")
    say(markdown(result))
    failed = [r["key"] for r in rows if "error" in r]
    if failed:
        print(f"error: no result for {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
