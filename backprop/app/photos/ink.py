"""Find the ink of a grey image: remove the paper's light and texture, threshold.

A photo or scan of a page is not black ink on a white field: the light falls
unevenly, the paper has texture, a speck of dust is ink too. Before a digit is
cut out (``backprop.app.photos.segment``) and placed like MNIST's
(``backprop.app.photos.prepare``), the ink is separated from the paper:

1. polarity: the page's level is the median of its border; the ink is
   whichever extreme lies farther from it (dark ink on light paper, or light
   on dark), and is turned bright;
2. the light (``light_of``): a quadratic surface fitted to the paper of a
   copy shrunk to about ``SMALL_SIDE`` pixels, starting from the border and
   refitted without what stands above it (the ink) until it settles on the
   paper; it takes the light's slope and its fall-off towards the edges;
3. the background (``background_of``): what the surface missed, averaged by
   a wide Gaussian (``scipy.ndimage``) over the paper alone (the pixels more
   than ``FLOOR_SIGMAS`` above the surface, and ``HALO`` pixels around them,
   are left out), added to the surface;
4. contrast: the image minus its background, in grey levels; for dark ink
   divided by the paper's level (relative to its median), since the light
   scales the paper's texture and the ink's contrast alike;
5. the paper's texture: the median and robust spread of the contrast along
   the border; strong ink exceeds it by ``FLOOR_SIGMAS`` spreads and
   Otsu's threshold of the contrast (``skimage.filters.threshold_otsu``);
   these pixels are what ``backprop.app.photos.segment`` labels into digits. Ink that
   is no strokes is refused, as a blank image is: binary noise, where the
   paper's spread is 0 and every other pixel stands out, is ink and paper
   broken into many specks (``specks``), more than dust on a page;
6. a digit's ink (``soft_ink``): its strong pixels grown into the weaker
   pixels touching them (hysteresis, above ``WEAK_SIGMAS`` spreads), scaled
   so that its own strongest ink is 1 and ``NOISE`` of that is 0, which keeps
   the anti-aliased grey edges.

On a clean image (a flat background) the background is that flat level and
the ink comes out as it always did: border level 0, strongest ink 1, the
weakest ``NOISE`` cut off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backprop.errors import DataError, require

NOISE = 0.2  # ink weaker than this fraction of a digit's strongest is background
MIN_CONTRAST = 0.08  # an image whose ink differs less from its border is blank
SMALL_SIDE = 64  # the background is estimated on a copy about this large
FLOOR_SIGMAS = 6.0  # strong ink exceeds the paper's texture by this many sigmas
WEAK_SIGMAS = 3.0  # a digit's weaker ink exceeds it by this many
HALO = 3  # pixels around the first guess of the ink that are not taken for paper
FILL = 1 / 32  # the paper level is averaged over a Gaussian this wide (of the side)
FILL_FLOOR = 0.01  # where there is almost no paper, the surface alone is the level
CLIP_SIGMAS = 2.5  # pixels this far above the light's surface are left out of it
CLIP_ROUNDS = 5  # ... in this many fits
ROUNDING = 1e-9  # weaker ink (of a digit's strongest) is the background's rounding
MAD_TO_SIGMA = 1.4826  # a normal distribution's sigma per median absolute deviation
# Noise, not a digit: pieces of ink smaller than SPECK_PIXELS, and pieces of
# paper between the ink as small, more than MAX_SPECK_DENSITY of them per pixel
# (and at least MIN_SPECKS). Binary noise of 1% to 70% ink has 0.009 or more;
# MNIST's test digits (their holes, stray pixels) at most 0.0051, the images of
# ood/sets 0.001, a page of three digits and 600 specks of dust 0.0032.
SPECK_PIXELS = 12
MAX_SPECK_DENSITY = 0.008
MIN_SPECKS = 5


@dataclass(frozen=True)
class Ink:
    """The ink of one grey image, the paper removed.

    Attributes:
        contrast: ink brightness above the background, (H, W) float64 in
            grey levels; the paper is near 0.
        strong: the pixels above Otsu's threshold and ``FLOOR_SIGMAS``
            above the paper's texture, (H, W) bool.
        floor: ``WEAK_SIGMAS`` above the paper's texture: weaker contrast is
            never ink.
    """

    contrast: np.ndarray
    strong: np.ndarray
    floor: float


def border_of(image: np.ndarray) -> np.ndarray:
    """The pixels of a frame about 2% of the shorter side wide, (B,)."""
    height, width = image.shape
    frame = max(1, min(height, width) // 50)
    return np.concatenate(
        [
            image[:frame].ravel(),
            image[-frame:].ravel(),
            image[:, :frame].ravel(),
            image[:, -frame:].ravel(),
        ]
    )  # (B,)


def resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``shape`` (H, W): averaged when shrunk, else bilinear."""
    from PIL import Image as PILImage

    if image.shape == shape:
        return image
    shrink = shape[0] < image.shape[0] or shape[1] < image.shape[1]
    how = PILImage.Resampling.BOX if shrink else PILImage.Resampling.BILINEAR
    resized = PILImage.fromarray(image.astype(np.float32)).resize(shape[::-1], how)
    return np.asarray(resized, dtype=np.float64)  # (H', W')


