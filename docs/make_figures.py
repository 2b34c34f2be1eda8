"""Make every figure of the course notes, and the run results they quote.

    python docs/make_figures.py             # everything (about 5 minutes on 2 cores)
    python docs/make_figures.py clipping    # one figure
    python docs/make_figures.py --list

Run from the repository root. Figures go to docs/figures/ (PNG), and the small
result files the notes quote (history.json, report.json, crossval.json,
benchmark.json) to docs/results/. Long runs use the project's own commands,
``python -m backprop.train``, ``python -m backprop.evaluate``,
``python -m backprop.crossval`` and ``python benchmarks/compare.py``; their
full outputs (model files) stay under runs/docs/, which git ignores.
Each figure in the notes names the command that made it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import backprop as bp  # noqa: E402
from backprop.app.records import PAPER_RESULTS as PAPER  # noqa: E402
from backprop.losses import (  # noqa: E402
    KERAS_EPSILON,
    cross_entropy_backward,
    cross_entropy_forward,
    softmax_backward,
    softmax_forward,
)

FIGURES_DIR = ROOT / "docs" / "figures"
RESULTS_DIR = ROOT / "docs" / "results"
RUNS_DIR = ROOT / "runs" / "docs"
SEEDS = (0, 1, 2)
DPI = 110


def save(fig: plt.Figure, name: str) -> Path:
    """Save a figure as docs/figures/NAME.png and close it."""
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    path = FIGURES_DIR / f"{name}.png"
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def command(*args: str) -> None:
    """Run one of the project's commands from the repository root, echoing it."""
    print("$", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)


# --- lectures 1, 2, 4: data and graphs ---------------------------------------


