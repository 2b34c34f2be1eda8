"""Tests of backprop.app.photos.ink: the light and texture removed, the ink kept."""

from __future__ import annotations

import numpy as np
import pytest
from drawn_pages import digit_ink, mnist, paper, paste, photograph
from PIL import Image
from scipy import ndimage

from backprop.app.photos.ink import NOISE, find_ink
from backprop.app.photos.prepare import ink_from_grey, to_grey
from backprop.errors import DataError

# MNIST test digits with a stray pixel or two apart from the digit: at 28x28
# they are part of it (MNIST's 20x20 box holds them), not specks of dust.
STRAY_PIXELS = [5136, 5156, 5413, 5608, 5642, 5806]


@pytest.mark.parametrize("inverted", [False, True])
def test_clean_digits_keep_their_ink(inverted):
    """On a flat background the ink is what it always was: the border level 0,
    the strongest ink 1, the weakest NOISE cut off; a 28x28 MNIST digit keeps
    every pixel of its ink."""
    _, _, xt, _ = mnist()
    for pixels in [*xt[:200], *xt[STRAY_PIXELS]]:
        ink = pixels.reshape(28, 28).astype(np.float64)  # (28, 28), white on black
        expected = np.clip((ink / ink.max() - NOISE) / (1 - NOISE), 0, 1)
        got = ink_from_grey(255 - ink if inverted else ink)
        np.testing.assert_allclose(got, expected, atol=1e-9)


def test_thick_ink_is_not_taken_for_background():
    grey = np.full((200, 240), 230.0)  # (H, W)
    grey[30:170, 40:200] = 20.0  # a block covering nearly half the image
    ink = ink_from_grey(grey)
    assert ink[30:170, 40:200].min() == 1.0
    assert ink.sum() == 140 * 160


@pytest.mark.parametrize("light", [(0.3, 1.0), (0.55, 1.0), (0.8, 0.9)])
def test_the_light_and_the_texture_are_removed(light):
    lit, reflect = paper((600, 800), seed=2, light=light)
    ink = np.zeros((600, 800))  # (H, W)
    digit = digit_ink(3, 2.0)
    corners = [(20, 20), (520, 720), (20, 720), (280, 380)]  # dark and bright
    for top, left in corners:
        paste(ink, digit, top, left)
    found = find_ink(to_grey(photograph(lit, reflect, ink)))
    away = ~ndimage.binary_dilation(ink > 0, iterations=4)  # (H, W), paper only
    paper_sum = ndimage.uniform_filter(found.contrast * away, 41)  # (H, W)
    level = paper_sum / np.maximum(ndimage.uniform_filter(away * 1.0, 41), 0.1)
    assert np.abs(level[away]).max() < 8  # of 110 to 150 grey levels of ink
    core = ink > 0.5  # (H, W)
    assert found.strong[core].mean() > 0.9  # the ink, in every corner
    assert not found.strong[away].any()  # and nothing else


@pytest.mark.parametrize("seed", range(4))
def test_blank_pages_hold_no_digit(seed):
    for light in [(0.3, 1.0), (0.6, 1.0)]:
        for texture in (0.02, 0.08):
            lit, reflect = paper((450, 600), seed, light, texture)
            img = photograph(lit, reflect, np.zeros((450, 600)))
            with pytest.raises(DataError, match="no digit found"):
                ink_from_grey(to_grey(img))


def test_specks_are_left_out_of_the_digit():
    lit, reflect = paper((300, 400), seed=5)
    ink = np.zeros((300, 400))  # (H, W)
    digit = digit_ink(7, 1.5)
    paste(ink, digit, 120, 180)
    clean = ink.copy()
    for r, c in [(20, 30), (250, 350), (140, 100), (60, 300), (280, 20)]:
        ink[r : r + 3, c : c + 3] = 1.0
    found = ink_from_grey(to_grey(photograph(lit, reflect, ink)))
    rows, cols = np.nonzero(found)
    assert rows.min() >= 118 and rows.max() < 122 + digit.shape[0]
    assert cols.min() >= 178 and cols.max() < 182 + digit.shape[1]
    assert found[clean > 0.5].min() > 0


def test_the_image_is_not_shrunk_twice():
    """An image shrunk by to_grey (over 1024 pixels) still finds its ink."""
    lit, reflect = paper((1200, 1600), seed=1)
    ink = np.zeros((1200, 1600))  # (H, W)
    paste(ink, digit_ink(0, 4.0), 500, 700)
    grey = to_grey(photograph(lit, reflect, ink))  # (768, 1024)
    assert grey.shape == (768, 1024)
    found = ink_from_grey(grey)
    rows, cols = np.nonzero(found)
    assert abs(rows.min() - 500 * 0.64) <= 3 and abs(cols.min() - 700 * 0.64) <= 3


def test_light_ink_on_dark_paper():
    lit, reflect = paper((300, 400), seed=6, light=(0.5, 1.0))
    ink = np.zeros((300, 400))  # (H, W)
    paste(ink, digit_ink(1, 2.0), 100, 150)
    dark = 255 - np.asarray(photograph(lit, reflect, ink), dtype=np.float64)
    found = ink_from_grey(to_grey(Image.fromarray(dark.astype(np.uint8))))
    assert found[ink > 0.5].min() > 0
    assert not found[~ndimage.binary_dilation(ink > 0, iterations=3)].any()
