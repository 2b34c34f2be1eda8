"""Tests of ``predict --multi`` and of finding digits on photographed pages.

The pages are drawn here (``drawn_pages``): real MNIST test digits that a
small model reads surely on their own, pasted on unevenly lit, textured
paper with specks of dust, so that what is tested is the finding and
cutting out, not the model.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from drawn_pages import (
    confident_digits,
    digit_ink,
    mnist,
    number_page,
    paper,
    paste,
    photograph,
    sprinkle,
    touching_page,
    train_model,
)
from hostile import run_hostile
from PIL import Image
from touching_pairs import pairs_of, read_pair

from backprop.app.commands import predict
from backprop.app.photos.ink import find_ink
from backprop.app.photos.prepare import (
    RECIPES,
    place,
    prepare_digits,
    prepare_image,
    prepare_one,
    to_grey,
)
from backprop.app.photos.segment import find_digits, pieces
from backprop.app.photos.touching import WIDE, digits_in, pair_cut
from backprop.errors import DataError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``(checkpoint path, model)``: one epoch on MNIST, trained once here."""
    path = tmp_path_factory.mktemp("model") / "model.npz"
    return path, train_model(path)


@pytest.fixture(scope="module")
def digits_2026(trained):
    """Four MNIST test digits, 2 0 2 6, each read surely on its own."""
    return confident_digits(trained[1], [2, 0, 2, 6])


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = predict.main(argv)
    return rc, out.getvalue(), err.getvalue()


def read(model, prepared: np.ndarray) -> int:
    return int(model.predict(prepared.reshape(1, -1).astype(np.float32))[0])


def inside(found: tuple[int, ...], pasted: tuple[int, ...], slack: int = 2) -> bool:
    """Whether a found (left, top, right, bottom) box covers a pasted digit's
    (top, bottom, left, right) box, within ``slack`` pixels (its faintest edge:
    one MNIST pixel, as wide as the scale the digit was pasted at)."""
    left, top, right, bottom = found
    t, b, lft, rgt = pasted
    return (
        abs(left - lft) <= slack
        and abs(top - t) <= slack
        and abs(right - rgt) <= slack
        and abs(bottom - b) <= slack
    )


def test_multi_reads_a_number_on_a_page(trained, digits_2026, tmp_path):
    img, pasted = number_page([digit_ink(i, 2.0) for i in digits_2026])
    img.save(tmp_path / "cheque.png")
    rc, out, err = run_main([str(trained[0]), str(tmp_path / "cheque.png"), "--multi"])
    assert rc == 0, err
    head, each = out.strip().split("  ")
    assert head == f"{tmp_path / 'cheque.png'}: 2026"
    readings = each.strip("()").split(", ")
    assert [r.split()[0] for r in readings] == list("2026")
    assert all(0 <= float(r.split()[1]) <= 1 for r in readings)

    rc, out, err = run_main(
        [str(trained[0]), str(tmp_path / "cheque.png"), "--multi", "--json"]
    )
    assert rc == 0, err
    answer = json.loads(out)
    assert answer["file"] == str(tmp_path / "cheque.png")
    assert answer["number"] == "2026"
    assert [d["digit"] for d in answer["digits"]] == [2, 0, 2, 6]
    for digit, box in zip(answer["digits"], pasted):
        assert set(digit) == {
            "digit",
            "probability",
            "runner_up",
            "runner_up_probability",
            "box",
        }
        assert inside(digit["box"], box), (digit["box"], box)


def test_each_digit_is_prepared_as_a_single_digit_is(digits_2026):
    clean = number_page(
        [digit_ink(i, 2.0) for i in digits_2026],
        specks=0,
        light=(1.0, 1.0),
        texture=0.0,
        falloff=0.0,
    )[0]
    page = np.asarray(clean)  # (H, W)
    found = prepare_digits(clean)
    assert len(found) == 4
    for digit in found:  # the same digit cut out alone, with paper around it
        left, top, right, bottom = digit.box
        crop = Image.fromarray(page[top - 10 : bottom + 10, left - 10 : right + 10])
        np.testing.assert_allclose(digit.prepared, prepare_image(crop), atol=1e-5)

    textured, _ = number_page([digit_ink(i, 2.0) for i in digits_2026])
    ink = find_digits(find_ink(to_grey(textured)), "each")
    for digit, cut in zip(prepare_digits(textured), ink):
        np.testing.assert_array_equal(digit.prepared, place(cut.ink, RECIPES["mnist"]))