def digits() -> None:
    """The first 40 training digits with their labels."""
    (x_train, y_train), _ = bp.load_mnist()
    fig, axes = plt.subplots(4, 10, figsize=(8, 3.6))
    for ax, image, label in zip(axes.flat, x_train, y_train):
        ax.imshow(image.reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(str(label), fontsize=9)
        ax.axis("off")
    save(fig, "digits")


def _draw_graph(backward: bool, narrow: bool = False) -> plt.Figure:
    """The network's computational graph, forward shapes or backward gradients.

    ``narrow`` draws it top to bottom, for phones: the same boxes and labels,
    with the parameters beside the operations instead of above them.
    """
    if narrow:
        fig, ax = plt.subplots(figsize=(4.2, 7.4))
        ax.set_xlim(0, 4.2)
        ax.set_ylim(-11.0, 0.2)
    else:
        fig, ax = plt.subplots(figsize=(11, 2.2))
        ax.set_xlim(0, 11)
        ax.set_ylim(0.7, 3.0)  # the boxes sit at 1.2, the parameters at 2.55
    ax.axis("off")

    def at(pos: float) -> tuple[float, float]:
        """Where a node at ``pos`` along the chain sits."""
        return (1.3, -pos) if narrow else (pos, 1.2)

    def param_at(pos: float) -> tuple[float, float]:
        """Where the parameters of the operation at ``pos`` sit."""
        return (3.35, -pos) if narrow else (pos, 2.55)

    data = [
        (0.5, "X", "(N, 784)"),
        (3.1, "A₁", "(N, 128)"),
        (5.1, "H", "(N, 128)"),
        (7.7, "Z", "(N, 10)"),
        (10.4, "L", "scalar"),
    ]
    ops = [
        (1.8, "dense 1"),
        (4.1, "ReLU"),
        (6.4, "dense 2"),
        (9.05, "softmax +\ncross-entropy"),
    ]
    params = [
        (1.8, "W₁ (784, 128)\nb₁ (128,)"),
        (6.4, "W₂ (128, 10)\nb₂ (10,)"),
        (9.05, "labels y (N,)"),
    ]
    big = 1.15 if narrow else 1.0  # bigger letters where the picture is small
    colour = "tab:red" if backward else "black"
    boxes = {}  # position -> the text artist of that node
    for x, name, shape in data:
        label = f"d{name}" if backward and name not in ("X", "L") else name
        if backward and name == "L":
            label = "dL/dL = 1"
        skipped = backward and name == "X"  # nothing needs the pixels' gradient
        boxes[x] = ax.text(
            *at(x),
            "X\n(no dX:\nskipped)" if skipped else f"{label}\n{shape}",
            ha="center",
            va="center",
            fontsize=(9 if skipped else 10) * big,
            color="gray" if skipped else "black",
            bbox={
                "boxstyle": "round",
                "fc": "white",
                "ec": "gray" if skipped else colour,
                "ls": "--" if skipped else "-",
            },
        )
    for x, name in ops:
        boxes[x] = ax.text(
            *at(x),
            name,
            ha="center",
            va="center",
            fontsize=9 * big,
            bbox={"boxstyle": "square", "fc": "#e8eef7", "ec": "tab:blue"},
        )
    for x, text in params:
        shown = text
        if backward and text.startswith("W"):
            shown = "\n".join("d" + line for line in text.split("\n"))
        ax.text(
            *param_at(x),
            shown,
            ha="center",
            va="center",
            fontsize=8.5 * big,
            color=colour if backward and not text.startswith("labels") else "black",
        )
        (px, py), (bx, by) = param_at(x), at(x)
        near, far = (
            ((bx + 0.95, by), (px - 0.8, py)) if narrow else ((bx, 1.55), (bx, 2.2))
        )
        ax.annotate(
            "",
            xy=near,
            xytext=far,
            arrowprops={
                "arrowstyle": "<|-"
                if backward and not text.startswith("labels")
                else "-|>",
                "color": colour if backward and text.startswith("W") else "black",
                "lw": 1.6,
                "mutation_scale": 14,
            },
        )
    fig.canvas.draw()  # to measure the boxes, so each arrow runs edge to edge
    to_data = ax.transData.inverted()
    edges = {}
    for x, artist in boxes.items():
        extent = artist.get_bbox_patch().get_window_extent()
        (left, bottom), (right, top) = to_data.transform(extent.get_points())
        if narrow:  # along the chain is downwards: from the top edge to the bottom
            edges[x] = (top + 0.06, bottom - 0.06)
        else:
            edges[x] = (left - 0.04, right + 0.04)
    stops = sorted(boxes)
    for a, b in zip(stops[:-1], stops[1:]):
        if backward and a == stops[0]:
            continue  # dense 1 passes nothing back to the pixels
        start, end = (
            (edges[b][0], edges[a][1]) if backward else (edges[a][1], edges[b][0])
        )
        line = at(0)[0] if narrow else at(0)[1]
        ax.annotate(
            "",
            xy=(line, end) if narrow else (end, line),
            xytext=(line, start) if narrow else (start, line),
            arrowprops={
                "arrowstyle": "-|>",
                "color": colour,
                "lw": 2,
                "mutation_scale": 16,
            },
        )
    if narrow:
        title = (
            "backward: each node maps the gradient\nof its output to the "
            "gradients of its inputs"
            if backward
            else "forward: shapes for a batch of N images"
        )
    else:
        title = (
            "backward: each node maps the gradient of its output to the gradients "
            "of its inputs"
            if backward
            else "forward: shapes for a batch of N images"
        )
    ax.set_title(title, fontsize=10 * big)
    return fig


def graph() -> None:
    """The forward graph with shapes (lecture 2), wide and, for phones, narrow."""
    save(_draw_graph(backward=False), "graph")
    save(_draw_graph(backward=False, narrow=True), "graph-narrow")


def backward() -> None:
    """The backward graph with gradient shapes (lecture 4), wide and narrow."""
    save(_draw_graph(backward=True), "backward")
    save(_draw_graph(backward=True, narrow=True), "backward-narrow")


def _worked_example() -> dict:
    """Run lecture 4's worked-example code block; return its variables."""
    page = (ROOT / "docs" / "lectures" / "04-backprop.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    code = next(b for b in blocks if "# The worked example" in b)
    namespace: dict = {"__name__": "worked_example"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "04-backprop.md", "exec"), namespace)  # noqa: S102
    return namespace


def by_hand() -> None:
    """Lecture 4's worked example on its graph: every value and every gradient."""
    ex = _worked_example()
    short = ex["short"]
    fig, ax = plt.subplots(figsize=(11, 3.1))
    ax.set_xlim(0, 11.2)
    ax.set_ylim(0.15, 3.35)
    ax.axis("off")
    nodes = [  # x, label, value, gradient (None: not computed)
        (0.55, "x", ex["x"], None),
        (3.1, "a₁", ex["a1"], ex["da1"]),
        (5.25, "h", ex["h"], ex["dh"]),
        (7.8, "z", ex["z"], ex["dz"]),
        (10.55, "L", ex["loss"], 1.0),
    ]
    ops = [(1.8, "dense 1"), (4.2, "ReLU"), (6.5, "dense 2"), (9.2, "softmax +\nCE")]
    params = [
        (
            1.8,
            f"W₁ = {short(ex['w1'])}\nb₁ = {short(ex['b1'])}",
            f"dW₁ = {short(ex['dw1'])}\ndb₁ = {short(ex['db1'])}",
        ),
        (
            6.5,
            f"W₂ = {short(ex['w2'])}\nb₂ = {short(ex['b2'])}",
            f"dW₂ = {short(ex['dw2'])}\ndb₂ = {short(ex['db2'])}",
        ),
        (9.2, f"label y = {int(ex['y'][0])}", None),
    ]
    boxes = {}
    for x, name, value, grad in nodes:
        shown = f"{value:.3f}" if name == "L" else short(value)
        boxes[x] = ax.text(
            x,
            1.45,
            f"{name} = {shown}",
            ha="center",
            va="center",
            fontsize=9.5,
            bbox={"boxstyle": "round", "fc": "white", "ec": "black"},
        )
        below = "no dx needed" if grad is None else f"d{name} = {short(grad)}"
        ax.text(
            x,
            0.85,
            below,
            ha="center",
            va="center",
            fontsize=9,
            color="gray" if grad is None else "tab:red",
        )
    for x, name in ops:
        boxes[x] = ax.text(
            x,
            1.45,
            name,
            ha="center",
            va="center",
            fontsize=9,
            bbox={"boxstyle": "square", "fc": "#e8eef7", "ec": "tab:blue"},
        )
    for x, value, grad in params:
        ax.text(x, 2.95, value, ha="center", va="center", fontsize=8.5)
        if grad is not None:
            ax.text(
                x, 2.35, grad, ha="center", va="center", fontsize=8.5, color="tab:red"
            )
        ax.annotate(
            "",
            xy=(x, 1.75),
            xytext=(x, 2.05 if grad else 2.7),
            arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.4},
        )
    fig.canvas.draw()  # measure the boxes, so the arrows run edge to edge
    to_data = ax.transData.inverted()
    stops = sorted(boxes)
    for a, b in zip(stops[:-1], stops[1:]):
        (_, _), (right, _) = to_data.transform(
            boxes[a].get_bbox_patch().get_window_extent().get_points()
        )
        (left, _), (_, _) = to_data.transform(
            boxes[b].get_bbox_patch().get_window_extent().get_points()
        )
        ax.annotate(
            "",
            xy=(left - 0.03, 1.45),
            xytext=(right + 0.03, 1.45),
            arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.6},
        )
    ax.set_title(
        "the worked example: forward values in black, gradients dL/d(.) in red",
        fontsize=10,
    )
    save(fig, "by-hand")


