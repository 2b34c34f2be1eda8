"""A picture of the digits ``predict --multi`` found in one image.

Like ``backprop.app.evaluation.plots``, matplotlib is imported inside the
function and the figure is drawn on the Agg canvas, then saved as a PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from backprop.app.evaluation.plots import _figure, _save, original_title

# Each prepared digit is a panel of its own, and laying out many panels is slow
# (1,024 took more than 19 minutes): only the first MAX_PANELS are drawn.
MAX_PANELS = 40


def plot_found_digits(
    original: np.ndarray,
    boxes: Sequence[tuple[int, int, int, int]],
    prepared: Sequence[np.ndarray],
    labels: Sequence[str],
    path: str | Path,
    title: str,
    size: tuple[int, int] | None = None,
) -> Path:
    """An image with a box round each digit found, and each prepared input below.

    Every digit gets its box; the first ``MAX_PANELS`` get their input drawn.

    Args:
        original: the file's pixels, (H, W) grey or (H, W, 3) RGB, uint8,
            maybe shrunk.
        boxes: each digit's ``(left, top, right, bottom)`` in those pixels.
        prepared: each digit's 28x28 input, in [0, 1], ink bright.
        labels: what each digit was read as, e.g. ``"7 0.98"``.
        path: where to write the PNG.
        title: the figure's title (the number read).
        size: the file's own ``(width, height)`` when ``original`` was shrunk.

    Returns:
        the path written.
    """
    from matplotlib.patches import Rectangle

    count = min(len(prepared), MAX_PANELS)
    fig = _figure(max(7.0, min(20.0, 1.1 * count)), 6.0)
    grid = fig.add_gridspec(2, count, height_ratios=(3, 1))
    page = fig.add_subplot(grid[0, :])
    page.imshow(original, cmap="gray" if np.ndim(original) == 2 else None)
    page.set_title(original_title(original, size))
    for (left, top, right, bottom), label in zip(boxes, labels):
        page.add_patch(
            Rectangle(
                (left - 0.5, top - 0.5),
                right - left,
                bottom - top,
                fill=False,
                edgecolor="tab:red",
                linewidth=1.5,
            )
        )
        page.text(left, top - 2, label.rsplit(" ", 1)[0], color="tab:red", va="bottom")
    axes = [page]
    for i, (digit, label) in enumerate(zip(prepared[:count], labels)):
        ax = fig.add_subplot(grid[1, i])
        ax.imshow(digit, cmap="gray", vmin=0, vmax=1)
        ax.set_title(label, fontsize=9)
        axes.append(ax)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if count < len(prepared):
        title += f"; the first {count} inputs drawn"
    fig.suptitle(title, fontsize=12)
    return _save(fig, path)