@pytest.mark.parametrize("where", [0.3, 0.5, 0.7])
def test_a_digit_cut_in_two_is_one_digit(trained, digits_2026, where):
    digits = [digit_ink(i, 2.0) for i in digits_2026]
    for k in range(4):  # a gap of 3 pixels across each digit's strokes
        digits[k] = digits[k].copy()
        row = int(where * digits[k].shape[0])
        digits[k][row : row + 3] = 0
    img, pasted = number_page(digits, seed=3)
    found = prepare_digits(img)
    assert len(found) == len(pasted) == 4
    for digit, box in zip(found, pasted):
        assert inside(digit.box, box), (digit.box, box)


def test_specks_are_not_digits(trained, digits_2026):
    digits = [digit_ink(i, 2.0) for i in digits_2026[:3]]
    for seed in range(3):
        img, pasted = number_page(digits, seed=seed, specks=300)
        found = prepare_digits(img)
        assert len(found) == 3
        assert all(inside(f.box, b) for f, b in zip(found, pasted))
        assert [read(trained[1], f.prepared) for f in found] == [2, 0, 2]


def test_uneven_light_makes_no_extra_digits(digits_2026):
    digits = [digit_ink(i, 2.0) for i in digits_2026]
    for light in [(0.3, 1.0), (0.5, 0.8), (0.9, 1.0)]:
        for texture in (0.02, 0.08):
            img, _ = number_page(digits, light=light, texture=texture, specks=0)
            assert len(prepare_digits(img)) == 4, (light, texture)


def test_small_digit_on_a_large_page(trained):
    model = trained[1]
    indices = confident_digits(model, [3, 4, 7, 8])
    for seed, index in enumerate(indices):
        digit = digit_ink(index, 1.5)  # about 30 pixels tall
        lit, reflect = paper((600, 800), seed=seed)
        ink = np.zeros((600, 800))  # (H, W)
        top, left = 100 + 120 * seed, 150 + 150 * seed
        paste(ink, digit, top, left)
        box = (top, top + digit.shape[0], left, left + digit.shape[1])
        sprinkle(ink, 60, seed, avoid=[box])
        photo = photograph(lit, reflect, ink)
        clean = prepare_image(Image.fromarray(digit_ink(index) * 255))
        assert read(model, prepare_image(photo)) == read(model, clean)
        found = find_digits(find_ink(to_grey(photo)))[0]
        assert abs(found.box[0] - top) <= 2 and abs(found.box[2] - left) <= 2


def test_show_draws_the_boxes(trained, digits_2026, tmp_path):
    img, _ = number_page([digit_ink(i, 2.0) for i in digits_2026[:2]])
    img.save(tmp_path / "twenty.png")
    argv = [str(trained[0]), str(tmp_path / "twenty.png"), "--multi", "--show"]
    rc, out, err = run_main(argv)
    assert rc == 0, err
    shown = tmp_path / "twenty.prepared.png"
    assert out.splitlines()[1] == f"  wrote {shown}"
    with Image.open(shown) as picture:
        assert picture.format == "PNG" and min(picture.size) >= 300
    rc, out, err = run_main(argv)  # the picture is there now
    assert rc == 1 and "exists; pass --overwrite" in err
    assert run_main([*argv, "--overwrite"])[0] == 0


@pytest.mark.parametrize("multi", [[], ["--multi"]])
def test_an_empty_page_is_one_line(trained, tmp_path, capsys, multi):
    lit, reflect = paper((600, 800), seed=4, light=(0.4, 1.0))
    photograph(lit, reflect, np.zeros((600, 800))).save(tmp_path / "empty.png")
    run_hostile(
        predict.main,
        [str(trained[0]), str(tmp_path / "empty.png"), *multi],
        capsys,
        tmp_path,
        status=1,
        message=r"empty\.png: no digit found",
    )


def test_a_bad_file_does_not_stop_the_others(trained, digits_2026, tmp_path):
    img, _ = number_page([digit_ink(i, 2.0) for i in digits_2026[:2]])
    img.save(tmp_path / "twenty.png")
    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    files = [tmp_path / "blank.png", tmp_path / "missing.png", tmp_path / "twenty.png"]
    rc, out, err = run_main([str(trained[0]), *map(str, files), "--multi"])
    assert rc == 1
    assert out.startswith(f"{tmp_path / 'twenty.png'}: 20  (")
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"error: {tmp_path / 'blank.png'}: no digit found")
    assert lines[1].startswith(f"error: {tmp_path / 'missing.png'}: ")


def test_no_digit_found_is_a_data_error():
    with pytest.raises(DataError, match="no digit found"):
        prepare_digits(Image.new("RGB", (80, 40), (120, 130, 140)))


