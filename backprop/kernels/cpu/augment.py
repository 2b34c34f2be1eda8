"""The distortions of ``--augment``, one image at a time in one compiled loop.

Reference: ``backprop.app.augment.reference.distort`` (scipy.ndimage's
``grey_dilation``/``grey_erosion``, ``map_coordinates`` and
``gaussian_filter``, then the noise and the rounding). This kernel takes the
same ``Draws`` and does the same four steps per image while the image sits in
the cache, instead of one library pass over the whole batch per step;
``tests/app/test_augment.py`` checks each step, and all four together, against the
reference (pixels within 1 of 255, from float rounding).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import numpy as np

from backprop.kernels.cpu.compile import Array, check_shapes, jit_nogil


@jit_nogil
def _distort(
    pixels: Array,
    keep: Array,
    inverse: Array,
    field: Array,
    field_index: Array,
    thickness: Array,
    blur: Array,
    amplitude: Array,
    noise: Array,
    noise_index: Array,
    weights: Array,
    centre: float,
    out: Array,
) -> None:
    n, s, k = pixels.shape[0], field.shape[2], weights.shape[0]
    radius = k // 2
    f32 = np.float32
    # Zero-padded buffers, so no loop below tests an edge: ``src`` and
    # ``thick`` have 1 zero row/column before and 2 after the image (bilinear
    # reads reach there), ``warped`` has ``radius`` on each side (the blur's).
    src = np.zeros((s + 3, s + 3), f32)
    thick = np.zeros((s + 3, s + 3), f32)
    warped = np.zeros((s + 2 * radius, s + 2 * radius), f32)
    along = np.zeros((s + 2 * radius, s), f32)
    acc = np.zeros(s, f32)
    wide = np.int32(s + 3)
    at = np.zeros(s, np.int32)
    fy = np.zeros(s, f32)
    fx = np.zeros(s, f32)
    flat_src = src.reshape(wide * wide)  # the same memory
    flat_thick = thick.reshape(wide * wide)
    w = weights.astype(f32)
    low, high = f32(-1.0), f32(s)
    for i in range(n):
        if keep[i]:
            out[i] = pixels[i]
            continue
        for r in range(s):
            for c in range(s):
                src[r + 1, c + 1] = f32(pixels[i, r * s + c]) / f32(255)
        fi, ni = field_index[i], noise_index[i]
        # 1. thickness: towards the max (dilation) or min (erosion) of the cross
        t = f32(thickness[i])
        flat = flat_thick if t != 0 else flat_src  # 0: the image as it is
        if t > 0:
            for r in range(1, s + 1):
                for c in range(1, s + 1):
                    v = src[r, c]
                    m = max(
                        v, src[r - 1, c], src[r + 1, c], src[r, c - 1], src[r, c + 1]
                    )
                    thick[r, c] = v + t * (m - v)
        elif t < 0:
            for r in range(1, s + 1):
                for c in range(1, s + 1):
                    v = src[r, c]
                    m = min(
                        v, src[r - 1, c], src[r + 1, c], src[r, c - 1], src[r, c + 1]
                    )
                    thick[r, c] = v - t * (m - v)
        # 2. geometry: bilinear from where the map sends each output pixel;
        # a position clamped to [-1, s] reads only the zero padding
        m00, m01, m02 = (
            f32(inverse[i, 0, 0]),
            f32(inverse[i, 0, 1]),
            f32(inverse[i, 0, 2]),
        )
        m10, m11, m12 = (
            f32(inverse[i, 1, 0]),
            f32(inverse[i, 1, 1]),
            f32(inverse[i, 1, 2]),
        )
        cf = f32(centre)
        for r in range(s):
            dr = f32(r) - cf
            for c in range(s):  # where each pixel of the row reads
                dc = f32(c) - cf
                y = m00 * dr + m01 * dc + m02 + cf + field[fi, 0, r, c]
                x = m10 * dr + m11 * dc + m12 + cf + field[fi, 1, r, c]
                # clamped to [-1, s] and shifted by the padding's 1 into
                # [0, s + 1], where the int32 conversion floors
                y = (y if y > low else low) if y < high else high
                x = (x if x > low else low) if x < high else high
                y, x = y + f32(1.0), x + f32(1.0)
                yi, xi = np.int32(y), np.int32(x)
                fy[c], fx[c] = y - f32(yi), x - f32(xi)
                at[c] = yi * wide + xi  # flat index into the padded buffer
            for c in range(s):  # the four reads of each pixel, and the blend
                k0 = at[c]
                p00, p01 = flat[k0], flat[k0 + 1]
                p10, p11 = flat[k0 + wide], flat[k0 + wide + 1]
                top = p00 + fx[c] * (p01 - p00)
                bottom = p10 + fx[c] * (p11 - p10)
                warped[r + radius, c + radius] = top + fy[c] * (bottom - top)
        # 3. blur: the separable Gaussian, columns then rows (inner loops run
        # along a row, which the compiler vectorises), then the blend; an
        # amount of 0 skips it, and a noise amplitude of 0 the noise
        b, a = f32(blur[i]), f32(amplitude[i])
        if b != 0:
            along[:, :] = 0.0
            for r in range(s + 2 * radius):
                for j in range(k):
                    for c in range(s):
                        along[r, c] += w[j] * warped[r, c + j]
        for r in range(s):
            if b != 0:
                acc[:] = 0.0
                for j in range(k):
                    for c in range(s):
                        acc[c] += w[j] * along[r + j, c]
            for c in range(s):
                v = warped[r + radius, c + radius]
                if b != 0:
                    v += b * (acc[c] - v)
                # 4. noise, then clip and round to a pixel
                if a != 0:
                    v += a * ((f32(noise[ni, r, c]) - f32(127.5)) / f32(127.5))
                v = (v if v > f32(0.0) else f32(0.0)) if v < f32(1.0) else f32(1.0)
                out[i, r * s + c] = np.uint8(v * f32(255) + f32(0.5))  # v >= 0


def distort(
    pixels: Array,
    draws: Any,
    weights: Array,
    centre: float,
    out: Array,
    workers: int = 1,
) -> Array:
    """Thickness, geometry, blur and noise of n images, into ``out``.

    Args:
        pixels: uint8, (n, S*S).
        draws: a ``backprop.app.augment.settings.Draws`` for n images: ``inverse``
            (n, 2, 3) float64; ``keep`` (n,) bool; ``field`` (m, 2, S, S) float32 and
            ``field_index`` (n,); ``thickness``, ``blur``, ``noise_amplitude``
            (n,) float32; ``noise`` (m, S, S) uint8 and ``noise_index`` (n,).
        weights: the 1-D Gaussian of the blur, (K,) float64, K odd.
        centre: the pixel position rotations turn about.
        out: uint8, (n, S*S); overwritten.
        workers: threads, each distorting a contiguous share of the images
            (the kernel releases the GIL); the result does not depend on it.

    Returns:
        ``out``.

    Raises:
        ValueError: the shapes do not match, or an index is out of range.
    """
    d = draws
    n, side = pixels.shape[0], d.field.shape[-1]
    m_field, m_noise = d.field.shape[0], d.noise.shape[0]
    check_shapes(
        "distort",
        pixels.shape == (n, side * side)
        and out.shape == pixels.shape
        and d.inverse.shape == (n, 2, 3)
        and d.field.shape == (m_field, 2, side, side)
        and d.thickness.shape == d.blur.shape == d.noise_amplitude.shape == (n,)
        and d.field_index.shape == d.noise_index.shape == d.keep.shape == (n,)
        and d.noise.shape == (m_noise, side, side)
        and weights.ndim == 1
        and weights.shape[0] % 2 == 1,
        pixels=pixels,
        inverse=d.inverse,
        field=d.field,
        noise=d.noise,
        out=out,
    )
    for name, index, size in (
        ("field_index", d.field_index, m_field),
        ("noise_index", d.noise_index, m_noise),
    ):
        if n and not (0 <= index.min() and index.max() < size):
            raise ValueError(f"distort: {name} is out of range [0, {size})")

    def part(lo: int, hi: int) -> None:
        _distort(
            pixels[lo:hi],
            d.keep[lo:hi],
            d.inverse[lo:hi],
            d.field,
            d.field_index[lo:hi],
            d.thickness[lo:hi],
            d.blur[lo:hi],
            d.noise_amplitude[lo:hi],
            d.noise,
            d.noise_index[lo:hi],
            weights,
            float(centre),
            out[lo:hi],
        )

    bounds = np.linspace(0, n, max(1, min(workers, n)) + 1).astype(int)
    if len(bounds) == 2:
        part(0, n)
        return out
    with ThreadPoolExecutor(len(bounds) - 1) as pool:
        for done in [pool.submit(part, lo, hi) for lo, hi in pairwise(bounds)]:
            done.result()
    return out
