"""Prepare ordinary image files the way MNIST's digits were prepared.

MNIST's digits were size-normalised to fit a 20x20 box keeping their aspect
ratio (anti-aliasing gives grey levels) and placed in a 28x28 field so that
their centre of mass sits at its centre, white ink on black. A photo or drawing
of one digit gets the same treatment here:

1. read with Pillow, turn by its EXIF orientation, flatten transparency, grey;
2. find the ink (``backprop.app.photos.ink``): the border tells the paper from the ink
   (dark-on-light and light-on-dark both work), the paper's uneven light and
   texture are removed, Otsu's threshold marks the strong ink; the background
   becomes black and the strongest ink white;
3. find the digit (``backprop.app.photos.segment``): the connected piece of ink with the
   most ink, its broken strokes merged, specks left out (in an image no
   larger than 28x28, a digit at MNIST's own size, all the ink); crop to it;
4. scale the longer side to 20 pixels (Lanczos), keeping the aspect ratio;
5. paste into 28x28 so that the centre of mass lands on pixel (14, 14),
   where it lies in MNIST (measured over its training images).

``prepare_digits`` does steps 3 to 5 for every digit of a number instead.
Fashion-MNIST's products were prepared differently: every piece of ink kept,
the longer side scaled to 28 and the picture centred by its bounding box.
``RECIPES`` holds both.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from backprop.app.photos.ink import MIN_CONTRAST, find_ink
from backprop.app.photos.segment import count_digits, find_digits
from backprop.app.runs.files import not_a_file
from backprop.errors import DataError, require

if TYPE_CHECKING:
    from PIL.Image import Image

SIDE = 28  # the model's input is SIDE x SIDE pixels
MAX_SIDE = 1024  # larger images are first shrunk to this (speed only)
MIN_SIDE = 8  # smaller images are refused: too few pixels for a digit


@dataclass(frozen=True)
class Recipe:
    """How a dataset placed its pictures in the 28x28 field.

    Attributes:
        box: the longer side of the ink, in pixels, after scaling.
        center: ``"mass"`` (centre of mass at the middle) or ``"box"``
            (bounding box in the middle).
        parts: ``"main"`` (the piece of ink with the most ink: a digit, its
            broken strokes merged, specks left out) or ``"all"`` (every piece
            but specks: a garment's parts need not touch); see
            ``backprop.app.photos.segment``.
    """

    box: int
    center: str
    parts: str = "main"


RECIPES = {
    "mnist": Recipe(box=20, center="mass"),
    "fashion-mnist": Recipe(box=28, center="box", parts="all"),
}


@dataclass(frozen=True)
class Found:
    """One digit of an image found by ``prepare_digits``.

    Attributes:
        box: ``(left, top, right, bottom)`` of its ink in the image's pixels,
            right and bottom exclusive.
        prepared: the model's input, (28, 28) float32 in [0, 1].
        touching: 0 for a digit; for a piece of touching digits that could
            not be split, how many digits it seems to hold.
    """

    box: tuple[int, int, int, int]
    prepared: np.ndarray
    touching: int = 0


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
        DataError: the file is missing, a folder or device, unreadable, not an
            image, damaged, too large, or empty.
        MissingDependencyError: Pillow is not installed.
    """
    require("PIL", "Pillow", "pictures", "reading images")
    path = Path(path)
    why = not_a_file(path)  # a folder, a pipe, a loop of links ...
    if why is not None:
        raise DataError(f"{path}: {why.replace('a file', 'an image file')}")
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
    """Open, load and EXIF-turn an image with Pillow; errors name ``name``.

    Pillow's warning about an image over its pixel limit is silenced (a large
    photo is shrunk at once); an image over twice the limit is refused.
    """
    from PIL import Image as PILImage
    from PIL import ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(source) as img:
                img.load()
                img = ImageOps.exif_transpose(img)
    except UnidentifiedImageError:
        raise DataError(f"{name}: not an image file Pillow can read") from None
    except PILImage.DecompressionBombError as exc:
        raise DataError(f"{name}: too large to read ({exc})") from None
    except OSError as exc:
        if exc.errno is not None:  # the system's: no permission, a device error
            raise DataError(f"{name}: cannot read it ({exc.strerror})") from None
        raise DataError(f"{name}: damaged image ({exc})") from None
    except (ValueError, SyntaxError) as exc:
        raise DataError(f"{name}: damaged image ({exc})") from None
    if img.width == 0 or img.height == 0:
        raise DataError(f"{name}: empty image ({img.width}x{img.height} pixels)")
    return img


def to_grey(img: Image) -> np.ndarray:
    """Grey levels of a Pillow image, (H, W) float64 in [0, 255].

    Images larger than ``MAX_SIDE`` are shrunk first; see ``grey_levels``.
    """
    from PIL import Image as PILImage

    if max(img.size) > MAX_SIDE:
        img = img.copy()
        img.thumbnail((MAX_SIDE, MAX_SIDE), PILImage.Resampling.LANCZOS)
    return grey_levels(img)


def grey_levels(img: Image) -> np.ndarray:
    """Grey levels of a Pillow image at its own size, (H, W) float64 in [0, 255].

    16- and 32-bit integers are scaled from 0 to 65535 (unless none is over
    255), floating point from 0 to 1 (if all lie in it). Transparent pixels
    are laid on white, or on black when that leaves no contrast (light ink on
    a transparent background).
    """
    from PIL import Image as PILImage

    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    if not has_alpha:
        if img.mode.startswith("I"):  # 16- or 32-bit integer grey
            grey = np.asarray(img, dtype=np.float64)  # (H, W)
            return grey * (255 / 65535) if grey.max() > 255 else grey
        if img.mode not in ("L", "F"):
            img = img.convert("RGB")
        grey = np.asarray(img.convert("F"), dtype=np.float64)  # (H, W)
        if img.mode == "F":
            finite = grey[np.isfinite(grey)]  # (n,), NaN is refused later
            if finite.size and finite.min() >= 0 and finite.max() <= 1:
                grey = grey * 255  # (H, W), from [0, 1]
        return grey
    rgba = img.convert("RGBA")
    grey = np.zeros(0)
    for background in ("white", "black"):
        flat = PILImage.new("RGBA", rgba.size, background)
        flat.alpha_composite(rgba)
        grey = np.asarray(flat.convert("L"), dtype=np.float64)  # (H, W)
        if np.ptp(grey) > MIN_CONTRAST * 255:
            break
    return grey


def whole_if_mnist_sized(grey: np.ndarray, parts: str) -> str:
    """``"all"`` for an image no larger than ``SIDE`` x ``SIDE``, else ``parts``.

    Such an image is one digit at MNIST's own size, where a single pixel is no
    speck of dust but part of the digit (MNIST's own digits have stray ones):
    all its ink is kept, as it is in MNIST.
    """
    return "all" if max(grey.shape) <= SIDE else parts


def ink_from_grey(grey: np.ndarray, parts: str = "main") -> np.ndarray:
    """The ink of an image's digit in [0, 1]: background 0, strongest ink 1.

    The paper's light and texture are removed first
    (``backprop.app.photos.ink``); specks and smaller marks are left out
    (``backprop.app.photos.segment``), except in an image
    no larger than MNIST's (``whole_if_mnist_sized``).

    Args:
        grey: grey levels, (H, W) in [0, 255].
        parts: ``"main"`` (the digit) or ``"all"`` (every piece of ink).

    Returns:
        ink, (H, W) float64.

    Raises:
        DataError: the image is (nearly) uniform, so it holds no digit.
    """
    digit = find_digits(find_ink(grey), whole_if_mnist_sized(grey, parts))[0]
    top, bottom, left, right = digit.box
    ink = np.zeros(grey.shape)  # (H, W)
    ink[top:bottom, left:right] = digit.ink
    return ink


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


def recipe_of(recipe: str | Recipe) -> Recipe:
    """A ``Recipe`` given by name or itself.

    Raises:
        DataError: there is no recipe of that name.
    """
    if isinstance(recipe, Recipe):
        return recipe
    if recipe not in RECIPES:
        raise DataError(
            f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}"
        )
    return RECIPES[recipe]


