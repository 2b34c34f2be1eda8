"""Prepare ordinary image files the way MNIST's digits were prepared.

MNIST's digits were size-normalised to fit a 20x20 box keeping their aspect
ratio (anti-aliasing gives grey levels) and placed in a 28x28 field so that
their centre of mass sits at its centre, white ink on black. A photo or drawing
of one digit gets the same treatment here:

1. read with Pillow, turn by its EXIF orientation, flatten transparency, grey;
2. take the background level from the image's border; the ink is whichever
   extreme lies farther from it, so dark-on-light and light-on-dark both work;
   the background becomes black and the strongest ink white;
3. crop to the ink;
4. scale the longer side to 20 pixels (Lanczos), keeping the aspect ratio;
5. paste into 28x28 so that the centre of mass lands on pixel (14, 14),
   where it lies in MNIST (measured over its training images).

Fashion-MNIST's products were prepared differently: the longer side scaled
to 28 and the picture centred by its bounding box. ``RECIPES`` holds both.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from backprop.errors import DataError, require

if TYPE_CHECKING:
    from PIL.Image import Image

SIDE = 28  # the model's input is SIDE x SIDE pixels
NOISE = 0.2  # ink weaker than this fraction of the strongest is background
MIN_CONTRAST = 0.08  # an image whose ink differs less from its border is blank
MAX_SIDE = 1024  # larger images are first shrunk to this (speed only)


@dataclass(frozen=True)
class Recipe:
    """How a dataset placed its pictures in the 28x28 field.

    Attributes:
        box: the longer side of the ink, in pixels, after scaling.
        center: ``"mass"`` (centre of mass at the middle) or ``"box"``
            (bounding box in the middle).
    """

    box: int
    center: str


RECIPES = {
    "mnist": Recipe(box=20, center="mass"),
    "fashion-mnist": Recipe(box=28, center="box"),
}


def center_of_mass(image: np.ndarray) -> tuple[float, float]:
    """The intensity-weighted mean ``(row, column)`` of a (H, W) image."""
    image = np.asarray(image, dtype=np.float64)  # (H, W)
    total = image.sum()
    if total <= 0:
        raise DataError("the image has no ink")
    rows = np.arange(image.shape[0]) @ image.sum(axis=1) / total
    cols = np.arange(image.shape[1]) @ image.sum(axis=0) / total
    return float(rows), float(cols)


def ink_bounds(image: np.ndarray) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of the non-zero pixels, bottom/right exclusive."""
    rows = np.flatnonzero(np.asarray(image).any(axis=1))
    cols = np.flatnonzero(np.asarray(image).any(axis=0))
    if rows.size == 0:
        raise DataError("the image has no ink")
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def open_image(path: str | Path) -> Image:
    """Open an image file with Pillow and load its pixels.

    Raises:
        DataError: the file is missing, not an image, damaged, or empty.
        MissingDependencyError: Pillow is not installed.
    """
    require("PIL", "Pillow", "pictures", "reading images")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return _load(path, str(path))


def decode_image(data: bytes, name: str = "image") -> Image:
    """``open_image`` of a file's bytes (an upload, a canvas's PNG).

    Args:
        data: the bytes of an image file (PNG, JPEG, ...).
        name: what error messages call it.

    Raises:
        DataError: the bytes are not an image, damaged, or empty.
        MissingDependencyError: Pillow is not installed.
    """
    require("PIL", "Pillow", "pictures", "reading images")
    return _load(io.BytesIO(data), name)


def _load(source: Path | io.BytesIO, name: str) -> Image:
    """Open, load and EXIF-turn an image with Pillow; errors name ``name``."""
    from PIL import Image as PILImage
    from PIL import ImageOps, UnidentifiedImageError

    try:
        with PILImage.open(source) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
    except UnidentifiedImageError:
        raise DataError(f"{name}: not an image file Pillow can read") from None
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as exc:
        raise DataError(f"{name}: damaged image ({exc})") from None
    if img.width == 0 or img.height == 0:
        raise DataError(f"{name}: empty image ({img.width}x{img.height} pixels)")
    return img