# --- lecture 3: Keras's clip ------------------------------------------------


def clipping() -> None:
    """Loss and true-logit gradient against the margin, exact and clipped."""
    margins = np.linspace(-5, 25, 601)  # one wrong logit minus the true one
    losses = {None: [], KERAS_EPSILON: []}
    grads = {None: [], KERAS_EPSILON: []}
    for m in margins:
        z = np.zeros((1, 10))
        z[0, 1] = m  # the true class is 0, its logit 0; eight more logits at 0
        probs, sm_cache = softmax_forward(z)
        for eps in losses:
            loss, cache = cross_entropy_forward(probs, np.array([0]), clip_eps=eps)
            dz = softmax_backward(cross_entropy_backward(cache), sm_cache)
            losses[eps].append(float(loss))
            grads[eps].append(float(dz[0, 0]))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for eps, style, label in (
        (None, "-", "exact"),
        (KERAS_EPSILON, "--", "Keras clip 1e-7"),
    ):
        left.plot(margins, losses[eps], style, label=label)
        right.plot(margins, grads[eps], style, label=label)
    left.axhline(-math.log(KERAS_EPSILON), color="gray", lw=0.8)
    left.text(-4.5, -math.log(KERAS_EPSILON) + 0.5, "−log 1e-7 = 16.118", fontsize=8)
    xlabel = (
        "m = one wrong logit − the true logit"  # the other eight equal the true one
    )
    left.set(xlabel=xlabel, ylabel="loss")
    right.set(xlabel=xlabel, ylabel="d loss / d true logit")
    left.legend()
    right.legend()
    save(fig, "clipping")


