"""How many drawn pairs of touching digits ``predict --multi`` reads right.

    python tests/touching_pairs.py

Every ordered pair of classes (100 pairs): two MNIST test digits that the
tests' tiny model (``drawn_pages.train_model``) reads surely on their own,
scaled 2x and pasted so that their strokes overlap by 2 pixels
(``drawn_pages.touching_page``), read through ``prepare_digits``. A pair is
read right when exactly its two digits come out, in order. It also counts
how many of 200 MNIST test digits (every 50th), drawn one to a page the same
way, come out as more than one digit.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from drawn_pages import confident_digits, digit_ink, mnist, number_page, touching_page

from backprop.app.photos.prepare import prepare_digits
from backprop.model import MLP


def pairs_of(model: MLP, classes: list[int]) -> list[tuple[int, int]]:
    """A pair of test digits for each ordered pair of ``classes``: indices."""
    chosen = confident_digits(model, classes * 2)  # two of each class
    _, _, _, yt = mnist()
    first = {int(yt[i]): i for i in reversed(chosen[: len(classes)])}
    second = {int(yt[i]): i for i in reversed(chosen[len(classes) :])}
    return [(first[a], second[b]) for a in classes for b in classes]


def read_pair(model: MLP, pair: tuple[int, int], seed: int = 0) -> str:
    """What ``prepare_digits`` and the model read on a page of the pair touching:
    the digits in order, ``?`` for a piece not split."""
    digits = [digit_ink(i, 2.0) for i in pair]
    img, _ = touching_page(digits, [True], overlap=2, seed=seed)
    found = prepare_digits(img)
    x = np.stack([f.prepared.ravel() for f in found])  # (K, 784)
    read = model.predict(x)  # (K,)
    return "".join("?" if f.touching else str(d) for f, d in zip(found, read))


def main() -> int:
    """Print how many of the 100 pairs are read right, and how the rest went."""
    from drawn_pages import train_model

    model = train_model(Path(tempfile.mkdtemp()) / "model.npz")
    _, _, _, yt = mnist()
    tally = {"right": 0, "one digit": 0, "?": 0, "misread": 0}
    pairs = pairs_of(model, list(range(10)))
    for seed, pair in enumerate(pairs):
        truth = "".join(str(yt[i]) for i in pair)
        got = read_pair(model, pair, seed)
        kind = "right" if got == truth else "?" if "?" in got else "misread"
        tally["one digit" if len(got) == 1 and "?" not in got else kind] += 1
    print(f"{tally['right']} of {len(pairs)} touching pairs read right; {tally}")
    cut = sum(
        len(prepare_digits(number_page([digit_ink(i, 2.0)], seed=i)[0])) > 1
        for i in range(0, 10000, 50)
    )
    print(f"{cut} of 200 single digits drawn one to a page cut into several")
    return 0


if __name__ == "__main__":
    sys.exit(main())