def robust_spread(values: np.ndarray) -> tuple[float, float]:
    """The median of ``values`` and their standard deviation from the MAD."""
    middle = float(np.median(values))
    return middle, MAD_TO_SIGMA * float(np.median(np.abs(values - middle)))


def light_of(small: np.ndarray) -> np.ndarray:
    """A quadratic surface under bright ink: the light's slope and fall-off.

    Least squares over the border first (taken for paper, as for the
    polarity, less what stands out from its median), then ``CLIP_ROUNDS``
    times over every pixel at most ``CLIP_SIGMAS`` robust standard
    deviations above the last surface, so that it settles on the paper and
    leaves the ink out.

    Args:
        small: a shrunk copy of the ink-bright image, (h, w).

    Returns:
        the surface, (h, w) float64.
    """
    height, width = small.shape
    rows, cols = np.mgrid[-1 : 1 : height * 1j, -1 : 1 : width * 1j]  # (h, w) each
    terms = np.polynomial.polynomial.polyvander2d(rows.ravel(), cols.ravel(), (2, 2))
    terms = terms[:, [0, 1, 2, 3, 4, 6]]  # (h w, 6): 1, c, c^2, r, r c, r^2
    values = small.ravel()  # (h w,)
    tiny = 1e-9 * (1 + np.abs(values).max())  # rounding, on a flat background
    border = np.zeros((height, width), dtype=bool)  # (h, w)
    border[[0, -1]] = border[:, [0, -1]] = True
    middle, spread = robust_spread(small[border])
    paper = border.ravel() & (np.abs(values - middle) <= CLIP_SIGMAS * spread + tiny)
    for _ in range(CLIP_ROUNDS):
        coef, *_ = np.linalg.lstsq(terms[paper], values[paper], rcond=None)  # (6,)
        above = values - terms @ coef  # (h w,)
        _, spread = robust_spread(above[paper])
        paper = above <= CLIP_SIGMAS * spread + tiny  # (h w,)
    return (terms @ coef).reshape(height, width)  # (h, w)


def background_of(bright: np.ndarray) -> np.ndarray:
    """The slowly varying paper level under bright ink.

    A quadratic surface (``light_of``) takes the light's slope; the paper's
    departures from it, averaged by a wide Gaussian over the pixels that are
    not ink, take the rest.

    Args:
        bright: grey levels with the ink brighter than the paper, (H, W).

    Returns:
        the paper's level at each pixel, (H, W) float64.
    """
    from scipy import ndimage

    height, width = bright.shape
    shrink = max(1.0, max(height, width) / SMALL_SIDE)
    small = (max(1, round(height / shrink)), max(1, round(width / shrink)))  # (h, w)
    light = resize(light_of(resize(bright, small)), (height, width))  # (H, W)
    first = bright - light  # (H, W), ink and what the surface missed
    middle, spread = robust_spread(border_of(first))
    tiny = 1e-9 * (1 + np.abs(bright).max())  # rounding, on a flat background
    ink = first > middle + FLOOR_SIGMAS * spread + tiny  # (H, W)
    paper = ~ndimage.binary_dilation(ink, np.ones((3, 3), bool), iterations=HALO)
    sigma = FILL * max(small)
    weight = ndimage.gaussian_filter(resize(paper * 1.0, small), sigma)  # (h, w)
    rest = ndimage.gaussian_filter(resize(first * paper, small), sigma)  # (h, w)
    return light + resize(rest / (weight + FILL_FLOOR), (height, width))  # (H, W)