def finite_grey(img: Image) -> np.ndarray:
    """``to_grey`` of an image, refusing NaN and infinite pixels.

    Raises:
        DataError: the image is smaller than ``MIN_SIDE`` on a side, or some
            pixels are not numbers (a float TIFF can hold them).
    """
    if min(img.size) < MIN_SIDE:
        raise DataError(
            f"too small to hold a digit ({img.width}x{img.height} pixels; "
            f"at least {MIN_SIDE}x{MIN_SIDE})"
        )
    grey = to_grey(img)  # (H, W)
    if not np.isfinite(grey).all():
        bad = np.count_nonzero(~np.isfinite(grey))
        raise DataError(f"NaN or infinite values in {bad} of its {grey.size} pixels")
    return grey


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
    recipe = recipe_of(recipe)
    return place(ink_from_grey(finite_grey(img), recipe.parts), recipe)


def prepare_one(img: Image, recipe: str | Recipe = "mnist") -> tuple[np.ndarray, int]:
    """``prepare_image``'s (28, 28) input, and how many digits the image holds.

    The count is ``backprop.app.photos.segment.count_digits`` (touching digits
    counted by their width); 1 where all the ink is kept (``"fashion-mnist"``,
    an image no larger than 28x28). Raises as ``prepare_image`` does.
    """
    recipe = recipe_of(recipe)
    grey = finite_grey(img)  # (H, W)
    ink = find_ink(grey)
    parts = whole_if_mnist_sized(grey, recipe.parts)
    digit = find_digits(ink, parts)[0]
    count = count_digits(ink) if parts == "main" else 1
    return place(digit.ink, recipe), count  # its ink is cropped to its box


def prepare_digits(img: Image, recipe: str | Recipe = "mnist") -> list[Found]:
    """Every digit of a number in an image, in reading order, each a 28x28 input.

    Each digit's own ink is placed exactly as ``prepare_image`` places one
    digit's (``backprop.app.photos.segment`` finds them).

    Args:
        img: a ``PIL.Image.Image`` of any size and mode.
        recipe: ``"mnist"``, ``"fashion-mnist"`` or a ``Recipe``.

    Returns:
        the digits found, at least one.

    Raises:
        DataError: the image is blank or has pixels that are not numbers.
    """
    recipe = recipe_of(recipe)
    grey = finite_grey(img)  # (H, W), maybe shrunk
    sx, sy = img.width / grey.shape[1], img.height / grey.shape[0]
    return [
        Found(
            box=(
                math.floor(left * sx),
                math.floor(top * sy),
                min(img.width, math.ceil(right * sx)),
                min(img.height, math.ceil(bottom * sy)),
            ),
            prepared=place(digit.ink, recipe),
            touching=digit.touching,
        )
        for digit in find_digits(find_ink(grey), whole_if_mnist_sized(grey, "each"))
        for top, bottom, left, right in [digit.box]
    ]


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
