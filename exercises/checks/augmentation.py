"""Checks of lecture 11's exercise: bilinear reads and a rotation about the centre."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
from scipy import ndimage

from backprop.app.augment.reference import warp
from exercises.checks.core import Check, expect, parts
from exercises.checks.mistakes import checked_array

ANGLES = (0.0, 10.0, -35.0, 90.0)


def _reads() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An image (6, 9) and 40 positions in and beyond it."""
    rng = np.random.default_rng(31)
    image = rng.uniform(size=(6, 9))
    rows = rng.uniform(-2.5, 8.5, size=(40,))
    cols = rng.uniform(-2.5, 11.5, size=(40,))
    rows[:4], cols[:4] = [0, 5, 2, -0.5], [0, 8, 3.5, 4]  # corners, a half, an edge
    return image, rows, cols


def bilinear_run(mod: ModuleType) -> Any:
    """Bilinear at the 40 positions."""
    image, rows, cols = _reads()
    return mod.bilinear(image, rows, cols)


def bilinear_judge(value: Any) -> str:
    """``bilinear`` agrees with map_coordinates, in and beyond the image."""
    image, rows, cols = _reads()
    want = ndimage.map_coordinates(
        image, [rows, cols], order=1, mode="grid-constant", prefilter=False
    )
    got = checked_array(value, want, "bilinear's result").astype(np.float64)
    worst = int(np.argmax(np.abs(got - want)))
    expect(
        np.allclose(got, want, atol=1e-12),
        f"at ({rows[worst]:.3f}, {cols[worst]:.3f}): {got[worst]:.6f}, "
        f"expected {want[worst]:.6f} (zeros beyond the edge, not the edge repeated)",
    )
    return "40 positions"


def _image() -> np.ndarray:
    """A random 28x28 float32 image."""
    return np.random.default_rng(32).uniform(size=(28, 28)).astype(np.float32)


def rotate_run(mod: ModuleType) -> list[Any]:
    """Rotate by four angles."""
    return [mod.rotate(_image(), degrees) for degrees in ANGLES]


def rotate_judge(results: Any) -> str:
    """``rotate`` turns about the centre as the engine's warp does."""
    image = _image()
    for degrees, value in zip(ANGLES, parts(results, len(ANGLES), "the results")):
        t = math.radians(degrees)
        inverse = np.array(
            [[[math.cos(t), -math.sin(t), 0.0], [math.sin(t), math.cos(t), 0.0]]]
        )  # (1, 2, 3)
        want = warp(image[None], inverse, np.zeros((1, 2, 28, 28), np.float32))[0]
        got = checked_array(value, want, f"rotate by {degrees}").astype(np.float64)
        expect(
            np.allclose(got, want, atol=1e-5),
            f"{degrees} degrees: max difference {np.abs(got - want).max():.3g} "
            "from the engine's warp",
        )
    return "4 angles"


CHECKS = (
    Check("bilinear against scipy's map_coordinates", bilinear_run, bilinear_judge),
    Check("rotate against the engine's warp", rotate_run, rotate_judge),
)
