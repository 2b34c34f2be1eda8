"""Pages the tests draw: real MNIST test digits on unevenly lit, textured paper.

A page is its light (a gradient across it, dimmer towards the edges) times
the paper's reflectance (texture: blurred noise); ink is pasted as a map in
[0, 1] (MNIST's white-on-black digits, scaled) and darkens the paper to the
ink's own reflectance. Also a tiny model, trained once on MNIST by the
engine itself (not by ``backprop.train``), to read them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from backprop.app.photos.prepare import prepare_image
from backprop.app.runs import Checkpoint, save_checkpoint
from backprop.data import load_pixels
from backprop.model import MLP
from backprop.optim import Adam


@cache
def mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST as ``(train pixels (N, 784) uint8, labels, test pixels, labels)``."""
    (x, y), (xt, yt) = load_pixels("mnist", None, {})
    return x, y, xt, yt


def train_model(path: Path) -> MLP:
    """A [784, 64, 10] model, one epoch of Adam on MNIST (about 94% on its test)."""
    x, y, _, _ = mnist()
    x = x.astype(np.float32) / 255  # (N, 784)
    model = MLP([784, 64, 10], seed=0)
    optimizer = Adam(1e-3)
    order = np.random.default_rng(0).permutation(len(x))
    for start in range(0, len(x), 100):
        batch = order[start : start + 100]
        _, grads = model.loss_and_grads(x[batch], y[batch])
        optimizer.step(model.params, grads)
    save_checkpoint(path, Checkpoint(model.params, config={"dataset": "mnist"}))
    return model


def confident_digits(model: MLP, classes: list[int], sure: float = 0.95) -> list[int]:
    """Indices of MNIST test digits of these classes the model reads surely.

    Each is the first of its class (not used before in the list) whose own
    file, prepared as ``predict`` prepares it, gets its class with at least
    ``sure`` probability.
    """
    _, _, xt, yt = mnist()
    chosen: list[int] = []
    for digit in classes:
        for i in np.flatnonzero(yt == digit):
            if i in chosen:
                continue
            x = prepare_image(Image.fromarray(xt[i].reshape(28, 28)))  # (28, 28)
            probs = model.predict_proba(x.reshape(1, -1))[0]  # (10,)
            if probs.argmax() == digit and probs[digit] >= sure:
                chosen.append(int(i))
                break
    return chosen


def digit_ink(index: int, scale: float = 1.0) -> np.ndarray:
    """MNIST test digit ``index`` as ink in [0, 1], scaled, cropped: (h, w)."""
    _, _, xt, _ = mnist()
    ink = xt[index].reshape(28, 28).astype(np.float32) / 255  # (28, 28)
    if scale != 1.0:
        side = round(28 * scale)
        img = Image.fromarray(ink).resize((side, side), Image.Resampling.BILINEAR)
        ink = np.asarray(img)  # (side, side)
    ink = np.clip(ink, 0.0, 1.0)
    rows = np.flatnonzero(ink.max(axis=1) > 0)
    cols = np.flatnonzero(ink.max(axis=0) > 0)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # (h, w)


