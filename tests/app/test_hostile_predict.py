"""Hostile images and file names for ``predict``: refused in one line, or bounded.

A digit is never read in what holds none (a 3x3 image, binary noise), work
that grows with the image is bounded (pieces of ink cut, panels drawn, the
original drawn shrunk), Ctrl-C and SIGTERM end it promptly, and a file name
can neither break the output nor forge a line of it.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hostile import ROOT, run_hostile
from PIL import Image, ImageDraw

from backprop.app.commands import predict
from backprop.app.evaluation import pages, plots
from backprop.app.runs import Checkpoint, save_checkpoint
from backprop.model import MLP


@pytest.fixture
def model(tmp_path) -> Path:
    """An untrained model's checkpoint: it answers every input with something."""
    path = tmp_path / "model.npz"
    save_checkpoint(path, Checkpoint(MLP([784, 16, 10], seed=0).params))
    return path


def zero(side: int = 120) -> Image.Image:
    """A dark ring on white paper: a 0."""
    img = Image.new("L", (side, side), 255)
    ImageDraw.Draw(img).ellipse(
        (side * 0.3, side * 0.15, side * 0.7, side * 0.85), outline=0, width=side // 12
    )
    return img


def dots(rows: int, columns: int, step: int = 32) -> Image.Image:
    """A page of ``rows`` x ``columns`` dots, none above another closely."""
    img = Image.new("L", (columns * step, rows * step * 2), 255)
    draw = ImageDraw.Draw(img)
    for r in range(rows):
        for c in range(columns):
            x, y = step // 2 + step * c, step + 2 * step * r
            draw.ellipse((x - 6, y - 8, x + 6, y + 8), fill=0)
    return img


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = predict.main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_a_3x3_image_with_one_black_pixel_is_too_small(model, tmp_path, capsys):
    img = Image.new("L", (3, 3), 255)
    img.putpixel((1, 1), 0)
    img.save(tmp_path / "dot.png")
    run_hostile(
        predict.main,
        [str(model), str(tmp_path / "dot.png")],
        capsys,
        tmp_path,
        status=1,
        message=r"dot\.png: too small to hold a digit \(3x3 pixels; at least 8x8\)",
    )


