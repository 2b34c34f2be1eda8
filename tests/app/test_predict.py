"""Tests of backprop.app.photos.prepare (MNIST-style) and backprop.predict."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from backprop.app.commands import predict, train
from backprop.app.photos.prepare import (
    center_of_mass,
    ink_bounds,
    prepare_file,
    prepare_image,
)
from backprop.app.runs import Checkpoint, save_checkpoint
from backprop.data import CLASS_NAMES
from backprop.errors import DataError
from backprop.model import MLP

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans when installed, else Pillow's own font (Pillow >= 10.1)."""
    if DEJAVU.is_file():
        return ImageFont.truetype(str(DEJAVU), size)
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: no scalable default font
        pytest.skip("no scalable font available")


def draw_digit(
    digit: int, size: int, light_ink: bool = False, mode: str = "L"
) -> Image.Image:
    """A digit drawn off-centre on a canvas wider than tall."""
    ink, paper = (235, 20) if light_ink else (15, 245)
    canvas = Image.new("L", (size * 3, size * 2), paper)
    ImageDraw.Draw(canvas).text((size // 3, size // 5), str(digit), ink, font(size))
    if mode == "RGB":  # coloured ink on tinted paper
        tint = np.asarray(canvas, dtype=np.float64)[..., None] / 255  # (H, W, 1)
        paper_rgb, ink_rgb = np.array([250, 240, 200]), np.array([20, 30, 140])
        if light_ink:
            paper_rgb, ink_rgb = ink_rgb, paper_rgb
        rgb = ink_rgb + (paper_rgb - ink_rgb) * (tint if not light_ink else 1 - tint)
        return Image.fromarray(rgb.astype(np.uint8), "RGB")
    return canvas


def draw_shape(kind: str, canvas: tuple[int, int], box: tuple[int, int, int, int]):
    """A white shape on black in a grey image."""
    img = Image.new("L", canvas, 0)
    draw = ImageDraw.Draw(img)
    if kind == "ring":
        draw.ellipse(box, outline=255, width=max(2, (box[2] - box[0]) // 8))
    elif kind == "bar":
        draw.rectangle(box, fill=255)
    else:  # an L made of two strokes
        x0, y0, x1, y1 = box
        w = max(2, (x1 - x0) // 6)
        draw.rectangle((x0, y0, x0 + w, y1), fill=200)
        draw.rectangle((x0, y1 - w, x1, y1), fill=255)
    return img


def assert_mnist_like(x: np.ndarray, box: int = 20) -> None:
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() == pytest.approx(1.0)
    top, bottom, left, right = ink_bounds(x)
    assert max(bottom - top, right - left) == box
    row, col = center_of_mass(x)
    assert abs(row - 14) <= 0.51 and abs(col - 14) <= 0.51


def variants(img: Image.Image):
    """The same picture as grey, inverted, colour, transparent, 16-bit, float."""
    grey = np.asarray(img)
    yield "grey", img
    yield "inverted", Image.fromarray(255 - grey)
    rgb = np.stack([grey, grey // 2, 255 - grey // 3], axis=-1)  # coloured ink
    yield "colour", Image.fromarray(rgb.astype(np.uint8), "RGB")
    rgba = np.zeros((*grey.shape, 4), dtype=np.uint8)
    rgba[..., 3] = grey  # black ink where opaque, transparent elsewhere
    yield "transparent", Image.fromarray(rgba, "RGBA")
    yield "16-bit", Image.fromarray(grey.astype(np.uint16) * 257)
    yield "float", Image.fromarray(grey.astype(np.float32) / 255, "F")  # in [0, 1]


@pytest.mark.parametrize(
    "kind, canvas, box",
    [
        ("ring", (60, 50), (10, 5, 40, 45)),
        ("bar", (400, 300), (200, 20, 230, 280)),
        ("ell", (120, 200), (5, 150, 60, 195)),
        ("ring", (24, 24), (2, 2, 12, 21)),
    ],
)
def test_prepared_like_mnist(kind, canvas, box):
    img = draw_shape(kind, canvas, box)
    prepared = {name: prepare_image(v) for name, v in variants(img)}
    for name, x in prepared.items():
        assert_mnist_like(x)
        # every variant of the same drawing gives nearly the same input
        assert np.abs(x - prepared["grey"]).max() < 0.2, name


def test_show_draws_every_variant_as_it_looks():
    """--show's original of a transparent, 16-bit or float image is the
    picture, not a black or white field."""
    img = draw_shape("ring", (60, 50), (10, 5, 40, 45))
    grey = np.asarray(img, dtype=np.float64)  # (H, W)
    for name, variant in variants(img):
        shown = np.asarray(predict.pixels_to_show(variant), dtype=np.float64)
        shown = shown.mean(axis=-1) if shown.ndim == 3 else shown  # (H, W)
        assert abs(np.corrcoef(shown.ravel(), grey.ravel())[0, 1]) > 0.9, name


def test_aspect_ratio_is_kept():
    x = prepare_image(draw_shape("bar", (300, 300), (100, 30, 129, 239)))  # 30x210
    top, bottom, left, right = ink_bounds(x)
    assert bottom - top == 20 and right - left in (2, 3, 4)


def test_position_and_size_do_not_matter():
    digit = draw_shape("ell", (60, 70), (5, 5, 40, 60))
    moved = Image.new("L", (300, 200), 0)
    moved.paste(digit, (210, 90))
    larger = digit.resize((240, 280), Image.Resampling.NEAREST)
    a, b, c = (prepare_image(img) for img in (digit, moved, larger))
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert np.corrcoef(a.ravel(), c.ravel())[0, 1] > 0.95


def test_jpeg_noise_is_background(tmp_path):
    img = draw_digit(5, 80).convert("RGB")
    img.save(tmp_path / "five.jpg", quality=60)
    assert_mnist_like(prepare_file(tmp_path / "five.jpg"))


def test_fashion_recipe_fills_28_and_centres_the_box():
    x = prepare_image(draw_shape("ring", (90, 70), (10, 10, 50, 60)), "fashion-mnist")
    top, bottom, left, right = ink_bounds(x)
    assert bottom - top == 28
    assert abs((left + right) / 2 - 14) <= 0.5


def test_blank_image_is_an_error():
    with pytest.raises(DataError, match="blank"):
        prepare_image(Image.new("RGB", (50, 50), (200, 200, 200)))


@pytest.fixture
def random_model(tmp_path) -> Path:
    """An untrained model's checkpoint; enough to test the command line."""
    path = tmp_path / "model.npz"
    model = MLP([784, 16, 10], seed=0)
    save_checkpoint(path, Checkpoint(model.params, config={"dataset": "mnist"}))
    return path


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = predict.main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_json_lines(random_model, tmp_path):
    paths = []
    for d in (3, 7):
        paths.append(tmp_path / f"{d}.png")
        draw_digit(d, 40).save(paths[-1])
    rc, out, err = run_main([str(random_model), *map(str, paths), "--json"])
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2
    for path, line in zip(paths, lines):
        obj = json.loads(line)
        assert set(obj) == {
            "file",
            "digit",
            "probability",
            "runner_up",
            "runner_up_probability",
            "digits_in_image",
        }
        assert obj["file"] == str(path) and obj["digits_in_image"] == 1
        assert obj["digit"] in range(10) and obj["runner_up"] in range(10)
        assert obj["digit"] != obj["runner_up"]
        assert 1 >= obj["probability"] >= obj["runner_up_probability"] >= 0
        assert obj["probability"] + obj["runner_up_probability"] <= 1 + 1e-6


def test_show_writes_picture(random_model, tmp_path):
    image = tmp_path / "four.png"
    draw_digit(4, 50, light_ink=True).save(image)
    rc, out, err = run_main([str(random_model), str(image), "--show"])
    assert rc == 0, err
    shown = tmp_path / "four.prepared.png"
    assert "four.png: " in out and str(shown) in out
    with Image.open(shown) as img:
        assert img.format == "PNG" and min(img.size) >= 200
    rc, _, err = run_main(
        [str(random_model), str(image), "--show", "--show-dir", str(tmp_path / "s")]
    )
    assert rc == 0, err
    assert (tmp_path / "s" / "four.prepared.png").is_file()


def test_bad_images_get_one_line_errors(random_model, tmp_path):
    good = tmp_path / "good.png"
    draw_digit(2, 40).save(good)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    bad = {
        "notes.txt": "not an image",
        "empty.png": "not an image",
        "blank.png": "blank",
        "missing.png": "not found",
    }
    argv = [str(random_model), str(good), *(str(tmp_path / name) for name in bad)]
    rc, out, err = run_main(argv)
    assert rc == 1
    assert out.startswith(f"{good}: ")  # the good file is still recognised
    lines = err.strip().splitlines()
    assert len(lines) == len(bad)
    for line, (name, message) in zip(lines, bad.items()):
        assert line.startswith(f"error: {tmp_path / name}: ") and message in line


def test_model_that_is_not_ours(tmp_path):
    fake = tmp_path / "model.npz"
    fake.write_text("hello")
    draw_digit(1, 30).save(tmp_path / "one.png")
    rc, out, err = run_main([str(fake), str(tmp_path / "one.png")])
    assert rc == 1 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1


def test_fashion_model_uses_its_names(tmp_path):
    path = tmp_path / "model.npz"
    model = MLP([784, 16, 10], seed=1)
    save_checkpoint(path, Checkpoint(model.params, config={"dataset": "fashion-mnist"}))
    shirt = Image.new("L", (60, 60), 255)
    ImageDraw.Draw(shirt).polygon([(10, 10), (50, 10), (45, 55), (15, 55)], fill=40)
    shirt.save(tmp_path / "shirt.png")
    rc, out, err = run_main([str(path), str(tmp_path / "shirt.png")])
    assert rc == 0, err
    predicted = out.split(": ", 1)[1].split(" (probability")[0]
    assert predicted in CLASS_NAMES["fashion-mnist"]


@pytest.fixture(scope="module")
def mnist_model(tmp_path_factory) -> Path:
    """A model trained for 2 epochs on the bundled MNIST (about 95% test accuracy)."""
    out = tmp_path_factory.mktemp("mnist") / "run"
    argv = ["--epochs", "2", "--device", "cpu", "--out", str(out), "--quiet"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert train.main(argv) == 0
    return out


@pytest.mark.slow
def test_recognises_drawn_digits(mnist_model, tmp_path):
    files, truth = [], []
    for size in (24, 60, 150):
        for light_ink in (False, True):
            for digit in range(10):
                mode = "RGB" if (digit + size) % 2 else "L"
                path = tmp_path / f"{digit}-{size}-{int(light_ink)}.png"
                draw_digit(digit, size, light_ink, mode).save(path)
                assert_mnist_like(prepare_file(path))
                files.append(str(path))
                truth.append(digit)
    rc, out, err = run_main([str(mnist_model), *files, "--json"])
    assert rc == 0, err
    answers = [json.loads(line) for line in out.strip().splitlines()]
    assert [a["file"] for a in answers] == files
    correct = np.mean([a["digit"] == d for a, d in zip(answers, truth)])
    assert correct >= 0.6, f"recognised only {correct:.0%} of {len(files)} digits"


def test_files_that_cannot_be_read_say_why(random_model, tmp_path, monkeypatch):
    """A folder, an unreadable file and a decompression bomb are named as such,
    not as missing or damaged images; a large image is read without a warning."""
    from PIL import Image as PILImage

    good = tmp_path / "good.png"
    draw_digit(2, 20).save(good)  # 60x40 pixels
    (tmp_path / "folder.png").mkdir()
    draw_digit(3, 40).save(tmp_path / "locked.png")
    draw_digit(4, 40).save(tmp_path / "bomb.png")  # 120x80 pixels
    draw_digit(5, 30).save(tmp_path / "large.png")  # 90x60 pixels
    real_open = PILImage.open

    def guarded_open(fp, *args, **kwargs):
        if str(fp).endswith("locked.png"):  # as chmod 000 would (tests may be root)
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(PILImage, "open", guarded_open)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 4000)  # bomb: over 8000
    names = ["folder.png", "locked.png", "bomb.png", "large.png"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc, out, err = run_main(
            [str(random_model), str(good), *(str(tmp_path / n) for n in names)]
        )
    assert not caught, [str(w.message) for w in caught]
    assert rc == 1
    assert out.startswith(f"{good}: ") and f"{tmp_path / 'large.png'}: " in out
    lines = err.strip().splitlines()
    assert lines[:2] == [
        f"error: {tmp_path / 'folder.png'}: a folder, not an image file",
        f"error: {tmp_path / 'locked.png'}: cannot read it (Permission denied)",
    ], err
    assert len(lines) == 3
    assert lines[2].startswith(f"error: {tmp_path / 'bomb.png'}: too large to read ")
    assert "9600 pixels" in lines[2]
