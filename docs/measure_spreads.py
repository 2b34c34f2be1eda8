"""Measure how far the numbers the notes quote move with the BLAS kernel and seed.

Run by hand, never from the tests (which must pass on whatever kernel the CPU
picks). Each run executes every page's Python blocks, as ``tests/course/test_docs.py``
does, and keeps the numbers each Output block printed::

    python docs/measure_spreads.py run --label native
    OPENBLAS_CORETYPE=Haswell python docs/measure_spreads.py run --label haswell
    OPENBLAS_CORETYPE=Sandybridge python docs/measure_spreads.py run --label sandybridge
    python docs/measure_spreads.py run --label seed-1 --seed 1 --pages answers.md

With ``--pages``, the other pages' numbers of an earlier run of the same
label are kept. ``--seed K`` replaces the seed 0 of the page's code (``seed=0``,
``default_rng(0)``) by K, so a run measures another start and other batches.
The runs are kept under ``docs/results/spread-runs/`` (one JSON file each).
Then::

    python docs/measure_spreads.py combine

writes ``docs/results/spreads.json``: for every Output block that a page
declares a *spread* (``<!-- spread ± 0.03: name -->``), the numbers the page
quotes and those of every run, which ``tests/course/test_docs.py`` checks against the
page's tolerance. It also lists every block whose numbers moved more than its
declared kind allows (on any kernel, with the page's own seed, or, for a
spread ``over seeds``, with any seed), the blocks to look at.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RUNS = DOCS / "results" / "spread-runs"
SPREADS = DOCS / "results" / "spreads.json"
SEEDS = (
    re.compile(r"(seed=)0\b"),
    re.compile(r"(default_rng\()0(\))"),
)


def docs_test():
    """tests/course/test_docs.py as a module: the page parser and the comparison."""
    path = ROOT / "tests" / "course" / "test_docs.py"
    if str(ROOT / "tests") not in sys.path:  # it imports the tests' conftest
        sys.path.insert(0, str(ROOT / "tests"))
    spec = importlib.util.spec_from_file_location("test_docs", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["test_docs"] = module  # (its dataclasses look themselves up)
    spec.loader.exec_module(module)
    return module


def blas_kernel() -> str:
    """The kernel OpenBLAS chose (or was told to use), as NumPy reports it."""
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_info

        for lib in threadpool_info():
            if lib.get("internal_api") == "openblas":
                return str(lib.get("architecture"))
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        import numpy as np

        np.show_runtime()
    m = re.search(r"'architecture': '(\w+)'", buffer.getvalue())
    return m[1] if m else "unknown"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's word for it."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def reseed(code: str, seed: int) -> str:
    """The code with its seed 0 replaced by ``seed``."""
    if seed == 0:
        return code
    code = SEEDS[0].sub(rf"\g<1>{seed}", code)
    return SEEDS[1].sub(rf"\g<1>{seed}\g<2>", code)


def run_page(page: Path, seed: int, td) -> dict[str, dict]:
    """Every Output block of a page, keyed ``page:index``: the numbers printed."""
    os.chdir(ROOT)
    namespace: dict = {"__name__": "__main__"}
    printed = None
    found = {}
    index = 0
    for block in td.fenced_blocks(page.read_text()):
        if block.is_output:
            key = f"{td.page_id(page)}:{index}"
            index += 1
            found[key] = {
                "line": block.line,
                "annotation": block.annotation,
                "quoted": [float(n) for n in td.NUMBER.findall(block.code)],
                "printed": (
                    None
                    if printed is None
                    else [float(n) for n in td.NUMBER.findall(printed)]
                ),
            }
            printed = None
            continue
        if not block.runs or printed == "error":
            continue
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                exec(compile(reseed(block.code, seed), str(page), "exec"), namespace)  # noqa: S102
            printed = buffer.getvalue()
        except Exception as exc:  # noqa: BLE001 - a reseeded page may not run
            print(f"{td.page_id(page)}:{block.line}: {type(exc).__name__}: {exc}")
            printed = None
    return found


def run(args: argparse.Namespace) -> None:
    """One measuring run over the chosen pages."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.path.insert(0, str(ROOT))
    td = docs_test()
    pages = [DOCS / p for p in args.pages] if args.pages else td.PAGES
    out = RUNS / f"{args.label}.json"
    blocks = {}
    if args.pages and out.is_file():  # keep the other pages of an earlier run
        chosen = {td.page_id(p) for p in pages}
        earlier = json.loads(out.read_text())["blocks"]
        blocks = {k: v for k, v in earlier.items() if k.split(":")[0] not in chosen}
    for page in pages:
        blocks.update(run_page(page, args.seed, td))
    RUNS.mkdir(parents=True, exist_ok=True)
    record = {
        "label": args.label,
        "command": " ".join(
            [
                *(
                    [f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}"]
                    if os.environ.get("OPENBLAS_CORETYPE")
                    else []
                ),
                "python docs/measure_spreads.py run",
                *sys.argv[2:],
            ]
        ),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "blas_kernel": blas_kernel(),
        "seed": args.seed,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "blocks": blocks,
    }
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out.relative_to(ROOT)} ({len(blocks)} Output blocks)")