def test_a_28x28_mnist_digit_is_read_whole():
    """--multi on one MNIST digit at its own size prepares it as predict does,
    its stray pixels kept (they are in MNIST's 20x20 box)."""
    _, _, xt, _ = mnist()
    for index in (0, 5608, 5806):  # 5608 and 5806 have a stray pixel
        img = Image.fromarray(xt[index].reshape(28, 28))
        found = prepare_digits(img)
        assert len(found) == 1
        np.testing.assert_array_equal(found[0].prepared, prepare_image(img))
        left, top, right, bottom = found[0].box
        assert bottom - top == 20 or right - left == 20, found[0].box


def test_a_small_digit_beside_large_ones_is_a_digit(digits_2026):
    """A digit a third as tall as the others is read, not merged into its
    neighbour or left out; a speck-sized dot beside them is still no digit."""
    big = [digit_ink(i, 4.0) for i in digits_2026[:2]]
    for ratio in (0.7, 0.4, 0.33):
        small = digit_ink(digits_2026[2], 4.0 * ratio)
        lit, reflect = paper((400, 700))
        ink = np.zeros((400, 700))  # (H, W)
        pasted, left = [], 60
        for digit in [big[0], small, big[1]]:  # bottoms on one line
            top = 100 + big[0].shape[0] - digit.shape[0]
            paste(ink, digit, top, left)
            pasted.append((top, top + digit.shape[0], left, left + digit.shape[1]))
            left += digit.shape[1] + 15
        ink[170:175, left : left + 5] = 1.0  # a full stop after the number
        found = prepare_digits(photograph(lit, reflect, ink))
        assert len(found) == 3, (ratio, [f.box for f in found])
        boxes = [f.box for f in found]
        # pasted at 4x: the faintest edge is 4 pixels wide
        assert all(inside(f, b, slack=4) for f, b in zip(boxes, pasted)), (
            ratio,
            boxes,
            pasted,
        )


