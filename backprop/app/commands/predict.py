"""Recognise digits in ordinary image files with a trained model.

    python -m backprop.predict runs/RUN my-digit.png photo.jpg   # or --json
    python -m backprop.predict runs/RUN seven.jpg --show
    python -m backprop.predict runs/RUN cheque.jpg --multi --show

Each image (PNG, JPEG, ...; any size, colour or grey, dark ink on light paper
or light on dark, a clean drawing or a photo of a page) is prepared the way
MNIST was (``backprop.app.photos.prepare``): the paper's light and texture
removed, the ink thresholded (``backprop.app.photos.ink``), the digit found
among the pieces of ink (``backprop.app.photos.segment``), cropped, scaled
into a 20x20 box and centred by its centre of mass in 28x28; then
classified. For each file one line: the digit, its probability and the
runner-up (``--json``: one JSON object per line). An image that holds several
digits gets a note saying so (``digits_in_image``). ``--multi`` reads every
digit of a number (a form, a cheque), row by row, each row left to right,
touching digits cut apart (or, where no clean cut is found, ``?``), each
prepared as a single digit is: ``cheque.jpg: 2026  (2 0.99, 0 0.97, 2 0.98,
6 0.95)`` (``--json``: ``file``, ``number`` and ``digits``, each with its
``box``, ``[left, top, right, bottom]`` in the image's pixels). ``--show``
writes ``NAME.prepared.png``: the original (shrunk to at most ``SHOW_SIDE``
pixels) beside the prepared input, or with ``--multi`` boxed, the first
``MAX_PANELS`` prepared digits below (an existing picture is replaced only
with ``--overwrite``). A file that cannot be read or prepared, or holds no
digit (blank, noise, too small), gets one line on stderr; the others are
still recognised, and the exit status is 1 at the end. A newline or another
control character in a file name is printed escaped (a backslash and ``n``),
a byte that is not UTF-8 as a backslash, ``x`` and two hex digits. A model
trained on Fashion-MNIST gets Fashion-MNIST's preparation and names; an
``.onnx`` file (``backprop export``) runs in onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from backprop.app.commands import prog
from backprop.app.commands.flags_and_errors import (
    HelpFormatter,
    Parser,
    on_interrupt,
    run_command,
)
from backprop.app.evaluation import plots
from backprop.app.evaluation.outputs import predict_all
from backprop.app.evaluation.pages import MAX_PANELS, plot_found_digits
from backprop.app.onnx_model import OnnxModel, is_onnx
from backprop.app.photos.prepare import (
    RECIPES,
    SIDE,
    Found,
    grey_levels,
    open_image,
    prepare_digits,
    prepare_one,
)
from backprop.app.runs import load_model, saved_data
from backprop.data import class_names_for
from backprop.errors import BackpropError, DataError, OutputError

if TYPE_CHECKING:
    from PIL.Image import Image

# What Pillow and NumPy raise on an image they cannot handle, beyond DataError.
IMAGE_FAILURES = (ValueError, TypeError, ArithmeticError, MemoryError)
# One digit's reading: (class, probability, runner-up class, its probability).
Answer = tuple[int, float, int, float]
SHOW_SIDE = 1024  # --show draws the original shrunk to this (memory and time)
UNSPLIT = "about {} touching digits, not split"  # a piece not cut into digits


def printable(text: str | Path) -> str:
    """A file name or message as one printable line, whatever its bytes.

    Bytes that are not UTF-8 become a backslash, ``x`` and two hex digits; a
    newline or another control character is escaped as Python writes it (a
    backslash and ``n``), so a file name can never start a line of its own.
    """
    decoded = os.fsencode(text).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in decoded)


def recognise(probs: np.ndarray) -> Answer:
    """The most probable class and the runner-up of one probability vector (C,).

    Returns:
        ``(class, probability, runner-up class, its probability)``.
    """
    first, second = np.argsort(-probs, kind="stable")[:2]
    return int(first), float(probs[first]), int(second), float(probs[second])


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; every default is shown in ``--help``."""
    p = Parser(
        prog=prog("predict"),
        description="Recognise the digit (or, with --multi, the number) in each "
        "image file with a trained model.",
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "model", type=Path, help="a run folder, its model.npz, or an exported .onnx"
    )
    p.add_argument("images", type=Path, nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument(
        "--multi",
        action="store_true",
        help="read every digit of a number in each image, row by row, left to right",
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON object per line per file"
    )
    p.add_argument(
        "--show",
        action="store_true",
        help="write NAME.prepared.png: the original next to the prepared input "
        "(with --multi: the digits boxed, the prepared digits below)",
    )
    p.add_argument(
        "--show-dir",
        type=Path,
        default=None,
        help="where --show writes (default: next to each image)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="let --show replace existing NAME.prepared.png files",
    )
    p.add_argument(
        "--recipe",
        choices=("auto", *RECIPES),
        default="auto",
        help="how to prepare images; auto follows the model's dataset",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 if any file failed)."""
    parser = build_parser()
    args = parser.parse_args(argv)

    def body() -> int:
        with on_interrupt("interrupted; the files printed were recognised, no others"):
            return run(args)

    return run_command(parser, body)


def run(args: argparse.Namespace) -> int:
    """Recognise each image the flags name; the body of ``main``."""
    if is_onnx(args.model):  # written by backprop export: run by onnxruntime
        model = OnnxModel(args.model)
        config = model.config
    else:
        model, ckpt, _ = load_model(args.model)
        config = ckpt.config
    if model.sizes[0] != SIDE * SIDE:
        raise DataError(
            f"{args.model}: the model takes {model.sizes[0]} inputs, "
            f"not {SIDE}x{SIDE} images"
        )
    dataset, _ = saved_data(args.model, config)
    names = class_names_for(dataset, model.sizes[-1])
    recipe = args.recipe if args.recipe != "auto" else dataset
    recipe = recipe if recipe in RECIPES else "mnist"
    status = 0
    shown_so_far: set[Path] = set()  # --show's pictures written by this run
    for path in args.images:
        try:
            img = open_image(path)
            found, count = prepare(img, recipe, args.multi, path)
            x = np.stack([f.prepared for f in found]).reshape(len(found), -1)  # (K, D)
            probs = predict_all(model, x.astype(model.dtype))  # (K, C)
            answers = [recognise(p) for p in probs]
            print(describe(path, found, answers, names, args, count), flush=True)
            if args.show:
                target = (args.show_dir or path.parent) / f"{path.stem}.prepared.png"
                check_show_target(target, shown_so_far, args.overwrite)
                shown_so_far.add(target.resolve())
                shown = show(img, found, answers, names, target, path, args.multi)
                if not args.json:
                    drawn = ""
                    if args.multi and len(found) > MAX_PANELS:
                        drawn = f" (the first {MAX_PANELS} of {len(found)} inputs)"
                    print(f"  wrote {printable(shown)}{drawn}", flush=True)
        except BackpropError as exc:
            error(str(exc))
            status = 1
        except OSError as exc:  # --show could not write its picture
            error(f"{exc.filename or path}: {exc.strerror}")
            status = 1
        except IMAGE_FAILURES as exc:  # drawing --show's picture of an odd image
            error(f"{path}: cannot show it ({exc})")
            status = 1
    return status


def error(message: str) -> None:
    """Print ``error: message`` on stderr as one line."""
    print(f"error: {printable(message)}", file=sys.stderr, flush=True)


def prepare(img: Image, recipe: str, multi: bool, path: Path) -> tuple[list, int]:
    """The digit (or with ``multi`` every digit) of an image, and their count.

    Returns the model's inputs (``Found``) and how many digits the image
    seems to hold.

    Raises:
        DataError: naming ``path``: the image holds no digit or cannot be
            prepared.
    """
    try:
        if multi:
            found = prepare_digits(img, recipe)
            return found, len(found)
        prepared, count = prepare_one(img, recipe)  # (28, 28)
        return [Found(box=(0, 0, img.width, img.height), prepared=prepared)], count
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    except IMAGE_FAILURES as exc:
        raise DataError(f"{path}: cannot prepare it ({exc})") from None


def number_of(
    answers: list[Answer], names: list[str], found: list[Found] | None = None
) -> str:
    """The digits read, in reading order, as one number ("2026").

    ``?`` for a piece of touching digits in ``found`` that could not be split.
    """
    glue = "" if all(len(name) == 1 for name in names) else " "
    touching = [f.touching for f in found or []] or [0] * len(answers)
    return glue.join("?" if t else names[a[0]] for a, t in zip(answers, touching))


def describe(
    path: Path,
    found: list[Found],
    answers: list[Answer],
    names: list[str],
    args: argparse.Namespace,
    count: int = 1,
) -> str:
    """The line printed for one file: text, or with ``--json`` a JSON object.

    Without ``--multi``, a note if the image holds ``count`` > 1 digits.
    """
    if args.multi:
        number = number_of(answers, names, found)
        if args.json:
            digits = [
                (answer_json(a) if not f.touching else unsplit_json(f))
                | {"box": list(f.box)}
                for f, a in zip(found, answers)
            ]
            return json.dumps({"file": str(path), "number": number, "digits": digits})
        each = ", ".join(
            f"? ({UNSPLIT.format(f.touching)})" if f.touching else f"{n} {a[1]:.2f}"
            for f, a, n in zip(found, answers, [names[a[0]] for a in answers])
        )
        return f"{printable(path)}: {number}  ({each})"
    best, p_best, second, p_second = answers[0]
    if args.json:
        return json.dumps(
            {"file": str(path)} | answer_json(answers[0]) | {"digits_in_image": count}
        )
    note = f"; the image holds {count} digits: --multi reads them all"
    return (
        f"{printable(path)}: {names[best]} (probability {p_best:.3f}), "
        f"runner-up {names[second]} ({p_second:.3f}){note if count > 1 else ''}"
    )


def unsplit_json(found: Found) -> dict:
    """A piece of touching digits that could not be split, as ``--json`` has it."""
    unread = dict.fromkeys(answer_json((0, 0.0, 0, 0.0)))  # each key, None
    return unread | {"touching": found.touching, "note": UNSPLIT.format(found.touching)}


def answer_json(answer: Answer) -> dict:
    """One digit's reading as ``--json`` writes it."""
    best, p_best, second, p_second = answer
    return {
        "digit": best,
        "probability": p_best,
        "runner_up": second,
        "runner_up_probability": p_second,
    }


def show(
    img: Image,
    found: list[Found],
    answers: list[Answer],
    names: list[str],
    target: Path,
    path: Path,
    multi: bool,
) -> Path:
    """Draw ``--show``'s picture of the file ``path`` at ``target``; returns it.

    The original is drawn shrunk to at most ``SHOW_SIDE`` pixels a side.
    """
    small = shrunk(img, SHOW_SIDE)
    original = pixels_to_show(small)  # (h, w, 3) or (h, w)
    scale = small.width / img.width
    name = printable(path.name)
    if multi:
        return plot_found_digits(
            original,
            [tuple(round(v * scale) for v in f.box) for f in found],
            [f.prepared for f in found],
            [
                "?" if f.touching else f"{names[a[0]]} {a[1]:.2f}"
                for f, a in zip(found, answers)
            ],
            target,
            f"{name}: {number_of(answers, names, found)} ({len(found)} digits)",
            size=img.size,
        )
    best, p_best, second, p_second = answers[0]
    return plots.plot_prepared(
        original,
        found[0].prepared,
        target,
        f"{name}: {names[best]} ({p_best:.1%}), "
        f"runner-up {names[second]} ({p_second:.1%})",
        size=img.size,
    )


def shrunk(img: Image, side: int) -> Image:
    """``img``, or a copy shrunk to at most ``side`` pixels on its longer side.

    Pillow shrinks by whole factors first (``reducing_gap``), so the full
    size is never copied.
    """
    from PIL import Image as PILImage

    if max(img.size) <= side:
        return img
    scale = side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    try:
        return img.resize(size, PILImage.Resampling.BOX, reducing_gap=2.0)
    except (ValueError, OSError):  # a mode Pillow shrinks only by sampling
        return img.resize(size, PILImage.Resampling.NEAREST)


def pixels_to_show(img: Image) -> np.ndarray:
    """The pixels ``--show`` draws of an image: its colours, or its grey levels.

    Grey levels where converting to RGB would lose the picture (transparency,
    which RGB drops; 16-bit or floating point, which RGB clips to 0 to 255).

    Returns:
        (H, W, 3) uint8, or (H, W) float64 (drawn from its darkest to its
        brightest).
    """
    if img.mode in ("1", "L", "P", "RGB", "CMYK", "YCbCr") and (
        "transparency" not in img.info
    ):
        return np.asarray(img.convert("RGB"))  # (H, W, 3)
    return grey_levels(img)  # (H, W)


def check_show_target(target: Path, written: set[Path], overwrite: bool) -> None:
    """Refuse to let ``--show`` replace a file it did not just decide to write.

    Args:
        target: the picture about to be written.
        written: the pictures this run has written (resolved paths).
        overwrite: ``--overwrite``: replacing files from before is allowed.

    Raises:
        OutputError: the target was written for another image of this run, or
            exists from before and ``overwrite`` is off.
    """
    if target.resolve() in written:
        raise OutputError(
            f"{target}: already written for another image of the same name"
        )
    if target.exists() and not overwrite:
        raise OutputError(f"{target}: exists; pass --overwrite to replace it")


if __name__ == "__main__":
    sys.exit(main())
