"""Pictures of a run: curves, confusion matrix, example galleries, weights.

Every function draws one figure and saves it as a PNG. Matplotlib is imported
inside the functions, never at module level, so ``import backprop`` stays free
of it; figures are drawn on the non-interactive Agg canvas (no pyplot, no
window, no global backend switch), so this works on a machine with no screen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backprop.app.runs.files import atomic_write
from backprop.errors import DataError, require

DPI = 120


def _figure(width: float, height: float, layout: str | None = "constrained") -> Any:
    """A matplotlib Figure attached to an Agg canvas, ``width`` x ``height`` inches."""
    require("matplotlib", "matplotlib", "pictures", "drawing figures")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path) -> Path:
    """Write the figure as a PNG atomically, creating the folder if needed.

    Raises:
        OutputError: the file cannot be written (a full disk, no permission).
    """
    path = Path(path)
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    return path


def image_side(num_features: int) -> int:
    """Side of the square image that ``num_features`` pixels form (784 -> 28).

    Raises:
        DataError: ``num_features`` is not a perfect square.
    """
    side = math.isqrt(num_features)
    if side * side != num_features:
        raise DataError(
            f"inputs of {num_features} features are not square images; cannot draw them"
        )
    return side


def plot_curves(
    history: Sequence[dict],
    path: str | Path,
    reference: dict | None = None,
) -> Path:
    """Loss and accuracy of the training and test data per epoch (two panels).

    The paper's Fig. 9 (accuracy) and Fig. 10 (loss) in one picture.

    Args:
        history: one dict per epoch with ``epoch``, ``train_loss``,
            ``test_loss``, ``train_accuracy`` and ``test_accuracy``
            (``history.json`` as written by ``backprop.train``).
        path: where to write the PNG.
        reference: optional ``test_loss`` and ``test_accuracy`` to draw as
            dotted horizontal lines (the paper's final numbers).

    Returns:
        the path written.
    """
    epochs = [r["epoch"] for r in history]
    fig = _figure(10, 4)
    ax_loss, ax_acc = fig.subplots(1, 2)
    panels = (
        (ax_loss, "loss", "cross-entropy loss", "Loss per epoch"),
        (ax_acc, "accuracy", "accuracy", "Accuracy per epoch"),
    )
    for ax, key, ylabel, title in panels:
        ax.plot(epochs, [r[f"train_{key}"] for r in history], "o-", label="train")
        ax.plot(epochs, [r[f"test_{key}"] for r in history], "s-", label="test")
        if reference is not None and f"test_{key}" in reference:
            ax.axhline(
                reference[f"test_{key}"],
                color="grey",
                linestyle=":",
                label=f"paper test ({reference[f'test_{key}']})",
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    return _save(fig, path)


def plot_confusion(
    matrix: np.ndarray, class_names: Sequence[str], path: str | Path
) -> Path:
    """The confusion matrix with every non-zero count written in its cell.

    Colour follows log(1 + count), so both the large diagonal and the few
    mistakes show; text turns white on dark cells so the diagonal stays
    readable.

    Args:
        matrix: counts ``m[i, j]`` of true class i predicted as j, (C, C).
        class_names: one name per class, length C.
        path: where to write the PNG.

    Returns:
        the path written.
    """
    matrix = np.asarray(matrix)
    num_classes = len(class_names)
    shade = np.log1p(matrix) / max(np.log1p(matrix.max()), 1e-12)  # (C, C) in [0, 1]
    size = max(6.0, 0.6 * num_classes + 2.5)
    fig = _figure(size + 1.0, size)
    ax = fig.subplots()
    image = ax.imshow(shade, cmap="Blues", vmin=0, vmax=1)
    for i in range(num_classes):
        for j in range(num_classes):
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    str(int(matrix[i, j])),
                    ha="center",
                    va="center",
                    fontsize=8 if matrix[i, j] < 1000 else 7,
                    color="white" if shade[i, j] > 0.6 else "black",
                )
    ax.set_xticks(range(num_classes), class_names, rotation=45, ha="right")
    ax.set_yticks(range(num_classes), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix ({int(matrix.sum())} examples)")
    bar = fig.colorbar(image, ax=ax, shrink=0.8)
    ticks = [t for t in (0, 1, 10, 100, 1000, 10000) if t <= matrix.max()]
    bar.set_ticks([np.log1p(t) / max(np.log1p(matrix.max()), 1e-12) for t in ticks])
    bar.set_ticklabels([str(t) for t in ticks])
    bar.set_label("count (log scale)")
    return _save(fig, path)


def tile(images: np.ndarray, cols: int, gap_x: int, gap_y: int) -> np.ndarray:
    """Lay images out in a grid, one array; gaps are NaN (drawn as background).

    Args:
        images: (N, side, side).
        cols: images per row.
        gap_x: pixels between columns.
        gap_y: pixels above each row (room for titles).

    Returns:
        the mosaic, (rows * (side + gap_y), cols * (side + gap_x) - gap_x).
    """
    n, side = len(images), images.shape[1]
    rows = math.ceil(n / cols)
    mosaic = np.full(
        (rows * (side + gap_y), cols * (side + gap_x) - gap_x), np.nan
    )  # (H, W)
    for k in range(n):
        r, c = divmod(k, cols)
        y0, x0 = r * (side + gap_y) + gap_y, c * (side + gap_x)
        mosaic[y0 : y0 + side, x0 : x0 + side] = images[k]
    return mosaic


def _mosaic_axes(fig: Any, bottom: float, height: float) -> Any:
    """An axes filling the figure's width between ``bottom`` and ``bottom+height``."""
    ax = fig.add_axes((0.01, bottom, 0.98, height))
    ax.axis("off")
    return ax


def plot_gallery(
    images: np.ndarray,
    true: np.ndarray,
    predicted: np.ndarray,
    confidence: np.ndarray,
    class_names: Sequence[str],
    path: str | Path,
    title: str,
) -> Path:
    """A grid of examples, each titled with its true and predicted class.

    The examples are drawn as one mosaic image (one axes, not one per
    example), which keeps the picture quick to draw.

    Args:
        images: the examples, flat (N, side * side) or (N, side, side), in [0, 1].
        true: true labels, (N,).
        predicted: predicted labels, (N,).
        confidence: the probability given to the predicted label, (N,).
        class_names: one name per class index.
        path: where to write the PNG.
        title: the figure's title.

    Returns:
        the path written. With N = 0 the picture says there is nothing to show.
    """
    from matplotlib import colormaps

    images = np.asarray(images, dtype=np.float64)
    n = len(images)
    if n == 0:
        fig = _figure(5, 1.5, layout=None)
        fig.text(0.5, 0.5, f"{title}: none", ha="center", va="center", fontsize=14)
        return _save(fig, path)
    if images.ndim == 2:
        side = image_side(images.shape[1])
        images = images.reshape(n, side, side)  # (N, side, side)
    side = images.shape[1]
    cols = math.ceil(math.sqrt(n))
    inch = 1.4 / side  # inches per pixel: each example 1.4 inches wide
    gap_x, gap_y = round(0.45 / inch), round(0.45 / inch)
    mosaic = tile(images, cols, gap_x, gap_y)  # (H, W)
    mosaic = np.pad(mosaic, ((0, 1), (0, 1)), constant_values=np.nan)  # frames fit
    width, height = mosaic.shape[1] * inch, mosaic.shape[0] * inch
    head = 0.45  # inches for the figure title
    fig = _figure(width + 0.2, height + head + 0.1, layout=None)
    ax = _mosaic_axes(fig, 0.1 / (height + head + 0.1), height / (height + head + 0.1))
    cmap = colormaps["gray_r"].with_extremes(bad="white")
    ax.imshow(mosaic, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    from matplotlib.patches import Rectangle

    for k in range(n):
        r, c = divmod(k, cols)
        wrong = true[k] != predicted[k]
        x0, y0 = c * (side + gap_x) - 0.5, r * (side + gap_y) + gap_y - 0.5
        ax.add_patch(Rectangle((x0, y0), side, side, fill=False, color="0.8", lw=0.8))
        ax.text(
            c * (side + gap_x) + side / 2,
            r * (side + gap_y) + gap_y - 0.5,
            f"true {class_names[true[k]]}\n"
            f"pred {class_names[predicted[k]]} ({confidence[k]:.1%})",
            ha="center",
            va="bottom",
            fontsize=8,
            color="firebrick" if wrong else "black",
        )
    fig.suptitle(title, fontsize=12, y=1 - 0.08 / (height + head + 0.1), va="top")
    return _save(fig, path)


def plot_weights(weights: np.ndarray, path: str | Path, limit: int = 256) -> Path:
    """The first layer's weight vectors, each drawn as an image.

    Column j of the first weight matrix holds the 784 weights from the pixels
    to hidden unit j; reshaped to 28x28 it shows which strokes excite (red) and
    inhibit (blue) that unit. One shared colour scale, symmetric around zero.

    Args:
        weights: the first layer's weights, (D, H) with D a square (784 = 28x28).
        path: where to write the PNG.
        limit: draw at most this many units.

    Returns:
        the path written.
    """
    from matplotlib import colormaps

    weights = np.asarray(weights, dtype=np.float64)  # (D, H)
    side = image_side(weights.shape[0])
    shown = min(weights.shape[1], limit)
    cols = min(16, shown)
    gap = max(1, side // 10)
    units = weights[:, :shown].T.reshape(shown, side, side)  # (shown, side, side)
    mosaic = tile(units, cols, gap, gap)[gap:]  # (H, W), no gap above the first row
    vmax = float(np.percentile(np.abs(units), 99.5)) or 1.0
    inch = 0.7 / side
    width, height = mosaic.shape[1] * inch, mosaic.shape[0] * inch
    fig = _figure(width + 1.3, height + 0.7)
    ax = fig.subplots()
    ax.axis("off")
    cmap = colormaps["RdBu_r"].with_extremes(bad="white")
    image = ax.imshow(mosaic, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
    total = weights.shape[1]
    what = f"all {total}" if shown == total else f"the first {shown} of {total}"
    ax.set_title(
        f"First-layer weights: {what} hidden units as {side}x{side} images",
        fontsize=12,
    )
    bar = fig.colorbar(image, ax=ax, shrink=0.6, pad=0.01)
    bar.set_label("weight")
    return _save(fig, path)


def original_title(original: np.ndarray, size: tuple[int, int] | None) -> str:
    """``original (W x H)``, and the size drawn when it was shrunk to draw."""
    drawn = f"{original.shape[1]}x{original.shape[0]}"
    if size is None or size == (original.shape[1], original.shape[0]):
        return f"original ({drawn})"
    return f"original ({size[0]}x{size[1]}, drawn at {drawn})"


def plot_prepared(
    original: np.ndarray,
    prepared: np.ndarray,
    path: str | Path,
    title: str,
    size: tuple[int, int] | None = None,
) -> Path:
    """An image file next to the 28x28 input prepared from it.

    Args:
        original: the file's pixels, (H, W) grey or (H, W, 3) RGB, uint8,
            maybe shrunk.
        prepared: the model's input, (28, 28) in [0, 1], ink bright.
        path: where to write the PNG.
        title: the figure's title (the prediction).
        size: the file's own ``(width, height)`` when ``original`` was shrunk.

    Returns:
        the path written.
    """
    fig = _figure(7, 3.8)
    ax_orig, ax_prep = fig.subplots(1, 2)
    ax_orig.imshow(original, cmap="gray" if np.ndim(original) == 2 else None)
    ax_orig.set_title(original_title(original, size))
    ax_prep.imshow(prepared, cmap="gray", vmin=0, vmax=1)
    ax_prep.set_title(f"prepared input ({prepared.shape[1]}x{prepared.shape[0]})")
    for ax in (ax_orig, ax_prep):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=12)
    return _save(fig, path)


def plot_diagnostics(history: Sequence[dict], path: str | Path) -> Path:
    """Per-layer training diagnostics per epoch (``backprop.diagnostics``).

    Three panels: each layer's mean gradient norm, its update-to-weight ratio
    (log scales; a dotted line at the rule of thumb 1e-3), and the fraction
    of dead ReLUs of each hidden layer.

    Args:
        history: the epochs of ``history.json``; those with a
            ``"diagnostics"`` entry are drawn.
        path: where to write the PNG.

    Returns:
        the path written.

    Raises:
        DataError: no epoch has diagnostics.
    """
    records = [r for r in history if isinstance(r.get("diagnostics"), dict)]
    records = [r for r in records if r["diagnostics"]]
    if not records:
        raise DataError("the history has no diagnostics")
    epochs = [r["epoch"] for r in records]
    layers = list(records[-1]["diagnostics"])

    def value(record: dict, layer: str, key: str) -> float:
        """One number of one epoch, NaN (a gap in the line) where it is missing."""
        entry = record["diagnostics"].get(layer)
        number = entry.get(key) if isinstance(entry, dict) else None
        return float(number) if isinstance(number, int | float) else math.nan

    fig = _figure(13, 3.8)
    panels = zip(
        fig.subplots(1, 3),
        ("grad_norm", "update_ratio", "dead_fraction"),
        ("mean gradient norm", "||step|| / ||weights||", "dead ReLUs (fraction)"),
    )
    for ax, key, title in panels:
        for layer in layers:
            values = [value(r, layer, key) for r in records]
            if not all(math.isnan(v) for v in values):
                ax.plot(epochs, values, "o-", label=layer)
        if key != "dead_fraction":
            ax.set_yscale("log")
        else:
            ax.set_ylim(-0.02, 1.02)
        if key == "update_ratio":
            ax.axhline(1e-3, color="grey", linestyle=":", label="1e-3")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    return _save(fig, path)
