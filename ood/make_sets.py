"""Build the out-of-distribution digit sets: image files unlike MNIST's digits.

    python ood/make_sets.py --overwrite  # rewrites ood/sets/ (about a minute)
    python ood/make_sets.py --check      # rebuilds in memory, compares SHA-256

Three sets, each a folder of image files and a labels.csv (file, label,
source), listed with their SHA-256 in ood/sets/SHA256SUMS:

* ``tune``: digits rendered from one half of the fonts below, distorted and
  made to look photographed. The only set used to choose ``--augment``'s
  defaults (docs/augmentation.md).
* ``fonts``: the same recipe from the other half of the fonts, which ``tune``
  never shows. For measuring only.
* ``optdigits``: real handwriting by 43 people, the 1,797 8x8 digits of the
  UCI optdigits test set that scikit-learn ships (``sklearn.datasets.
  load_digits``), drawn as dark ink on light paper. For measuring
  only: nothing was chosen by looking at it. Each 8x8 digit gets a 2-pixel
  margin of paper and is scaled to 48x48 (bilinear).

A font digit: the glyph drawn large, turned, sheared, thickened or thinned,
then put at a random size and place on a page 56 to 112 pixels wide, with
paper texture, uneven light, tinted ink, blur and JPEG compression.

The fonts come from Debian packages (fonts-bwht, fonts-breip,
fonts-dkg-handwriting, fonts-humor-sans, fonts-comic-neue,
fonts-dancingscript, fonts-kaushanscript, fonts-sjfonts,
fonts-tomsontalks, fonts-yusei-magic, fonts-seto, fonts-kiloji,
fonts-isabella, fonts-joscelyn, fonts-dejavu-core, fonts-liberation,
fonts-freefont-ttf, fonts-urw-base35). The sets are committed, so measuring
needs none of them; rebuilding needs all of them (font rendering can differ
between FreeType versions, which ``--check`` would show).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout's backprop, not another
SETS = HERE / "sets"

from backprop.app.runs import atomic_write, atomic_write_text  # noqa: E402

SEEDS = {"tune": 2026, "fonts": 1998, "optdigits": 0}
PER_FONT = {"tune": 40, "fonts": 40}  # digits drawn from each font

# (handwriting-like fonts, printed fonts); even positions go to "tune", odd to
# "fonts", so the two sets share no font. Outline fonts (fonts-femkeklaver,
# fonts-cabinsketch) are left out: a digit drawn as its outline is not one a
# hand would write.
HANDWRITING = [
    "opentype/bwht/BecauseWeBuild-Regular.otf",
    "opentype/bwht/BecauseWeConnect-Regular.otf",
    "opentype/bwht/BecauseWeCreate-Regular.otf",
    "opentype/bwht/BecauseWeLearn-Regular.otf",
    "opentype/bwht/BecauseWeMentor-Regular.otf",
    "opentype/bwht/BecauseWeOrganize-Regular.otf",
    "truetype/breip/Breip.ttf",
    "truetype/fifthhorseman/dkg.ttf",
    "truetype/humor-sans/Humor-Sans.ttf",
    "opentype/comic-neue/ComicNeue-Regular.otf",
    "opentype/dancingscript/DancingScript-Regular.otf",
    "opentype/kaushanscript/KaushanScript-Regular.otf",
    "truetype/sjfonts/Delphine.ttf",
    "truetype/sjfonts/SteveHand.ttf",
    "truetype/tomsontalks/TomsonTalks.ttf",
    "truetype/yusei-magic/YuseiMagic-Regular.ttf",
    "truetype/seto/setofont.ttf",
    "truetype/kiloji/kiloji.ttf",
    "truetype/isabella/Isabella.ttf",
    "opentype/joscelyn/Joscelyn-Regular.otf",
]
PRINTED = [
    "truetype/dejavu/DejaVuSans.ttf",
    "truetype/dejavu/DejaVuSerif.ttf",
    "truetype/liberation/LiberationSans-Regular.ttf",
    "truetype/liberation/LiberationSerif-Regular.ttf",
    "truetype/liberation/LiberationMono-Regular.ttf",
    "truetype/freefont/FreeSans.ttf",
    "truetype/freefont/FreeSerif.ttf",
    "truetype/freefont/FreeMono.ttf",
    "opentype/urw-base35/NimbusSans-Regular.otf",
    "opentype/urw-base35/NimbusRoman-Regular.otf",
    "opentype/urw-base35/URWGothic-Book.otf",
    "opentype/urw-base35/URWBookman-Demi.otf",
    "opentype/urw-base35/C059-Roman.otf",
    "opentype/urw-base35/P052-Roman.otf",
    "opentype/urw-base35/Z003-MediumItalic.otf",
    "opentype/urw-base35/NimbusSansNarrow-Regular.otf",
]
FONT_ROOT = Path("/usr/share/fonts")


def fonts_of(name: str) -> list[Path]:
    """The font files of set ``name``: alternate fonts of each list."""
    start = 0 if name == "tune" else 1
    chosen = HANDWRITING[start::2] + PRINTED[start::2]
    paths = [FONT_ROOT / p for p in chosen]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        sys.exit(f"error: missing fonts (see the module docstring): {missing[0]}")
    return paths


def glyph(font: ImageFont.FreeTypeFont, digit: int) -> np.ndarray:
    """The digit's ink, (H, W) float in [0, 1], cropped, drawn 96 px tall."""
    img = Image.new("L", (200, 200), 0)
    ImageDraw.Draw(img).text((50, 30), str(digit), fill=255, font=font)
    ink = np.asarray(img, dtype=np.float64) / 255  # (200, 200)
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    if rows.size == 0:
        raise ValueError(f"{font.path}: no glyph for {digit}")
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def handwrite(ink: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Turn, shear and re-weight a glyph a little, as a hand would vary it."""
    img = Image.fromarray((ink * 255).astype(np.uint8)).convert("L")
    pad = max(img.size) // 2
    big = Image.new("L", (img.width + 2 * pad, img.height + 2 * pad), 0)
    big.paste(img, (pad, pad))
    shear = rng.uniform(-0.25, 0.25)
    big = big.transform(
        big.size,
        Image.Transform.AFFINE,
        (1, shear, -shear * big.height / 2, 0, 1, 0),
        Image.Resampling.BILINEAR,
    )
    big = big.rotate(rng.uniform(-12, 12), Image.Resampling.BILINEAR)
    weight = rng.integers(-1, 3)  # thinner, as drawn, or up to two steps bolder
    for _ in range(abs(weight)):
        size = 3 if big.height > 60 else 3
        big = big.filter(
            ImageFilter.MaxFilter(size) if weight > 0 else ImageFilter.MinFilter(size)
        )
    box = big.getbbox()
    return big.crop(box) if box else big


def photograph(digit: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Put a digit on a page: size, place, paper, light, ink, blur, JPEG."""
    side = int(rng.integers(56, 113))
    height = int(side * rng.uniform(0.35, 0.85))
    width = max(1, round(digit.width * height / digit.height))
    width = min(width, side - 2)
    small = (
        np.asarray(
            digit.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float64
        )
        / 255
    )  # (h, w)
    top = int(rng.integers(0, side - height + 1))
    left = int(rng.integers(0, side - width + 1))
    ink = np.zeros((side, side))  # (S, S)
    ink[top : top + height, left : left + width] = np.clip(small, 0, 1)

    yy, xx = np.mgrid[0:side, 0:side] / side  # (S, S) each
    angle = rng.uniform(0, 2 * np.pi)
    light = 1 - rng.uniform(0.0, 0.45) * (  # a gradient across the page
        0.5 + 0.5 * np.cos(angle) * (xx - 0.5) * 2 + 0.5 * np.sin(angle) * (yy - 0.5)
    )
    grain = rng.normal(0, 1, (side // 4 + 1, side // 4 + 1))
    texture = np.kron(grain, np.ones((4, 4)))[:side, :side]  # (S, S) blotches
    paper = rng.uniform(0.75, 0.97) + 0.03 * texture + rng.normal(0, 0.02, (side, side))
    tint = rng.uniform(0.9, 1.0, 3) * np.array([1.0, 0.98, 0.93])  # warm paper
    ink_colour = rng.uniform(0.02, 0.35, 3)  # dark, a little coloured
    strength = rng.uniform(0.7, 1.0)
    page = np.empty((side, side, 3))  # (S, S, 3)
    for c in range(3):
        page[..., c] = (
            paper * tint[c] * (1 - strength * ink) + ink_colour[c] * strength * ink
        )
    page = np.clip(page * light[..., None], 0, 1)
    img = Image.fromarray((page * 255).astype(np.uint8), "RGB")
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.2)))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=int(rng.integers(35, 90)))
    return Image.open(io.BytesIO(out.getvalue()))