def test_two_rows_are_read_row_by_row(digits_2026):
    """Digits in two rows are read along the top row, then the bottom one."""
    digits = [digit_ink(i, 2.0) for i in digits_2026]
    height = max(d.shape[0] for d in digits)
    lit, reflect = paper((300, 400), seed=2)
    ink = np.zeros((300, 400))  # (H, W)
    pasted = []
    for k, digit in enumerate(digits):  # 2 0 over 2 6
        top, left = 60 + (k // 2) * (height + 25), 100 + (k % 2) * 60
        paste(ink, digit, top, left)
        pasted.append((top, top + digit.shape[0], left, left + digit.shape[1]))
    found = prepare_digits(photograph(lit, reflect, ink))
    assert len(found) == 4
    assert all(inside(f.box, b) for f, b in zip(found, pasted)), [f.box for f in found]


def test_one_digit_answer_says_the_image_holds_more(trained, digits_2026, tmp_path):
    """Without --multi, a page of several digits gets its one answer and a note
    suggesting --multi (in JSON ``digits_in_image``); a page of one digit none."""
    number, _ = number_page([digit_ink(i, 2.0) for i in digits_2026])
    number.save(tmp_path / "number.png")
    single, _ = number_page([digit_ink(digits_2026[3], 2.0)])
    single.save(tmp_path / "single.png")
    files = [str(tmp_path / "number.png"), str(tmp_path / "single.png")]
    rc, out, err = run_main([str(trained[0]), *files])
    assert rc == 0, err
    several, one = out.splitlines()
    assert several.endswith("; the image holds 4 digits: --multi reads them all")
    assert one.startswith(f"{files[1]}: 6 (probability ") and "--multi" not in one
    rc, out, err = run_main([str(trained[0]), *files, "--json"])
    assert rc == 0, err
    answers = [json.loads(line) for line in out.splitlines()]
    assert [a["digits_in_image"] for a in answers] == [4, 1]


def test_touching_pairs_are_split(trained):
    """Of the 25 ordered pairs of five classes drawn touching (their strokes
    overlapping by 2 pixels), at least 12 are read right (measured: 16;
    ``python tests/touching_pairs.py`` runs all 100 pairs); cut straight
    down at the lightest column, 7 were."""
    model = trained[1]
    _, _, _, yt = mnist()
    pairs = pairs_of(model, [0, 2, 4, 6, 8])
    right = sum(
        read_pair(model, pair, seed) == f"{yt[pair[0]]}{yt[pair[1]]}"
        for seed, pair in enumerate(pairs)
    )
    assert right >= 12, f"{right} of {len(pairs)}"


def test_touching_pairs_no_wider_than_one_digit_are_cut(trained):
    """A 1 touching a 4 and a 2 touching a 7 are pieces no wider than one
    digit (width under ``WIDE`` times the height), once read as one digit:
    cut along the path that crosses their strokes once, both digits come
    out."""
    model = trained[1]
    _, _, _, yt = mnist()
    pairs = pairs_of(model, list(range(10)))  # as touching_pairs.py draws them
    for seed in (14, 27):  # 1 then 4, 2 then 7
        pair = pairs[seed]
        img, pasted = touching_page(
            [digit_ink(i, 2.0) for i in pair], [True], seed=seed
        )
        width = pasted[1][3] - pasted[0][2]
        height = max(b[1] for b in pasted) - min(b[0] for b in pasted)
        assert width < WIDE * height  # no wider than one digit
        (piece,) = find_digits(find_ink(to_grey(img)), "main")  # one piece
        assert digits_in([piece.box]) == [1]  # by its width, one digit
        assert pair_cut(piece.ink) is not None
        assert read_pair(model, pair, seed) == f"{yt[pair[0]]}{yt[pair[1]]}"


def test_single_digits_are_not_cut_as_pairs():
    """No piece of 100 MNIST test digits drawn one to a page, of any width,
    has the path that ``pair_cut`` takes for two touching digits: it
    crosses two strokes (a 0, 8) or leaves a short part (a 2, 7)."""
    _, _, _, yt = mnist()
    for index in range(0, 10000, 100):
        page, _ = number_page([digit_ink(index, 2.0)], seed=index)
        ink = find_ink(to_grey(page))
        (digit,) = find_digits(ink, "main")  # the piece, uncut
        assert pair_cut(digit.ink) is None, (index, yt[index])
        if digit.ink.shape[1] <= WIDE * digit.ink.shape[0]:  # not cut by width
            assert len(find_digits(ink, "each")) == 1, (index, yt[index])


def test_touching_pairs_in_a_number_are_cut(digits_2026):
    """2026 written with 2 touching 0 and 2 touching 6: each touching pair is
    one piece, cut into two digits, each cut out around its own digit's
    middle (the cut between 2 and 6 is too far left for the 6 to be read)."""
    digits = [digit_ink(i, 2.0) for i in digits_2026]
    img, pasted = touching_page(digits, [True, False, True], overlap=2)
    ink = find_ink(to_grey(img))
    assert len(pieces(ink.strong)[1]) == 2  # the pairs do touch
    found = prepare_digits(img)
    assert len(found) == 4 and not any(f.touching for f in found)
    for digit, (_, _, left, right) in zip(found, pasted):
        assert left < (digit.box[0] + digit.box[2]) / 2 < right, (digit.box, left)


def test_a_piece_that_cannot_be_split_is_reported(trained, digits_2026, tmp_path):
    """A blot as wide as two digits, with no column lighter than the others,
    is kept whole and reported as ``?`` with a note, not read as a digit."""
    digit = digit_ink(digits_2026[0], 2.0)
    lit, reflect = paper((300, 600))
    ink = np.zeros((300, 600))  # (H, W)
    paste(ink, digit, 100, 60)
    ink[100 : 100 + digit.shape[0], 120:200] = 1.0  # a blot 80 pixels wide
    photograph(lit, reflect, ink).save(tmp_path / "blot.png")
    argv = [str(trained[0]), str(tmp_path / "blot.png"), "--multi"]
    rc, out, err = run_main(argv)
    assert rc == 0, err
    assert out.startswith(f"{tmp_path / 'blot.png'}: 2?  (2 ")
    assert "? (about 2 touching digits, not split)" in out
    rc, out, err = run_main([*argv, "--json"])
    answer = json.loads(out)
    assert answer["number"] == "2?"
    blot = answer["digits"][1]
    assert blot["digit"] is None and blot["touching"] == 2
    assert blot["note"] == "about 2 touching digits, not split"


def test_clean_mnist_digits_are_prepared_as_before():
    """``prepare_one`` gives what ``prepare_image`` gives for MNIST's test
    digits at their own size and scaled up on paper; it counts one digit, or
    two in a digit wider than ``WIDE`` times its height (1 of the 30 here: a
    6 that lies on its side; another wide one still counts one)."""
    _, _, xt, _ = mnist()
    for index in range(0, 3000, 15):
        img = Image.fromarray(xt[index].reshape(28, 28))
        prepared, count = prepare_one(img)
        np.testing.assert_array_equal(prepared, prepare_image(img))
        assert count == 1
    for index in range(0, 3000, 100):  # one digit on a page: a piece of ink
        digit = digit_ink(index, 2.0)
        page, _ = number_page([digit], specks=0)
        prepared, count = prepare_one(page)
        np.testing.assert_array_equal(prepared, prepare_image(page))
        wide = digit.shape[1] > WIDE * digit.shape[0]  # may count as two
        assert count == 1 or (wide and count == 2), (index, digit.shape)