@pytest.mark.parametrize("side", [28, 100, 400])
def test_binary_noise_holds_no_digit(model, tmp_path, capsys, side):
    noise = np.random.default_rng(side).random((side, side)) > 0.5  # (side, side)
    Image.fromarray((noise * 255).astype(np.uint8)).save(tmp_path / "noise.png")
    grey = np.random.default_rng(side).integers(0, 256, (side, side), np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    for name in ("noise.png", "grey.png"):  # refused alike
        run_hostile(
            predict.main,
            [str(model), str(tmp_path / name)],
            capsys,
            tmp_path,
            status=1,
            message=rf"{name}: no digit found: (no ink stands out|the ink is scatter)",
        )


def test_a_single_pixel_in_an_mnist_sized_image_is_no_digit(model, tmp_path, capsys):
    img = Image.new("L", (28, 28), 255)
    for xy in [(3, 3), (20, 7), (9, 22), (14, 14), (25, 25), (5, 17)] * 2:
        img.putpixel(xy, 0)
    for k in range(12):  # a sprinkling of single pixels
        img.putpixel((2 * k + 2, (7 * k) % 26 + 1), 0)
    img.save(tmp_path / "specks.png")
    run_hostile(
        predict.main,
        [str(model), str(tmp_path / "specks.png")],
        capsys,
        tmp_path,
        status=1,
        message=r"specks\.png: no digit found: the ink is scattered like noise",
    )


def test_a_page_of_1024_dots_is_refused_in_one_line(model, tmp_path, capsys):
    dots(32, 32).save(tmp_path / "dots.png")
    run_hostile(
        predict.main,
        [str(model), str(tmp_path / "dots.png"), "--multi", "--show"],
        capsys,
        tmp_path,
        status=1,
        message=r"dots\.png: 1024 pieces of ink, more than the 500 that one image",
    )


def test_show_draws_at_most_max_panels_inputs(model, tmp_path, monkeypatch):
    dots(6, 10).save(tmp_path / "sixty.png")
    figures = []
    real_save = pages._save

    def save(fig, path):
        figures.append(fig)
        return real_save(fig, path)

    monkeypatch.setattr(pages, "_save", save)
    rc, out, err = run_main(
        [str(model), str(tmp_path / "sixty.png"), "--multi", "--show"]
    )
    assert rc == 0, err
    assert "(60 digits)" not in out  # the number, then the picture's line
    assert out.count("\n") == 2 and "(the first 40 of 60 inputs)" in out
    assert len(figures[0].axes) == 1 + pages.MAX_PANELS
    assert (tmp_path / "sixty.prepared.png").is_file()


def test_show_draws_the_original_shrunk(model, tmp_path, monkeypatch):
    page = Image.new("L", (3000, 400), 255)
    page.paste(zero(300), (1200, 50))
    page.save(tmp_path / "wide.png")
    drawn = []
    real_plot = plots.plot_prepared

    def plot(original, prepared, path, title, size=None):
        drawn.append((original.shape, size))
        return real_plot(original, prepared, path, title, size)

    monkeypatch.setattr(plots, "plot_prepared", plot)
    rc, _, err = run_main([str(model), str(tmp_path / "wide.png"), "--show"])
    assert rc == 0, err
    ((shape, size),) = drawn
    assert shape[:2] == (137, 1024) and size == (3000, 400)


def test_sigterm_ends_a_long_show_promptly(model, tmp_path):
    dots(20, 20).save(tmp_path / "page.png")
    files = []
    for k in range(4):
        files.append(tmp_path / f"page{k}.png")
        files[-1].write_bytes((tmp_path / "page.png").read_bytes())
    command = [sys.executable, "-m", "backprop.predict", str(model), "--multi"]
    proc = subprocess.Popen(
        [*command, "--show", *map(str, files)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        first = proc.stdout.readline()  # the first page is read: now it draws
        assert "page0.png: " in first
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()  # a no-op when it ended
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        "interrupted; the files printed were recognised, no others"
    ]
    leftovers = [p.name for p in tmp_path.iterdir() if "backprop-tmp" in p.name]
    assert leftovers == []


def test_a_newline_in_a_file_name_cannot_forge_a_line(model, tmp_path):
    name = tmp_path / "a.png\nfake.png: 7 (probability 1.000), runner-up 1 (0.000)"
    zero().save(name, format="PNG")
    rc, out, err = run_main([str(model), str(name)])
    assert rc == 0, err
    assert out.count("\n") == 1 and "a.png\\nfake.png: 7" in out
    name.rename(tmp_path / "b\n.png")
    rc, out, err = run_main([str(model), str(tmp_path / "b\n.png"), "--show"])
    assert rc == 0 and err == ""
    assert out.count("\n") == 2 and "b\\n.prepared.png" in out.splitlines()[1]


@pytest.mark.parametrize(
    "env",
    [
        {"LC_ALL": "C.UTF-8", "PYTHONUTF8": "0"},
        {"LC_ALL": "C.UTF-8", "PYTHONUTF8": "1"},
    ],
)
def test_a_file_name_that_is_not_utf8(model, tmp_path, env):
    name = os.fsencode(tmp_path) + b"/caf\xe9.png"  # Latin-1, not UTF-8
    with open(name, "wb") as f:
        zero().save(f, format="PNG")
    done = subprocess.run(
        [sys.executable.encode(), b"-m", b"backprop.predict", os.fsencode(model), name],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode("utf-8")
    assert out.count("\n") == 1 and "caf\\xe9.png: " in out


def test_a_loop_of_links_and_a_fifo_are_named(model, tmp_path, capsys):
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    run_hostile(
        predict.main,
        [str(model), str(tmp_path / "loop.png")],
        capsys,
        tmp_path,
        status=1,
        message=r"loop\.png: a loop of symbolic links, not an image file",
    )
    os.mkfifo(tmp_path / "pipe.npz")
    zero().save(tmp_path / "zero.png")
    run_hostile(
        predict.main,
        [str(tmp_path / "pipe.npz"), str(tmp_path / "zero.png")],
        capsys,
        tmp_path,
        status=1,
        message=r"pipe\.npz: a FIFO \(named pipe\), not a file",
    )
