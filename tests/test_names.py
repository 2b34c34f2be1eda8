"""Every dotted name that the code, the lectures or the exercises mention resolves.

A rename can never again leave ``backprop.train.train_epoch`` in a docstring:
each ``backprop.X.Y`` and ``tf_reference.X.Y`` found in the package's source,
the pages of the course, the exercises, the benchmarks and the README is
imported (the longest module prefix) and its remaining parts looked up.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"(?<![\w./-])((?:backprop|tf_reference)(?:\.[A-Za-z_]\w*)+)")
SOURCES = [
    *ROOT.glob("backprop/**/*.py"),
    *ROOT.glob("tf_reference/*.py"),
    *ROOT.glob("exercises/**/*.py"),
    *ROOT.glob("benchmarks/*.py"),
    *ROOT.glob("benchmarks/*.md"),
    *ROOT.glob("docs/**/*.md"),
    ROOT / "README.md",
]
# Names that are files, not Python: ``backprop.npz`` would be a file name.
NOT_PYTHON = {"py", "npz", "json", "md", "txt", "png", "keras", "onnx"}


def mentioned() -> dict[str, str]:
    found = {}
    for path in SOURCES:
        for name in NAME.findall(path.read_text()):
            name = name.rstrip(".")
            if name.split(".")[-1] in NOT_PYTHON or name.endswith(".NAME"):
                continue
            found.setdefault(name, str(path.relative_to(ROOT)))
    return found


MENTIONED = mentioned()


def resolve(name: str) -> object:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # this prefix is not a module; try a shorter one
            raise
        for attr in parts[cut:]:
            if isinstance(obj, type) and not hasattr(obj, attr):
                # an instance attribute, set in __init__ (``MLP.params``)
                assert f"self.{attr} " in inspect.getsource(obj), attr
                return obj
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(name)


def test_the_search_finds_names():
    assert "backprop.loop.train_epoch" in MENTIONED
    assert len(MENTIONED) > 50


@pytest.mark.parametrize("name", sorted(MENTIONED))
def test_name_resolves(name):
    if name.startswith("tf_reference.") and name not in (
        "tf_reference.train",
        "tf_reference.convert",
    ):
        pytest.importorskip("tensorflow", reason="the tf extra is not installed")
    if name.startswith(("backprop.app.onnx_graph", "backprop.app.onnx_cnn")):
        pytest.importorskip("onnx", reason="the onnx extra is not installed")
    try:
        resolve(name)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"{name} (in {MENTIONED[name]}) does not resolve: {exc}")
