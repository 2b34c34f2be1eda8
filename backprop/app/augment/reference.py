"""The distortions of ``--augment``, written with scipy.ndimage over a batch.

This is the readable version and the truth: ``backprop.kernels.cpu.augment``
does the same in one compiled loop and is tested against it. On the GPU the
same calls run through ``cupyx.scipy.ndimage``. Every function takes a whole
batch of images, (n, 28, 28) float32 in [0, 1], so each library call does n
images at once.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from backprop.app.augment.settings import BLUR_SIGMA, BLUR_TRUNCATE, CENTRE, SIDE, Draws
from backprop.device import to_device, xp_of

Array = Any  # a numpy.ndarray or cupy.ndarray

# The 3x3 cross of the thickness step, on the two image axes only.
CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)[None]  # (1, 3, 3)


def ndimage_of(xp: types.ModuleType) -> types.ModuleType:
    """``scipy.ndimage`` for NumPy arrays, ``cupyx.scipy.ndimage`` for CuPy's."""
    if xp is np:
        from scipy import ndimage
    else:  # pragma: no cover - needs a GPU
        from cupyx.scipy import ndimage
    return ndimage


def thicken(images: Array, amount: Array) -> Array:
    """Blend each image towards its dilation (amount > 0) or erosion (< 0).

    Args:
        images: (n, S, S) float32.
        amount: (n,) in [-1, 1].
    """
    ndi = ndimage_of(xp_of(images))
    xp = xp_of(images)
    grown = ndi.grey_dilation(images, footprint=CROSS, mode="constant")  # (n, S, S)
    shrunk = ndi.grey_erosion(images, footprint=CROSS, mode="constant")  # (n, S, S)
    a = amount[:, None, None]  # (n, 1, 1)
    target = xp.where(a > 0, grown, shrunk)  # (n, S, S)
    return images + xp.abs(a) * (target - images)  # (n, S, S)


def source_coordinates(inverse: Array, field: Array) -> Array:
    """Where each output pixel reads its input: (2, n, S, S) rows then columns.

    Args:
        inverse: (n, 2, 3), from ``Draws.inverse``.
        field: (n, 2, S, S) elastic displacement.
    """
    xp = xp_of(field)
    axis = xp.arange(SIDE, dtype=np.float64) - CENTRE  # (S,)
    rows, cols = axis[:, None], axis[None, :]  # (S, 1), (1, S)
    m = inverse[:, :, :, None, None]  # (n, 2, 3, 1, 1)
    mapped = m[:, :, 0] * rows + m[:, :, 1] * cols + m[:, :, 2] + CENTRE  # (n, 2, S, S)
    return xp.moveaxis(mapped + field, 1, 0)  # (2, n, S, S)


def warp(images: Array, inverse: Array, field: Array) -> Array:
    """Resample every image through its affine map and elastic field.

    Bilinear interpolation, zeros beyond the edge (``map_coordinates`` with
    ``order=1, mode="grid-constant"``); the first coordinate is each pixel's
    own image index, so the images do not mix.

    Args:
        images: (n, S, S) float32.
        inverse: (n, 2, 3).
        field: (n, 2, S, S).
    """
    xp = xp_of(images)
    ndi = ndimage_of(xp)
    n = images.shape[0]
    where = source_coordinates(inverse, field)  # (2, n, S, S)
    index = xp.broadcast_to(
        xp.arange(n, dtype=np.float64)[:, None, None], where[0].shape
    )
    coords = xp.stack([index, where[0], where[1]])  # (3, n, S, S)
    return ndi.map_coordinates(
        images, coords, order=1, mode="grid-constant", cval=0.0, prefilter=False
    )  # (n, S, S)


def blur(images: Array, amount: Array) -> Array:
    """Blend each image towards its Gaussian blur (sigma ``BLUR_SIGMA``).

    Args:
        images: (n, S, S) float32.
        amount: (n,) in [0, 1].
    """
    ndi = ndimage_of(xp_of(images))
    blurred = ndi.gaussian_filter(
        images,
        sigma=(0, BLUR_SIGMA, BLUR_SIGMA),
        mode="constant",
        truncate=BLUR_TRUNCATE,
    )  # (n, S, S)
    return images + amount[:, None, None] * (blurred - images)  # (n, S, S)


def add_noise(images: Array, amplitude: Array, noise: Array) -> Array:
    """Add uniform noise in [-amplitude, amplitude] from the drawn bytes."""
    unit = (noise.astype(np.float32) - np.float32(127.5)) / np.float32(127.5)
    return images + amplitude[:, None, None] * unit  # (n, S, S)


def to_pixels(images: Array) -> Array:
    """Clip to [0, 1] and round (halves up) to uint8 pixels 0-255, (n, S*S)."""
    xp = xp_of(images)
    scaled = xp.clip(images, 0.0, 1.0) * np.float32(255)  # (n, S, S)
    return (
        xp.floor(scaled + np.float32(0.5))
        .astype(np.uint8)
        .reshape(len(images), SIDE * SIDE)
    )


def distort(pixels: Array, d: Draws) -> Array:
    """All four distortions of a batch, in order: thickness, geometry, blur, noise.

    Images marked ``keep`` come back unchanged.

    Args:
        pixels: uint8 (n, S*S), on the host or the device.
        d: the batch's draws (on the host; moved to ``pixels``' device here).

    Returns:
        the distorted pixels, uint8 (n, S*S), on ``pixels``' device.
    """
    xp = xp_of(pixels)
    dev = {k: to_device(getattr(d, k), xp) for k in d.__dataclass_fields__}
    images = pixels.reshape(-1, SIDE, SIDE).astype(np.float32) / np.float32(255)
    images = thicken(images, dev["thickness"])
    field = dev["field"][dev["field_index"]]  # (n, 2, S, S)
    images = warp(images, dev["inverse"], field).astype(np.float32)
    images = blur(images, dev["blur"])
    noise = dev["noise"][dev["noise_index"]]  # (n, S, S)
    images = add_noise(images, dev["noise_amplitude"], noise)
    return xp.where(dev["keep"][:, None], pixels, to_pixels(images))  # (n, S*S)
