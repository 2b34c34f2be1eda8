"""Every skip says why, and the summary shows it.

The README promises that a test that cannot run here skips saying why. A
test module skipped whole at collection (a ``pytest.importorskip`` or
``pytest.skip`` at its top level) gives its own reason, and pytest's summary
lists every skip's reason (``-rs`` in the project's ``addopts``).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = sorted((ROOT / "tests").rglob("*.py"))


def addopts() -> str:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        tomllib = pytest.importorskip(
            "tomli", reason="Python 3.10 reads TOML with tomli"
        )
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["pytest"]["ini_options"]["addopts"]


def test_the_summary_shows_why_each_test_skipped():
    report = re.findall(r"(?:^|\s)-r(\w+)", addopts())
    assert report, addopts()
    assert "s" in report[-1] or "a" in report[-1] or "A" in report[-1], addopts()


def module_level_skips(tree: ast.Module) -> list[ast.Call]:
    """The pytest.skip and pytest.importorskip calls outside any function."""
    calls = []
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for node in ast.walk(statement):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("skip", "importorskip")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "pytest"
            ):
                calls.append(node)
    return calls


def gives_a_reason(call: ast.Call) -> bool:
    if call.func.attr == "skip":  # pytest.skip(reason, allow_module_level=True)
        return bool(call.args) or any(k.arg == "reason" for k in call.keywords)
    return any(k.arg == "reason" for k in call.keywords)


def test_the_search_finds_collection_skips():
    found = [
        path.name for path in TESTS if module_level_skips(ast.parse(path.read_text()))
    ]
    assert "test_explorer_browser.py" in found and "test_kernels.py" in found


@pytest.mark.parametrize("path", TESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_skipped_at_collection_says_why(path):
    tree = ast.parse(path.read_text())
    silent = [
        call.lineno for call in module_level_skips(tree) if not gives_a_reason(call)
    ]
    assert not silent, f"{path.relative_to(ROOT)}: skips without a reason at {silent}"
