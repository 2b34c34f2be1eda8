"""The package's shape, kept by tests: the engine apart from the application.

The engine is ``backprop/`` outside ``backprop/app/``: what lectures 1-10
teach (layers, losses, init, params, model, optim, the training loop, the
fused kernels, the gradient checker, diagnostics, the IDX reader, the
array-module helpers). The application (``backprop/app/``) is everything a
user runs around it. The imports are read with ``ast`` from the source
files, so these tests see every import, including those inside functions.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("backprop", "tf_reference")
MAX_LINES = 400
# ``python -m backprop.NAME`` (and ``python -m backprop NAME``): entry points
# that hand the command line to the application.
SHIMS = {
    "backprop.__main__",
    "backprop.train",
    "backprop.evaluate",
    "backprop.crossval",
    "backprop.predict",
    "backprop.export",
    "backprop.explore",
    "backprop.gradcheck.__main__",
}
# The core of the engine, the six modules a student reads first.
CORE_FILES = ("layers", "losses", "init", "params", "model", "optim")
# Libraries of the application that the engine never imports.
APP_LIBRARIES = {
    *("argparse", "PIL", "matplotlib", "scipy", "skimage", "starlette"),
    *("onnx", "onnxruntime"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


MODULES = modules()
ENGINE = {
    n
    for n in MODULES
    if n.startswith("backprop") and not n.startswith("backprop.app") and n not in SHIMS
}
APP = {n for n in MODULES if n.startswith("backprop.app")}


def imported_names(name: str) -> set[str]:
    """Every dotted name ``name`` imports, anywhere in its file."""
    tree = ast.parse(MODULES[name].read_text())
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            targets.add(node.module)
            targets.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
    return targets


def imports_of(name: str) -> set[str]:
    """The modules of this project that ``name`` imports."""
    # a package's own __init__ importing its submodules is not a cycle
    return {
        t
        for t in imported_names(name)
        if t in MODULES and t != name and not t.startswith(name + ".")
    }


GRAPH = {name: imports_of(name) for name in MODULES}


def test_the_walk_sees_both_sides():
    assert {"backprop.model", "backprop.loop", "backprop.kernels.step"} <= ENGINE
    assert {"backprop.app.trainer", "backprop.app.commands.train"} <= APP
    assert "backprop.model" in GRAPH["backprop.loop"]
    assert "backprop.loop" in GRAPH["backprop.app.trainer"]


def test_no_import_cycles():
    state: dict[str, str] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert cycles == []


@pytest.mark.parametrize("name", sorted(ENGINE))
def test_the_engine_imports_nothing_of_the_application(name):
    app = {t for t in GRAPH[name] if t.startswith("backprop.app")}
    assert not app, f"{name} imports {sorted(app)}"
    libraries = {t.split(".")[0] for t in imported_names(name)} & APP_LIBRARIES
    assert not libraries, f"{name} imports {sorted(libraries)}"


def test_the_shims_only_hand_over_to_the_application():
    for name in SHIMS:
        assert GRAPH[name] <= APP, name
        assert len(MODULES[name].read_text().splitlines()) < 15, name


def test_no_command_imports_another_command():
    commands = {n for n in MODULES if n.startswith("backprop.app.commands.")}
    shared = {"backprop.app.commands.flags_and_errors"}
    for name in sorted(commands - shared):
        others = (GRAPH[name] & commands) - shared
        assert not others, f"{name} imports {sorted(others)}"


def test_only_commands_and_entry_points_import_commands():
    entry_points = SHIMS | {"backprop.app.cli"}
    for name, targets in sorted(GRAPH.items()):
        if name.startswith(("backprop.app.commands", "tf_reference")):
            continue
        if name in entry_points:
            continue
        commands = {t for t in targets if t.startswith("backprop.app.commands")}
        assert not commands, f"{name} imports {sorted(commands)}"


def test_no_module_runs_a_command_in_a_subprocess():
    for name in sorted(n for n in MODULES if n.startswith("backprop")):
        assert "subprocess" not in imported_names(name), name


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name]} has {lines} lines"


def test_no_two_modules_share_a_name():
    """One name, one module; a shim is named after its command on purpose, and the
    backends under ``kernels/`` mirror the engine's module names on purpose."""
    names = Counter()
    for name in MODULES:
        last = name.split(".")[-1]
        if last == "__main__" or name in SHIMS or name == "tf_reference.train":
            continue
        if name.startswith("backprop.kernels.") and name.count(".") >= 3:
            continue  # backprop.kernels.cpu.layers mirrors backprop.layers
        if MODULES[name].name == "__init__.py" and name != "backprop":
            continue  # a package: named by its folder, checked below
        names[last] += 1
    folders = Counter(
        p.name
        for package in PACKAGES
        for p in (ROOT / package).rglob("*")
        if p.is_dir() and (p / "__init__.py").exists()
    )
    # ``backprop gradcheck``'s shim is the package's __main__
    folders["gradcheck"] -= 1
    shared = {n for n in names if names[n] + folders[n] > 1}
    assert not shared, f"module names used twice: {sorted(shared)}"


def test_import_backprop_needs_only_numpy():
    code = (
        "import sys, backprop, backprop.kernels, backprop.loop; "
        "heavy = ('tqdm', 'matplotlib', 'PIL', 'tensorflow', 'numba', 'cupy', "
        "'scipy', 'argparse', 'starlette'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_every_command_is_reachable_three_ways():
    from backprop.app.commands import COMMANDS

    main = ast.parse(MODULES["backprop.__main__"].read_text())
    assert "backprop.app.cli" in GRAPH["backprop.__main__"], ast.dump(main)[:80]
    for name in COMMANDS:
        assert f"backprop.app.commands.{name}" in MODULES
        shim = (
            "backprop.gradcheck.__main__" if name == "gradcheck" else f"backprop.{name}"
        )
        assert f"backprop.app.commands.{name}" in GRAPH[shim]


@pytest.mark.parametrize("how", ["python -m backprop", "python -m backprop.NAME"])
def test_help_of_every_command_runs(how):
    from backprop.app.commands import COMMANDS

    for name in COMMANDS:
        if how == "python -m backprop":
            argv = [sys.executable, "-m", "backprop", name, "--help"]
        else:
            argv = [sys.executable, "-m", f"backprop.{name}", "--help"]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, (argv, done.stderr[-400:])
        assert "usage:" in done.stdout


def test_the_readme_gives_the_engines_size():
    """The README's picture says how many lines the engine, its core and the
    application hold (``wc -l``), within 10%, so the number cannot drift far."""
    import re

    text = (ROOT / "README.md").read_text()

    def lines(paths) -> int:
        return sum(len(p.read_text().splitlines()) for p in paths)

    engine = [MODULES[n] for n in ENGINE] + [MODULES[n] for n in SHIMS]
    core = [ROOT / "backprop" / f"{n}.py" for n in CORE_FILES]
    app = [MODULES[n] for n in APP]

    def number(pattern: str) -> int:
        return int(re.search(pattern, text)[1].replace(",", ""))

    said = {
        "engine": number(r"THE ENGINE.*?([\d,]+) lines"),
        "core": number(r"the core: ([\d,]+)"),
        "app": number(r"THE APPLICATION.*?([\d,]+) lines"),
    }
    for name, files in (("engine", engine), ("core", core), ("app", app)):
        assert abs(said[name] - lines(files)) <= 0.1 * lines(files), (name, said)