# --- lecture 5: the step size of a finite difference -------------------------


def steps() -> None:
    """Relative error of numerical derivatives against h, float32 and float64."""
    (x_train, y_train), _ = bp.load_mnist(dtype="float64")
    x, y = x_train[:16], y_train[:16]
    ref = bp.MLP([784, 128, 10], seed=0, dtype="float64")
    _, grads = ref.loss_and_grads(x, y)
    name, idx = "dense2.w", (3, 7)
    exact = float(grads[name][idx])
    hs = np.logspace(-12, 0, 61)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for dtype, colour in (("float64", "tab:blue"), ("float32", "tab:orange")):
        model = bp.MLP.from_params({k: v.astype(dtype) for k, v in ref.params.items()})
        xs = x.astype(dtype)
        p = model.params[name]

        def loss() -> float:
            return float(model.loss_and_grads(xs, y)[0])  # noqa: B023

        for kind, style in (("central", "-"), ("one-sided", ":")):
            errors = []
            for h in hs:
                old = p[idx]
                p[idx] = old + h
                up, f_up = float(p[idx]), loss()
                p[idx] = old - h if kind == "central" else old
                down, f_down = float(p[idx]), loss()
                p[idx] = old
                num = (f_up - f_down) / (up - down) if up != down else np.nan
                errors.append(abs(num - exact) / abs(exact))
            ax.loglog(
                hs,
                np.maximum(errors, 1e-17),
                style,
                color=colour,
                label=f"{dtype}, {kind}",
            )
    ax.set(xlabel="step h", ylabel="relative error", ylim=(1e-12, 10))
    ax.legend(fontsize=8)
    ax.grid(True, which="major", lw=0.3)
    save(fig, "steps")


# --- lecture 6: optimisers on a valley -----------------------------------------


def optimizers() -> None:
    """Paths of SGD, momentum and Adam on f = (w1^2 + 0.02 w2^2) / 2."""
    scales = np.array([1.0, 0.02])
    start = np.array([0.9, -2.0])

    def path(step: Callable[[np.ndarray, np.ndarray], None]) -> np.ndarray:
        w = start.copy()
        points = [w.copy()]
        for _ in range(60):
            step(w, scales * w)
            points.append(w.copy())
        return np.array(points)

    velocity = np.zeros(2)

    def momentum(w: np.ndarray, g: np.ndarray) -> None:
        velocity[:] = 0.9 * velocity + g
        w -= 0.15 * velocity

    sgd, adam = bp.SGD(lr=1.8), bp.Adam(lr=0.15, mode="algorithm1")
    paths = {
        "SGD, lr 1.8": path(lambda w, g: sgd.step({"w": w}, {"w": g})),
        "momentum, lr 0.15, β 0.9": path(momentum),
        "Adam, lr 0.15": path(lambda w, g: adam.step({"w": w}, {"w": g})),
    }
    u, v = np.meshgrid(np.linspace(-1.2, 1.2, 200), np.linspace(-2.3, 0.6, 200))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.contour(u, v, 0.5 * (u**2 + 0.02 * v**2), levels=15, colors="lightgray")
    for label, points in paths.items():
        ax.plot(points[:, 0], points[:, 1], ".-", ms=3, lw=1, label=label)
    ax.plot(0, 0, "k*", ms=10)
    ax.set(xlabel="w₁ (steep)", ylabel="w₂ (flat)")
    ax.legend(fontsize=8, loc="lower right")
    save(fig, "optimizers")


# --- lecture 8: runs, evaluation, cross-validation -----------------------------


def runs() -> None:
    """Train the paper's configuration for seeds 0, 1, 2 (20 epochs each, CPU)."""
    for seed in SEEDS:
        out = RUNS_DIR / f"seed-{seed}"
        command(
            "-m",
            "backprop.train",
            "--epochs",
            "20",
            "--seed",
            str(seed),
            "--device",
            "cpu",
            "--kernels",
            "reference",  # the lectures' code
            "--quiet",
            "--overwrite",
            "--out",
            str(out),
        )
        target = RESULTS_DIR / f"seed-{seed}"
        target.mkdir(parents=True, exist_ok=True)
        for name in ("history.json", "config.json", "report.txt"):
            shutil.copy(out / name, target / name)
    print(f"copied histories to {RESULTS_DIR.relative_to(ROOT)}")