def font_set(name: str) -> list[tuple[str, bytes, int, str]]:
    """``(file name, JPEG bytes, label, font)`` of every image of a font set."""
    rng = np.random.default_rng(SEEDS[name])
    items = []
    for font_path in fonts_of(name):
        font = ImageFont.truetype(str(font_path), 96)
        for k in range(PER_FONT[name]):
            digit = k % 10
            img = photograph(handwrite(glyph(font, digit), rng), rng)
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=95)  # already compressed once
            index = len(items)
            items.append((f"{index:05d}.jpg", buf.getvalue(), digit, font_path.name))
    return items


def optdigits_set() -> list[tuple[str, bytes, int, str]]:
    """The 1,797 optdigits digits as 48x48 PNGs, dark ink on light paper."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    items = []
    for index, (image, label) in enumerate(zip(digits.images, digits.target)):
        framed = np.pad(image, 2)  # (12, 12): a margin of paper around the digit
        grey = (255 - framed * (255 / 16)).astype(np.uint8)  # 0-16 counts -> ink
        img = Image.fromarray(grey, "L").resize((48, 48), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        img.save(buf, "PNG")
        items.append((f"{index:05d}.png", buf.getvalue(), int(label), "optdigits"))
    return items


def build(name: str) -> list[tuple[str, bytes, int, str]]:
    """Every image of set ``name``."""
    return optdigits_set() if name == "optdigits" else font_set(name)


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, verify) every set; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare, write nothing")
    p.add_argument(
        "--overwrite", action="store_true", help="replace the sets in ood/sets/"
    )
    args = p.parse_args(argv)
    if not args.check and (SETS / "SHA256SUMS").exists() and not args.overwrite:
        print(
            f"error: {SETS}: holds the sets; pass --overwrite to rebuild them, "
            "or --check to compare",
            file=sys.stderr,
        )
        return 1
    sums = []
    for name in SEEDS:
        items = build(name)
        folder = SETS / name
        if not args.check:
            folder.mkdir(parents=True, exist_ok=True)
            table = io.StringIO(newline="")
            writer = csv.writer(table)
            writer.writerow(["file", "label", "source"])
            for file, data, label, source in items:
                atomic_write(folder / file, lambda f, data=data: f.write(data))
                writer.writerow([file, label, source])
            atomic_write_text(folder / "labels.csv", table.getvalue())
        for file, data, _, _ in items:
            sums.append(f"{hashlib.sha256(data).hexdigest()}  {name}/{file}")
        print(f"{name}: {len(items)} images")
    text = "\n".join(sums) + "\n"
    if args.check:
        same = (SETS / "SHA256SUMS").read_text() == text
        print("identical to ood/sets" if same else "differs from ood/sets")
        return 0 if same else 1
    atomic_write_text(SETS / "SHA256SUMS", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
