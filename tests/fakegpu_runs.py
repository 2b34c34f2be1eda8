"""Running the engine's GPU path on the CuPy stand-in of ``tests/fakegpu``.

``standin()`` imports the stand-in as ``cupy`` in this process (and undoes it
after), so ``--device gpu`` works and ``cupy.ledger`` counts the transfers;
``gpu_env()`` is the environment of a subprocess that finds it first on its
``PYTHONPATH``, as a person activates it. The other helpers run a command and
read what it wrote, for comparing a "GPU" run with the CPU's.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from conftest import make_synthetic_images, write_idx_folder, write_mnist_subset

from backprop import device

ROOT = Path(__file__).resolve().parents[1]
FAKEGPU = ROOT / "tests" / "fakegpu"
_OURS = ("cupy", "cupyx")


def _modules() -> list[str]:
    return [m for m in sys.modules if m.split(".")[0] in _OURS]


@contextlib.contextmanager
def standin() -> Iterator:
    """The stand-in imported as ``cupy`` for the block; yields the module.

    Whatever ``cupy`` was imported before (the real one, on a GPU machine) is
    put back afterwards, and ``backprop.device`` looks again.
    """
    saved = {m: sys.modules.pop(m) for m in _modules()}
    sys.path.insert(0, str(FAKEGPU))
    device._import_cupy.cache_clear()
    try:
        import cupy

        assert getattr(cupy, "FAKE", False), f"imported {cupy.__file__}"
        cupy.ledger.reset()
        yield cupy
    finally:
        sys.path.remove(str(FAKEGPU))
        for m in _modules():
            del sys.modules[m]
        sys.modules.update(saved)
        device._import_cupy.cache_clear()


def gpu_env(**extra: str) -> dict[str, str]:
    """A subprocess environment with the stand-in first on ``PYTHONPATH``."""
    env = dict(os.environ)
    parts = [str(FAKEGPU), str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in parts if p)
    env.update(extra)
    return env


def run_main(main: Callable[[list[str]], int], argv: list[str]) -> tuple[str, str]:
    """Run a command's ``main``; assert it succeeds; return (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    assert rc == 0, err.getvalue()
    return out.getvalue(), err.getvalue()


def history(folder: Path) -> list[dict]:
    """A run's history.json without the wall-clock seconds."""
    records = json.loads((folder / "history.json").read_text())
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def checkpoint_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of a model.npz (parameters, Adam's state), by key."""
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files if k.startswith(("param/", "optim/"))}


def assert_same_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    """The same keys, dtypes and values, bit for bit."""
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def by_function(events: list, kind: str) -> Counter:
    """How many events of ``kind`` each function asked for (by its name)."""
    return Counter(e.site.rsplit(" ", 1)[-1] for e in events if e.kind == kind)


def write_synthetic(folder: Path) -> Path:
    """300 training and 100 test images, 8x8, 10 classes, as an IDX folder."""
    rng = np.random.default_rng(1234)
    sizes = (("train", 300), ("test", 100))
    return write_idx_folder(
        folder, {s: make_synthetic_images(rng, n) for s, n in sizes}
    )


def write_small_mnist(folder: Path) -> Path:
    """The first 300 MNIST training and 100 test digits (28x28), as an IDX folder."""
    return write_mnist_subset(folder, 300, 100)