def find_ink(grey: np.ndarray) -> Ink:
    """Remove the background of a grey image and threshold its ink.

    Args:
        grey: grey levels, (H, W) in [0, 255].

    Returns:
        the contrast, the strong ink and the paper's floor.

    Raises:
        DataError: the image is (nearly) uniform, so it holds no digit.
    """
    require("skimage", "scikit-image", "pictures", "finding ink in images")
    from skimage.filters import threshold_otsu

    grey = np.asarray(grey, dtype=np.float64)  # (H, W)
    level = float(np.median(border_of(grey)))
    light_ink = grey.max() - level > level - grey.min()
    bright = grey if light_ink else -grey  # (H, W), ink brighter than paper
    background = background_of(bright)  # (H, W)
    contrast = bright - background  # (H, W), in grey levels
    if not light_ink:  # the light scales the paper's texture and the ink alike
        lit = np.maximum(-background, MIN_CONTRAST * 255)  # (H, W), paper's level
        contrast *= float(np.median(lit)) / lit  # (H, W), as if lit evenly
    middle, spread = robust_spread(border_of(contrast))
    if contrast.max() - max(middle, 0.0) < MIN_CONTRAST * 255:
        raise DataError("no digit found: the image is blank or nearly uniform")
    floor = middle + FLOOR_SIGMAS * spread
    strong = contrast > max(float(threshold_otsu(contrast)), floor)  # (H, W)
    if not strong.any():
        raise DataError("no digit found: no ink stands out from the paper")
    count = specks(strong, np.ones((3, 3), dtype=bool))  # 8-neighbours
    count += specks(~strong, None)  # 4-neighbours: the gaps between the ink
    if count >= MIN_SPECKS and count > MAX_SPECK_DENSITY * strong.size:
        raise DataError("no digit found: the ink is scattered like noise, not strokes")
    return Ink(contrast=contrast, strong=strong, floor=middle + WEAK_SIGMAS * spread)


def specks(mask: np.ndarray, structure: np.ndarray | None) -> int:
    """How many pieces of ``mask`` have fewer than ``SPECK_PIXELS`` pixels.

    Args:
        mask: the pixels to cut into pieces, (H, W) bool.
        structure: the neighbours that connect pixels, (3, 3) bool, or None
            for the four nearest.
    """
    from scipy import ndimage

    labels, _ = ndimage.label(mask, structure=structure)  # (H, W)
    sizes = np.bincount(labels.ravel())  # (N + 1,)
    sizes[0] = 0
    return int(np.count_nonzero((sizes > 0) & (sizes < SPECK_PIXELS)))


def soft_ink(ink: Ink, digit: np.ndarray, territory: np.ndarray) -> np.ndarray:
    """One digit's ink strength in [0, 1], strongest 1, grey edges kept.

    Args:
        ink: the image's ink (``find_ink``).
        digit: the digit's strong pixels, (H, W) bool.
        territory: where its weaker ink may lie (not in another digit's
            reach), (H, W) bool.

    Returns:
        ink strength, (H, W) float64: 0 outside the digit.
    """
    from scipy import ndimage

    peak = float(ink.contrast[digit].max())
    low = max(NOISE * peak, ink.floor)
    weak = (ink.contrast > low) & territory  # (H, W)
    labels, _ = ndimage.label(weak, structure=np.ones((3, 3)))  # (H, W)
    touching = np.unique(labels[digit & weak])
    keep = np.isin(labels, touching[touching > 0])  # (H, W)
    strength = np.clip((ink.contrast - low) / max(peak - low, 1e-12), 0.0, 1.0)
    strength[strength < ROUNDING] = 0.0  # a flat background's rounding is no ink
    return np.where(keep, strength, 0.0)  # (H, W)