def combine(_: argparse.Namespace) -> None:
    """Gather the runs into docs/results/spreads.json and list what moved."""
    td = docs_test()
    runs = [json.loads(p.read_text()) for p in sorted(RUNS.glob("*.json"))]
    spreads = {}
    for page in td.PAGES:
        index = 0
        for block in td.fenced_blocks(page.read_text()):
            if not block.is_output:
                continue
            key = f"{td.page_id(page)}:{index}"
            index += 1
            kind = td.kind_of(block.annotation)
            tokens = td.NUMBER.findall(block.code)
            quoted = [float(t) for t in tokens]
            measured = [
                (r, r["blocks"][key]["printed"])
                for r in runs
                if key in r["blocks"]
                and r["blocks"][key]["printed"] is not None
                and len(r["blocks"][key]["printed"]) == len(quoted)
            ]
            if kind.name == "spread":
                spreads[f"{td.page_id(page)}#{kind.label}"] = {
                    "tolerance": block.annotation,
                    "quoted": quoted,
                    "runs": [
                        {
                            "label": r["label"],
                            "command": r["command"],
                            "cpu": r["cpu"],
                            "blas_kernel": r["blas_kernel"],
                            "seed": r["seed"],
                            "numbers": numbers,
                        }
                        for r, numbers in measured
                    ],
                }
            if kind.name == "machine":
                continue
            for r, numbers in measured:
                if r["seed"] != 0 and not kind.seeds:
                    continue  # exact, or a spread over kernels: the page's seed
                for k, (token, got) in enumerate(zip(tokens, numbers)):
                    if abs(float(token) - got) > kind.tolerance(token):
                        print(
                            f"{key} (line {block.line}, {kind.name}): number {k} "
                            f"quoted {token}, {r['label']} printed {got:g}"
                        )
    SPREADS.write_text(
        json.dumps(
            {
                "about": (
                    "Numbers the notes quote with a tolerance from their spread: "
                    "what the page quotes and what each run printed. Made by "
                    "python docs/measure_spreads.py combine from the runs under "
                    "docs/results/spread-runs (each names its command)."
                ),
                "how_tolerances_are_chosen": (
                    "A tolerance covers every run with the page's seed, on every "
                    "BLAS kernel measured (OPENBLAS_CORETYPE=SkylakeX, Haswell, "
                    "Sandybridge, Nehalem). A chaotic statistic, which a change of "
                    "rounding sends as far as a change of seed (dead units after "
                    "large steps, the best step of a noisy curve, kink counts), is "
                    "declared 'over seeds' and also covers the runs with seeds 1 "
                    "and 2: its tolerance is the widest deviation measured, "
                    "rounded up. Where no kernel moved a printed digit, the "
                    "tolerance is a few units of the block's coarsest last digit. "
                    "tests/course/test_docs.py fails a tolerance more than twice the "
                    "widest deviation (or, where nothing moved, more than five "
                    "units of that digit)."
                ),
                "spreads": spreads,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {SPREADS.relative_to(ROOT)} ({len(spreads)} spread blocks)")


def main(argv: list[str] | None = None) -> None:
    """Command line: ``run`` one measurement, or ``combine`` them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="run the pages once and keep their numbers")
    one.add_argument("--label", required=True, help="the run's file name")
    one.add_argument("--seed", type=int, default=0, help="replaces the pages' seed 0")
    one.add_argument("--pages", nargs="*", help="pages under docs/ (default: all)")
    sub.add_parser("combine", help="write docs/results/spreads.json")
    args = parser.parse_args(argv)
    if args.command == "run" and not re.fullmatch(r"[\w.-]+", args.label):
        parser.error(f"--label {args.label!r}: letters, digits, '.', '-' only")
    {"run": run, "combine": combine}[args.command](args)


if __name__ == "__main__":
    main()
