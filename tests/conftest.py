"""Shared fixtures: array backends, hypothesis profiles, a tiny synthetic dataset.

Hypothesis profiles (pick with ``HYPOTHESIS_PROFILE``): ``ci`` (default, fast and
derandomized so CI is repeatable) and ``thorough`` (many more examples).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from backprop.data import SPLITS, load_pixels, write_idx
from backprop.device import gpu_status

settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

GPU_UNAVAILABLE = gpu_status()  # None when CuPy sees a CUDA device
BACKENDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param(
        "cupy",
        id="cupy",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(
                GPU_UNAVAILABLE is not None, reason=f"no GPU: {GPU_UNAVAILABLE}"
            ),
        ],
    ),
]


@pytest.fixture(params=BACKENDS)
def xp(request):
    """The array module of each available backend: numpy, and cupy with a GPU."""
    if request.param == "numpy":
        return np
    import cupy

    return cupy


def make_synthetic_images(rng: np.random.Generator, n: int, side: int = 8):
    """Learnable digit-like data: class k lights row k % side, a column by k // side."""
    labels = rng.integers(0, 10, size=n).astype(np.uint8)  # (n,)
    images = rng.integers(0, 60, size=(n, side, side)).astype(
        np.uint8
    )  # (n, side, side)
    for i, k in enumerate(labels):
        images[i, k % side, :] = 255
        images[i, :, (k // side) * 3 + 1] = 200
    return images, labels


def write_idx_folder(folder: Path, splits: dict[str, tuple]) -> Path:
    """Write each split's (images, labels) as gzip IDX files, plus SHA256SUMS of
    their decompressed bytes, into ``folder``; returns it."""
    sums = []
    for split, arrays in splits.items():
        for stem, array in zip(SPLITS[split], arrays):
            write_idx(folder / f"{stem}.gz", array)
            raw = np.ascontiguousarray(array).tobytes()
            header = bytes([0, 0, 8, array.ndim]) + b"".join(
                d.to_bytes(4, "big") for d in array.shape
            )
            sums.append(f"{hashlib.sha256(header + raw).hexdigest()}  {stem}")
    (folder / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    return folder


def load_file_as_module(path: Path, name: str) -> types.ModuleType:
    """The Python file ``path`` run as a module called ``name`` (a script of
    docs/ or benchmarks/, or a planted solution, which no package holds)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_mnist_subset(folder: Path, n_train: int, n_test: int) -> Path:
    """The first ``n_train`` MNIST training and ``n_test`` test digits (28x28),
    as an IDX folder (``write_idx_folder``), made if need be; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    (x, y), (xt, yt) = load_pixels("mnist")
    splits = {
        "train": (x[:n_train].reshape(-1, 28, 28), y[:n_train].astype(np.uint8)),
        "test": (xt[:n_test].reshape(-1, 28, 28), yt[:n_test].astype(np.uint8)),
    }
    return write_idx_folder(folder, splits)


@pytest.fixture
def synthetic_dir(tmp_path: Path) -> Path:
    """A folder with the four IDX files (gzip) of a tiny 8x8, 10-class dataset,
    plus SHA256SUMS of their decompressed bytes."""
    rng = np.random.default_rng(1234)
    folder = tmp_path / "synthetic"
    folder.mkdir()
    splits = {
        split: make_synthetic_images(rng, n)
        for split, n in (("train", 300), ("test", 100))
    }
    return write_idx_folder(folder, splits)