def _history(seed: int) -> list[dict]:
    path = RESULTS_DIR / f"seed-{seed}" / "history.json"
    if not path.is_file():
        runs()
    return json.loads(path.read_text())


def paper_vs_run() -> None:
    """Per-epoch curves of the three seeds, with the paper's four numbers."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for seed in SEEDS:
        history = _history(seed)
        epochs = [r["epoch"] for r in history]
        alpha, label = (1.0, True) if seed == 0 else (0.35, False)
        for key, colour in (("train", "tab:blue"), ("test", "tab:orange")):
            left.plot(
                epochs,
                [r[f"{key}_loss"] for r in history],
                "o-",
                ms=3,
                color=colour,
                alpha=alpha,
                label=f"{key} (ours)" if label else None,
            )
            right.plot(
                epochs,
                [r[f"{key}_accuracy"] for r in history],
                "o-",
                ms=3,
                color=colour,
                alpha=alpha,
                label=f"{key} (ours)" if label else None,
            )
    for ax, kind in ((left, "loss"), (right, "accuracy")):
        for key, colour in (("train", "tab:blue"), ("test", "tab:orange")):
            ax.axhline(
                PAPER[f"{key}_{kind}"],
                color=colour,
                ls="--",
                lw=1,
                label=f"{key}, paper ({PAPER[f'{key}_{kind}']})",
            )
        ax.set(xlabel="epoch", ylabel=kind, xticks=range(0, 21, 2))
        ax.legend(fontsize=8)
        ax.grid(True, lw=0.3)
    left.set_ylim(0, 0.35)
    right.set_ylim(0.9, 1.0)
    save(fig, "paper-vs-run")


def evaluate() -> None:
    """Curves, report, confusion matrix, galleries and weights of the seed-0 run."""
    run = RUNS_DIR / "seed-0"
    if not (run / "model.npz").is_file():
        runs()
    out = RUNS_DIR / "evaluate-seed-0"
    command(
        "-m", "backprop.evaluate", str(run), "--out", str(out), "--quiet", "--overwrite"
    )
    for name in ("curves", "confusion", "correct", "mistakes", "weights"):
        shutil.copy(out / f"{name}.png", FIGURES_DIR / f"{name}.png")
        print(f"wrote docs/figures/{name}.png")
    shutil.copy(out / "report.json", RESULTS_DIR / "seed-0" / "report.json")


def crossval() -> None:
    """5-fold cross-validation with the default (short) epochs."""
    out = RUNS_DIR / "crossval"
    command(
        "-m",
        "backprop.crossval",
        "--folds",
        "5",
        "--seed",
        "0",
        "--device",
        "cpu",
        "--kernels",
        "reference",  # the lectures' code
        "--quiet",
        "--overwrite",
        "--out",
        str(out),
    )
    shutil.copy(out / "crossval.json", RESULTS_DIR / "crossval.json")


# --- lecture 7: the TensorFlow reference -------------------------------------


def tf_run() -> None:
    """Train the TensorFlow reference with the paper's settings, seed 0."""
    out = RUNS_DIR / "tf-seed-0"
    command(
        "-m",
        "tf_reference.train",
        "--epochs",
        "20",
        "--seed",
        "0",
        "--quiet",
        "--overwrite",
        "--out",
        str(out),
    )
    target = RESULTS_DIR / "tf-seed-0"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(out / "history.json", target / "history.json")


def tf_vs_engine() -> None:
    """Test accuracy and loss per epoch, engine against TensorFlow, seed 0."""
    tf_history = RESULTS_DIR / "tf-seed-0" / "history.json"
    if not tf_history.is_file():
        tf_run()
    histories = {
        "engine": _history(0),
        "TensorFlow": json.loads(tf_history.read_text()),
    }
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for (name, history), style in zip(histories.items(), ("o-", "s--")):
        epochs = [r["epoch"] for r in history]
        left.plot(epochs, [r["test_loss"] for r in history], style, ms=3, label=name)
        right.plot(
            epochs, [r["test_accuracy"] for r in history], style, ms=3, label=name
        )
    left.set(xlabel="epoch", ylabel="test loss")
    right.set(xlabel="epoch", ylabel="test accuracy")
    for ax in (left, right):
        ax.legend()
        ax.grid(True, lw=0.3)
    save(fig, "tf-vs-engine")


