"""Checks of lecture 1's exercise: an IDX header parser; flattening and scaling."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from backprop.data import write_idx
from exercises.checks.core import Check, Wrong, array_of, expect, kind, parts, plain

SHAPES = [(60000, 28, 28), (10000,), (2, 3, 4, 5), (300, 8, 8)]


def _idx_bytes(array: np.ndarray) -> bytes:
    """The IDX bytes of an array, written by the engine's own writer."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.idx"
        write_idx(path, array)
        return path.read_bytes()


def _bad_headers() -> list[bytes]:
    """Two byte strings whose magic number is wrong."""
    good = _idx_bytes(np.zeros((3, 2), np.uint8))
    return [b"\x01" + good[1:], good[:3] + b"\x00" + good[4:]]


def _images() -> np.ndarray:
    """Five random uint8 images with a 255 and a 0 where the check looks."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28)).astype(np.uint8)  # (5, 28, 28)
    images[0, 0, 0], images[0, 1, 2] = 255, 0
    return images


def shapes_run(mod: ModuleType) -> list[Any]:
    """parse_header of engine-written IDX bytes of four shapes."""
    return [mod.parse_header(_idx_bytes(np.zeros(s, np.uint8))) for s in SHAPES]


def shapes_judge(results: list[Any]) -> str:
    """Each header reads as type code 8 (unsigned bytes) and its shape."""
    for shape, got in zip(SHAPES, parts(results, len(SHAPES), "the results")):
        expect(
            plain(got) == (8, shape),
            f"parse_header of an array of shape {shape} returned {plain(got)}, "
            f"expected (8, {shape})",
        )
    return "4 shapes"


def magic_run(mod: ModuleType) -> list[str]:
    """What parse_header does with each bad header: 'ValueError' or 'accepted'."""
    outcomes = []
    for bad in _bad_headers():
        try:
            mod.parse_header(bad)
        except ValueError:
            outcomes.append("ValueError")
            continue
        outcomes.append("accepted")
    return outcomes


def magic_judge(outcomes: list[Any]) -> None:
    """Both bad headers raise ValueError."""
    bad_headers = _bad_headers()
    for bad, outcome in zip(bad_headers, parts(outcomes, 2, "the outcomes")):
        expect(
            outcome == "ValueError",
            f"parse_header accepted bytes starting {bad[:4].hex(' ')}",
        )


def scale_run(mod: ModuleType) -> Any:
    """flatten_and_scale of five random images."""
    return mod.flatten_and_scale(_images())


def scale_judge(value: Any) -> None:
    """(N, 784) float32 rows in [0, 1], row-major."""
    images = _images()
    if not isinstance(value, np.ndarray):
        raise Wrong(f"flatten_and_scale returned {kind(value)}, expected an array")
    out = array_of(value, "flatten_and_scale's result")
    expect(out.shape == (5, 784), f"shape {out.shape}, expected (5, 784)")
    expect(out.dtype == np.float32, f"dtype {out.dtype}, expected float32")
    expect(out[0, 0] == 1.0, "pixel value 255 should become 1.0")
    expect(
        np.array_equal(out[:, 28 * 3 + 5], images[:, 3, 5] / np.float32(255)),
        "pixel (3, 5) should be column 3 * 28 + 5 = 89 (row-major), divided by 255",
    )


CHECKS = (
    Check("parse_header reads type code and shape", shapes_run, shapes_judge),
    Check("parse_header rejects a bad magic number", magic_run, magic_judge),
    Check("flatten_and_scale: (N, 784) float32 in [0, 1]", scale_run, scale_judge),
)
