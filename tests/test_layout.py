"""The package's shape, kept by tests: who may import whom, and modules that stay small.

The imports are read with ``ast`` from the source files, so these tests see
every import, including those inside functions.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("backprop", "tf_reference")
# The engine: what a student reads, and what trains.
CORE = {
    "backprop",
    "backprop.layers",
    "backprop.conv",
    "backprop.cnn",
    "backprop.losses",
    "backprop.init",
    "backprop.model",
    "backprop.optim",
    "backprop.params",
    "backprop.device",
    "backprop.errors",
    "backprop.data",
    "backprop.metrics",
}
MAX_LINES = 400


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


def imports_of(name: str) -> set[str]:
    """The modules of this project that ``name`` imports, anywhere in its file."""
    tree = ast.parse(MODULES[name].read_text())
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            targets.add(node.module)
            targets.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
    # a package's own __init__ importing its submodules is not a cycle
    return {
        t
        for t in targets
        if t in MODULES and t != name and not t.startswith(name + ".")
    }


GRAPH = {name: imports_of(name) for name in MODULES}


def test_the_walk_sees_the_package():
    assert {"backprop.model", "backprop.commands.train", "tf_reference.model"} <= set(
        GRAPH
    )
    assert "backprop.model" in GRAPH["backprop.training"]


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


def test_the_core_imports_only_the_core():
    for name in sorted(CORE):
        outside = GRAPH[name] - CORE
        assert not outside, f"{name} imports {sorted(outside)}"


def test_no_command_imports_another_command():
    commands = {n for n in MODULES if n.startswith("backprop.commands.")}
    shared = {"backprop.commands.common"}
    for name in sorted(commands - shared):
        others = (GRAPH[name] & commands) - shared
        assert not others, f"{name} imports {sorted(others)}"


def test_only_commands_and_entry_points_import_commands():
    entry_points = {
        "backprop.cli",
        "backprop.train",
        "backprop.evaluate",
        "backprop.crossval",
        "backprop.predict",
        "backprop.explore",
        "backprop.gradcheck.__main__",
    }
    for name, targets in sorted(GRAPH.items()):
        if (
            name.startswith(("backprop.commands", "tf_reference"))
            or name in entry_points
        ):
            continue
        commands = {t for t in targets if t.startswith("backprop.commands")}
        assert not commands, f"{name} imports {sorted(commands)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name]} has {lines} lines"


def test_import_backprop_needs_only_numpy():
    code = (
        "import sys, backprop, backprop.kernels; "
        "heavy = ('tqdm', 'matplotlib', 'PIL', 'tensorflow', 'numba', 'cupy'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_every_command_is_reachable_both_ways():
    from backprop.commands import COMMANDS

    for name in COMMANDS:
        assert f"backprop.commands.{name}" in MODULES
        shim = (
            "backprop.gradcheck.__main__" if name == "gradcheck" else f"backprop.{name}"
        )
        assert f"backprop.commands.{name}" in GRAPH[shim]