# --- lecture 9: the benchmark ---------------------------------------------------


def benchmark() -> None:
    """Copy the latest benchmark chart and results, if benchmarks/ has made them."""
    results = ROOT / "benchmarks" / "results"
    charts = sorted(results.glob("*.png")) if results.is_dir() else []
    if not (results / "results.json").is_file() or not charts:
        print("no benchmark results: run python benchmarks/compare.py first; skipped")
        return
    shutil.copy(results / "results.json", RESULTS_DIR / "benchmark.json")
    # benchmarks/profile_step.py, first_run.py and augment_cost.py write these
    for name in ("profile", "first_run", "augment"):
        if (results / f"{name}.json").is_file():
            shutil.copy(results / f"{name}.json", RESULTS_DIR / f"{name}.json")
            print(f"wrote docs/results/{name}.json")
    for chart in charts:
        shutil.copy(chart, FIGURES_DIR / f"benchmark-{chart.name}")
        print(f"wrote docs/figures/benchmark-{chart.name}")


# --- lecture 11: augmentation and digits unlike MNIST -------------------------


def augmented() -> None:
    """Twelve training digits, and four epochs' distortions of each (--augment)."""
    from backprop.app.augment import Augmentation, distort_all
    from backprop.app.augment.epoch import epoch_generator
    from backprop.data import load_pixels

    (pixels, labels), _ = load_pixels("mnist", None, {})
    chosen = pixels[:12]  # (12, 784)
    rows = [chosen] + [
        distort_all(chosen, Augmentation(), epoch_generator(0, e), "reference")
        for e in range(1, 5)
    ]
    fig, axes = plt.subplots(5, 12, figsize=(8, 3.6))
    for r, images in enumerate(rows):
        for c, image in enumerate(images):
            ax = axes[r, c]
            ax.imshow(image.reshape(28, 28), cmap="gray_r", vmin=0, vmax=255)
            ax.axis("off")
            if r == 0:
                ax.set_title(str(labels[c]), fontsize=9)
    save(fig, "augmented")


def ood_samples() -> None:
    """Twelve images of each set in ood/sets, as predict reads them from disk."""
    import csv

    from PIL import Image

    names = ("tune", "fonts", "optdigits")
    fig, axes = plt.subplots(3, 12, figsize=(8, 2.4))
    for r, name in enumerate(names):
        folder = ROOT / "ood" / "sets" / name
        with open(folder / "labels.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        picks = np.random.default_rng(r).choice(len(rows), 12, replace=False)
        for c, k in enumerate(picks):
            ax = axes[r, c]
            ax.imshow(Image.open(folder / rows[k]["file"]).convert("RGB"))
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    save(fig, "ood-samples")


def number() -> None:
    """A page with 2026 written in MNIST test digits, read by predict --multi."""
    from PIL import Image

    from backprop.data import load_pixels

    _, (pixels, labels) = load_pixels("mnist", None, {})
    height, width = 120, 260
    yy, xx = np.mgrid[0:height, 0:width]  # (H, W) each
    light = 0.95 - 0.35 * xx / width - 0.1 * yy / height  # (H, W), uneven
    grain = np.random.default_rng(0).normal(0, 0.02, (height, width))  # (H, W)
    page = light + grain  # (H, W), paper
    for k, digit in enumerate((2, 0, 2, 6)):
        index = np.flatnonzero(labels == digit)[k]  # a different writer each
        ink = pixels[index].reshape(28, 28) / 255  # (28, 28)
        big = np.kron(ink, np.ones((2, 2)))  # (56, 56)
        top, left = 30 + 4 * (k % 2), 20 + 55 * k
        region = page[top : top + 56, left : left + 56]  # a view
        region *= 1 - 0.85 * big  # dark ink on the paper
    path = FIGURES_DIR / "number-page.png"
    image = (np.clip(page, 0, 1) * 255).astype(np.uint8)  # (H, W)
    Image.fromarray(image).save(path)
    print(f"wrote {path.relative_to(ROOT)}")
    model = RUNS_DIR / "augment-seed-0"
    command(
        "-m", "backprop.predict", str(model.relative_to(ROOT)),
        str(path.relative_to(ROOT)), "--multi", "--show", "--overwrite",
    )  # fmt: skip


def ood_runs() -> None:
    """Train plain and --augment models (seeds 0-2, fused), read the OOD sets."""
    folders = []
    for augment in (False, True):
        for seed in SEEDS:
            name = f"{'augment' if augment else 'plain'}-seed-{seed}"
            out = RUNS_DIR / name
            flags = ["--augment"] if augment else []
            command(
                "-m", "backprop.train", "--epochs", "20", "--seed", str(seed),
                "--device", "cpu", "--kernels", "fused", "--quiet", "--overwrite",
                "--out", str(out), *flags,
            )  # fmt: skip
            folders.append(str(out.relative_to(ROOT)))  # names the results
    results = str(RESULTS_DIR / "ood.json")
    command("ood/measure.py", *folders, "--json", results, "--overwrite")
    for folder in folders:  # the histories, for the notes to read
        target = RESULTS_DIR / "ood-runs" / Path(folder).name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / folder / "history.json", target / "history.json")