def paper(
    shape: tuple[int, int],
    seed: int = 0,
    light: tuple[float, float] = (0.55, 1.0),
    texture: float = 0.06,
    falloff: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
    """The light and the paper's reflectance of a page, (H, W) each.

    Args:
        shape: ``(height, width)``.
        seed: for the texture.
        light: the light at the page's darkest and brightest corner.
        texture: the paper's grain, a standard deviation relative to it.
        falloff: how much dimmer the light is at the edges than near the
            middle of the top (about, relative).
    """
    height, width = shape
    rows, cols = np.mgrid[0:height, 0:width] / max(height, width)  # (H, W) each
    slope = 0.7 * cols / cols.max() + 0.3 * rows / rows.max()  # (H, W) in [0, 1]
    lit = light[0] + (light[1] - light[0]) * slope  # (H, W)
    lit *= 1 - falloff * ((cols - 0.5) ** 2 + (rows - 0.35) ** 2)  # dimmer edges
    grain = ndimage.gaussian_filter(
        np.random.default_rng(seed).normal(size=shape), 1.5
    )  # (H, W)
    reflect = 0.92 * (1 + texture * grain / grain.std())  # (H, W)
    return lit, reflect


def photograph(
    lit: np.ndarray, reflect: np.ndarray, ink: np.ndarray, ink_reflect: float = 0.12
) -> Image.Image:
    """A grey photo of the page: the ink's reflectance where there is ink."""
    seen = lit * (reflect * (1 - ink) + ink_reflect * ink)  # (H, W)
    return Image.fromarray(np.clip(255 * seen, 0, 255).astype(np.uint8))


def paste(ink: np.ndarray, digit: np.ndarray, top: int, left: int) -> None:
    """Put a digit's ink on a page's ink map (darker wins), in place."""
    h, w = digit.shape
    region = ink[top : top + h, left : left + w]  # (h, w) view
    np.maximum(region, digit, out=region)


def sprinkle(ink: np.ndarray, count: int, seed: int = 1, avoid=()) -> None:
    """Add ``count`` specks of dust (1 to 3 pixels a side), in place.

    Args:
        ink: the page's ink map, (H, W).
        count: how many.
        seed: where they fall.
        avoid: ``(top, bottom, left, right)`` boxes (with a margin of 6
            pixels) no speck may touch.
    """
    rng = np.random.default_rng(seed)
    height, width = ink.shape
    placed = 0
    while placed < count:
        r, c = int(rng.integers(0, height - 3)), int(rng.integers(0, width - 3))
        h, w = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        if any(
            r + h > t - 6 and r < b + 6 and c + w > lft - 6 and c < rgt + 6
            for t, b, lft, rgt in avoid
        ):
            continue
        ink[r : r + h, c : c + w] = 1.0
        placed += 1


def number_page(
    digits: list[np.ndarray],
    shape: tuple[int, int] = (300, 600),
    gap: int = 12,
    seed: int = 0,
    specks: int = 40,
    light: tuple[float, float] = (0.55, 1.0),
    texture: float = 0.06,
    falloff: float = 0.25,
) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """Digits' ink side by side on a page, with specks around them (see ``paper``).

    Returns:
        the photo and each digit's ``(top, bottom, left, right)``.
    """
    lit, reflect = paper(shape, seed, light, texture, falloff)
    ink = np.zeros(shape)  # (H, W)
    boxes = []
    left = 60
    rng = np.random.default_rng(seed)
    for digit in digits:
        h, w = digit.shape
        top = shape[0] // 2 - h // 2 + int(rng.integers(-4, 5))
        paste(ink, digit, top, left)
        boxes.append((top, top + h, left, left + w))
        left += w + gap
    sprinkle(ink, specks, seed + 1, avoid=boxes)
    return photograph(lit, reflect, ink), boxes


def touching_page(
    digits: list[np.ndarray],
    touch: list[bool],
    overlap: int = 2,
    shape: tuple[int, int] = (300, 600),
    gap: int = 12,
    seed: int = 0,
    specks: int = 40,
) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """``number_page``, but digit ``k + 1`` touches digit ``k`` where ``touch[k]``.

    A touching digit is pushed left until, in some row, its ink (over 0.5)
    reaches ``overlap`` pixels into its neighbour's: the strokes meet.

    Returns:
        the photo and each digit's ``(top, bottom, left, right)``.
    """
    lit, reflect = paper(shape, seed)
    ink = np.zeros(shape)  # (H, W)
    rng = np.random.default_rng(seed)
    boxes: list[tuple[int, int, int, int]] = []
    for k, digit in enumerate(digits):
        h, w = digit.shape
        top = shape[0] // 2 - h // 2 + int(rng.integers(-4, 5))
        left = 60 if not boxes else boxes[-1][3] + gap
        if boxes and touch[k - 1]:
            strong = ink[top : top + h] > 0.5  # (h, W), the page's ink so far
            mine = digit > 0.5  # (h, w)
            rows = strong.any(axis=1) & mine.any(axis=1)  # (h,), both have ink
            ends = strong.shape[1] - np.argmax(strong[:, ::-1], axis=1)  # (h,)
            starts = np.argmax(mine, axis=1)  # (h,)
            left = int(np.max((ends - starts)[rows])) - overlap
        paste(ink, digit, top, left)
        boxes.append((top, top + h, left, left + w))
    sprinkle(ink, specks, seed + 1, avoid=boxes)
    return photograph(lit, reflect, ink), boxes