def to_grey(img: Image) -> np.ndarray:
    """Grey levels of a Pillow image, (H, W) float64 in [0, 255].

    Transparent pixels are laid on white, or on black when that leaves no
    contrast (light ink on a transparent background). Images larger than
    ``MAX_SIDE`` are shrunk first.
    """
    from PIL import Image as PILImage

    if max(img.size) > MAX_SIDE:
        img = img.copy()
        img.thumbnail((MAX_SIDE, MAX_SIDE), PILImage.Resampling.LANCZOS)
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    if not has_alpha:
        if img.mode.startswith("I"):  # 16- or 32-bit integer grey
            grey = np.asarray(img, dtype=np.float64)  # (H, W)
            return grey * (255 / 65535) if grey.max() > 255 else grey
        if img.mode not in ("L", "F"):
            img = img.convert("RGB")
        return np.asarray(img.convert("F"), dtype=np.float64)  # (H, W)
    rgba = img.convert("RGBA")
    grey = np.zeros(0)
    for background in ("white", "black"):
        flat = PILImage.new("RGBA", rgba.size, background)
        flat.alpha_composite(rgba)
        grey = np.asarray(flat.convert("L"), dtype=np.float64)  # (H, W)
        if np.ptp(grey) > MIN_CONTRAST * 255:
            break
    return grey


def ink_from_grey(grey: np.ndarray) -> np.ndarray:
    """Ink strength of each pixel in [0, 1]: background 0, strongest ink 1.

    Args:
        grey: grey levels, (H, W) in [0, 255].

    Returns:
        ink, (H, W) float64.

    Raises:
        DataError: the image is (nearly) uniform, so it holds no digit.
    """
    height, width = grey.shape
    frame = max(1, min(height, width) // 50)
    border = np.concatenate(
        [
            grey[:frame].ravel(),
            grey[-frame:].ravel(),
            grey[:, :frame].ravel(),
            grey[:, -frame:].ravel(),
        ]
    )  # (B,)
    background = float(np.median(border))
    light_ink = grey.max() - background > background - grey.min()
    ink = grey - background if light_ink else background - grey  # (H, W)
    peak = float(ink.max())
    if peak < MIN_CONTRAST * 255:
        raise DataError("no digit found: the image is blank or nearly uniform")
    ink = np.clip(ink / peak, 0.0, 1.0)  # (H, W), strongest ink 1
    return np.clip((ink - NOISE) / (1.0 - NOISE), 0.0, 1.0)  # (H, W)


def place(ink: np.ndarray, recipe: Recipe) -> np.ndarray:
    """Crop ink to its bounding box, scale it and put it in the 28x28 field.

    Args:
        ink: ink strength, (H, W) in [0, 1], background 0.
        recipe: the box size and centring rule.

    Returns:
        the prepared image, (28, 28) float32 in [0, 1], strongest ink 1.
    """
    from PIL import Image as PILImage

    top, bottom, left, right = ink_bounds(ink)
    digit = ink[top:bottom, left:right].astype(np.float32)  # (h, w)
    h, w = digit.shape
    scale = recipe.box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # (w', h')
    scaled = PILImage.fromarray(digit).resize(size, PILImage.Resampling.LANCZOS)
    small = np.clip(np.asarray(scaled, dtype=np.float64), 0.0, None)  # (h', w')
    small /= small.max()
    if recipe.center == "mass":
        row, col = center_of_mass(small)
        offset = (round(SIDE / 2 - col), round(SIDE / 2 - row))  # (x, y)
    else:
        offset = ((SIDE - size[0]) // 2, (SIDE - size[1]) // 2)
    field = PILImage.new("F", (SIDE, SIDE), 0.0)
    field.paste(PILImage.fromarray(small.astype(np.float32)), offset)
    return np.asarray(field, dtype=np.float32).copy()  # (28, 28)


def prepare_image(img: Image, recipe: str | Recipe = "mnist") -> np.ndarray:
    """A Pillow image of one digit (or garment) as the model's 28x28 input.

    Args:
        img: a ``PIL.Image.Image`` of any size and mode.
        recipe: ``"mnist"``, ``"fashion-mnist"`` or a ``Recipe``.

    Returns:
        (28, 28) float32 in [0, 1], ink bright on black; flatten it for the model.

    Raises:
        DataError: the image is blank or has pixels that are not numbers.
    """
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise DataError(
                f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}"
            )
        recipe = RECIPES[recipe]
    grey = to_grey(img)  # (H, W)
    if not np.isfinite(grey).all():  # a float TIFF can hold NaN or infinity
        bad = np.count_nonzero(~np.isfinite(grey))
        raise DataError(f"NaN or infinite values in {bad} of its {grey.size} pixels")
    return place(ink_from_grey(grey), recipe)


def prepare_file(path: str | Path, recipe: str | Recipe = "mnist") -> np.ndarray:
    """``prepare_image`` of an image file; errors name the file.

    Raises:
        DataError: the file is missing, not an image, damaged or blank.
    """
    img = open_image(path)
    try:
        return prepare_image(img, recipe)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
