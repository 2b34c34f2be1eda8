"""Numba's on-disk cache of the kernels: unwritable or damaged, a run still trains.

Each case runs in a fresh process (Numba looks for its cache when a kernel is
defined, and loads it at a kernel's first call), on a copy of the kernels'
cache in a temporary ``NUMBA_CACHE_DIR``, so the checkout's own cache is never
touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba", reason="the kernels' cache is Numba's (the fast extra)")

ROOT = Path(__file__).resolve().parents[2]
# Compiles (or loads) every kernel, then checks one against NumPy.
WARM_UP = """
import numpy as np
from backprop.kernels import kernels_for, warm_up
k = kernels_for(np)
warm_up(k, "float32")
z = np.array([[-1.0, 2.0]], np.float32)
k.bias_relu(z, np.array([0.5, 0.5], np.float32))
assert z.tolist() == [[0.0, 2.5]], z
print("kernels ran")
"""


def run_kernels(
    env: dict[str, str], path: str = str(ROOT)
) -> subprocess.CompletedProcess:
    """Run ``WARM_UP`` in a new process with ``env`` added."""
    return subprocess.run(
        [sys.executable, "-c", WARM_UP],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path, **env},
        cwd=ROOT,
        timeout=600,
    )


@pytest.mark.slow  # compiles every kernel in a fresh process
def test_no_folder_for_the_cache_compiles_in_memory():
    """What Numba says on a read-only install with a read-only home."""
    only = {"NUMBA_CACHE_LOCATOR_CLASSES": "IPythonCacheLocator"}  # finds none here
    done = run_kernels(only)
    assert done.returncode == 0, done.stderr
    assert "kernels ran" in done.stdout and "Traceback" not in done.stderr
    notes = done.stderr.strip().splitlines()
    assert (
        len(notes) == 1
        and "no writable folder to cache the compiled kernels" in notes[0]
    )


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root writes read-only folders; the test above covers it"
)
def test_a_read_only_install_and_home(tmp_path):
    copy = tmp_path / "install"
    shutil.copytree(ROOT / "backprop", copy / "backprop")
    home = tmp_path / "home"
    home.mkdir()
    for folder in (copy, home):
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
    env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    env["NUMBA_CACHE_DIR"] = ""
    try:
        done = run_kernels(env, str(copy))
    finally:
        for path in [copy, *copy.rglob("*"), home]:
            path.chmod(path.stat().st_mode | 0o200)
    assert done.returncode == 0, done.stderr
    assert len(done.stderr.strip().splitlines()) <= 1


@pytest.mark.slow  # compiles every kernel in a fresh process
@pytest.mark.parametrize("suffix", [".nbi", ".nbc"])
def test_a_truncated_cache_file_is_compiled_afresh(tmp_path, suffix):
    cache = {"NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    first = run_kernels(cache)
    assert first.returncode == 0 and first.stderr == "", first.stderr
    files = sorted((tmp_path / "cache").rglob(f"*adam_keras*{suffix}"))
    assert files
    for path in files:
        path.write_bytes(path.read_bytes()[:20])
    damaged = run_kernels(cache)
    assert damaged.returncode == 0, damaged.stderr
    assert "kernels ran" in damaged.stdout and "Traceback" not in damaged.stderr
    notes = damaged.stderr.strip().splitlines()
    assert len(notes) == 1 and "damaged file in Numba's cache" in notes[0], notes
    healed = run_kernels(cache)  # the cache was rewritten: no note any more
    assert healed.returncode == 0 and healed.stderr == "", healed.stderr
