"""A fresh distortion of the whole training set before every epoch.

``EpochAugmenter`` keeps the original pixels and, before each epoch, writes a
distorted copy into the array the training step reads (uint8 pixels, as both
steps take them), so neither step changes.

Randomness: at the start of a run one number is drawn from the run's
generator (``draw_entropy``) and kept in the checkpoint; epoch e's distortions
come from ``numpy.random.default_rng([entropy, e])``. An epoch's distortions
therefore depend only on the run's seed and the epoch number, not on what ran
before: a resumed run distorts exactly as an uninterrupted one.

With the fused kernels the distortions are made on the host by
``backprop.kernels.cpu.distort`` in ``WORKERS`` threads, between epochs; the
reference (scipy.ndimage, or cupyx.scipy.ndimage on the GPU) makes them where
the data lives.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from backprop.app.augment import reference
from backprop.app.augment.settings import (
    BLUR_SIGMA,
    BLUR_TRUNCATE,
    CENTRE,
    SIDE,
    Augmentation,
    draw,
)
from backprop.device import to_device, xp_of
from backprop.errors import CheckpointError, ConfigError
from backprop.kernels import images_changed

Array = Any  # a numpy.ndarray or cupy.ndarray
CHUNK = 4096  # images distorted per call (bounds the memory of the draws)
# Threads of the fused kernel, which runs between epochs. On 2 cores a
# background thread distorting the next epoch while this one trained was
# slower (it competes with BLAS's threads); see lecture 11.
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
WORKERS = max(1, min(4, CORES or os.cpu_count() or 1))


def draw_entropy(rng: np.random.Generator) -> int:
    """The run's augmentation key, drawn once from its generator."""
    return int(rng.integers(0, 2**63))


def augmentation_record(
    strength: float,
    fraction: float,
    saved: Any,
    path: Path | None,
    rng: np.random.Generator,
    width: int,
) -> dict[str, Any]:
    """What a run with ``--augment`` keeps in its config and checkpoint.

    Args:
        strength: ``--augment-strength``.
        fraction: ``--augment-fraction``.
        saved: a resumed checkpoint's record (its config's ``"augmentation"``),
            or None for a new run.
        path: the resumed checkpoint, for messages; None for a new run.
        rng: the run's generator; a new run draws its key from it (after the
            initial weights).
        width: pixels per training image (784 for 28x28).

    Returns:
        ``{"entropy": key, "settings": Augmentation's fields}``.

    Raises:
        ConfigError: the images are not 28x28.
        CheckpointError: the resumed checkpoint has no valid record.
    """
    if width != SIDE * SIDE:
        raise ConfigError(
            f"--augment needs {SIDE}x{SIDE} images; these have {width} pixels"
        )
    if path is None:
        chosen = Augmentation(strength=strength, fraction=fraction)
        settings = dataclasses.asdict(chosen)
        return {"entropy": draw_entropy(rng), "settings": settings}
    names = {f.name for f in dataclasses.fields(Augmentation)}
    ok = (
        isinstance(saved, dict)
        and type(saved.get("entropy")) is int
        and 0 <= saved["entropy"] < 2**63
        and isinstance(saved.get("settings"), dict)
        and set(saved["settings"]) == names
        and all(type(v) in (int, float) for v in saved["settings"].values())
    )
    if not ok:
        raise CheckpointError(f"{path}: the run has no valid --augment record")
    try:
        Augmentation(**saved["settings"]).validate()
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its --augment record: {exc}") from None
    return saved


def epoch_generator(entropy: int, epoch: int) -> np.random.Generator:
    """The generator of epoch ``epoch``'s distortions."""
    return np.random.default_rng([entropy, epoch])


def blur_weights() -> np.ndarray:
    """The 1-D Gaussian of the blur, as ``scipy.ndimage.gaussian_filter1d`` has it."""
    from scipy.ndimage import gaussian_filter1d

    radius = int(BLUR_TRUNCATE * BLUR_SIGMA + 0.5)
    delta = np.zeros(2 * radius + 1)  # (K,)
    delta[radius] = 1.0
    return gaussian_filter1d(delta, BLUR_SIGMA, mode="constant", truncate=BLUR_TRUNCATE)


def distort_all(
    pixels: np.ndarray,
    aug: Augmentation,
    rng: np.random.Generator,
    kernels: str,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Distort every image, CHUNK at a time, with draws from ``rng``.

    Args:
        pixels: uint8 (N, 784), on the host or (reference only) the device.
        aug: the settings (``strength`` not yet applied).
        rng: draws the distortions, chunk after chunk.
        kernels: ``"fused"`` (``backprop.kernels.cpu.distort``, host arrays)
            or ``"reference"`` (``backprop.app.augment.reference.distort``).
        out: where to write, uint8 (N, 784); None allocates it.

    Returns:
        the distorted pixels, uint8 (N, 784); the same for either ``kernels``
        up to float rounding (``tests/app/test_augment.py``).
    """
    xp = xp_of(pixels)
    out = xp.empty_like(pixels) if out is None else out  # (N, 784)
    ranges = aug.at_strength()
    if kernels == "fused":
        from backprop.kernels import cpu

        weights = blur_weights()  # (K,)
    for lo in range(0, len(pixels), CHUNK):
        part = pixels[lo : lo + CHUNK]  # (B, 784)
        d = draw(rng, len(part), ranges)
        if kernels == "fused":
            cpu.distort(part, d, weights, CENTRE, out[lo : lo + CHUNK], workers=WORKERS)
        else:
            out[lo : lo + CHUNK] = reference.distort(part, d)
    return out


class EpochAugmenter:
    """Writes each epoch's distorted training set into the step's input array.

    Args:
        pixels: the training set's uint8 pixels on the host, (N, 784).
        target: the uint8 pixels the step reads, on its device, (N, 784);
            overwritten.
        aug: the settings.
        entropy: the run's augmentation key (``draw_entropy``).
        kernels: ``"fused"`` or ``"reference"``.
    """

    def __init__(
        self,
        pixels: np.ndarray,
        target: Array,
        aug: Augmentation,
        entropy: int,
        kernels: str,
    ) -> None:
        if target.dtype != np.uint8:
            raise ValueError(f"the target holds uint8 pixels, not {target.dtype}")
        if xp_of(target) is np and np.shares_memory(pixels, target):
            raise ValueError("the target must not share memory with the pixels")
        self.target, self.aug = target, aug
        self.entropy, self.kernels = entropy, kernels
        # the fused kernel works on the host; the reference where the data is
        on_host = kernels == "fused"
        self.pixels = pixels if on_host else to_device(pixels, xp_of(target))
        if on_host:  # compile the kernel (or load it from Numba's cache) now,
            # so that no epoch's time includes it
            distort_all(pixels[:1], aug, epoch_generator(entropy, 0), "fused")

    def fill(self, epoch: int) -> None:
        """Write epoch ``epoch``'s distorted images into ``target``."""
        rng = epoch_generator(self.entropy, epoch)
        if self.kernels == "fused":
            distort_all(self.pixels, self.aug, rng, "fused", out=self.target)
        else:
            self.target[...] = distort_all(self.pixels, self.aug, rng, "reference")
        images_changed(self.target)  # a fused step compresses them again