# The choices the tune set compared: (strength, fraction) of --augment.
TUNE_GRID = ((1.0, 1.0), (2.0, 1.0), (2.0, 0.5), (3.0, 0.5))


def ood_tune() -> None:
    """Train --augment at other strengths and fractions (seeds 0, 1); read tune."""
    folders = {"plain": [RUNS_DIR / f"plain-seed-{s}" for s in (0, 1)]}
    for strength, fraction in TUNE_GRID:
        key = f"strength {strength}, fraction {fraction}"
        folders[key] = []
        for seed in (0, 1):
            out = RUNS_DIR / f"augment-s{strength}-f{fraction}-seed-{seed}"
            if (strength, fraction) == (1.0, 1.0):
                out = RUNS_DIR / f"augment-seed-{seed}"  # ood-runs trained it
            folders[key].append(out)
    for key, outs in folders.items():
        for seed, out in enumerate(outs):
            if (out / "report.txt").is_file():
                continue  # trained by ood-runs, or by an earlier ood-tune
            flags = [] if key == "plain" else ["--augment"]
            if key != "plain":
                strength, fraction = key.replace(",", "").split()[1::2]
                flags += ["--augment-strength", strength]
                flags += ["--augment-fraction", fraction]
            command(
                "-m", "backprop.train", "--epochs", "20", "--seed", str(seed),
                "--device", "cpu", "--kernels", "fused", "--quiet", "--overwrite",
                "--out", str(out), *flags,
            )  # fmt: skip
    measured = RUNS_DIR / "ood-tune-measured.json"
    every = [str(out) for outs in folders.values() for out in outs]
    command(
        "ood/measure.py", *every, "--sets", "tune", "--json", str(measured),
        "--overwrite",
    )  # fmt: skip
    results = json.loads(measured.read_text())
    table = {key: [results[str(out)] for out in outs] for key, outs in folders.items()}
    (RESULTS_DIR / "ood-tune.json").write_text(json.dumps(table, indent=2) + "\n")
    print(f"wrote {(RESULTS_DIR / 'ood-tune.json').relative_to(ROOT)}")


FIGURES: dict[str, Callable[[], None]] = {
    "digits": digits,
    "graph": graph,
    "clipping": clipping,
    "backward": backward,
    "by-hand": by_hand,
    "steps": steps,
    "optimizers": optimizers,
    "runs": runs,
    "paper-vs-run": paper_vs_run,
    "evaluate": evaluate,
    "crossval": crossval,
    "tf-run": tf_run,
    "tf-vs-engine": tf_vs_engine,
    "benchmark": benchmark,
    "augmented": augmented,
    "ood-samples": ood_samples,
    "number": number,
    "ood-runs": ood_runs,
    "ood-tune": ood_tune,
}


def main(argv: list[str] | None = None) -> int:
    """Make the named figures (all by default); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python docs/make_figures.py",
        description="Make the figures and result files of the course notes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"what to make: {', '.join(FIGURES)} (default: all)",
    )
    parser.add_argument("--list", action="store_true", help="list the names and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, fn in FIGURES.items():
            print(f"{name:13s} {fn.__doc__.splitlines()[0]}")
        return 0
    unknown = [name for name in args.names if name not in FIGURES]
    if unknown:
        parser.error(f"unknown figure {unknown[0]!r}; choose from {', '.join(FIGURES)}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    for name in args.names or FIGURES:
        FIGURES[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
