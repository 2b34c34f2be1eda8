"""Hostile data: moved or changed folders, empty splits, lying IDX headers, gzip
bombs, broken SHA256SUMS, NaN pixels, bad seeds and sizes that cannot fit."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import struct

import numpy as np
import pytest
from hostile import run_hostile, train_argv
from PIL import Image, ImageDraw

from backprop import data
from backprop.app.commands import crossval, evaluate, predict, train
from backprop.app.runs import Checkpoint, save_checkpoint
from backprop.data import SPLITS, read_idx, write_idx
from backprop.model import MLP

STEMS = [stem for pair in SPLITS.values() for stem in pair]


@pytest.fixture
def no_pictures(monkeypatch):
    """Evaluate without drawing: these tests are about the data it reads."""
    result = {"test_accuracy": 0.5, "test_loss": 1.0, "report": {}}
    monkeypatch.setattr(evaluate, "write_evaluation", lambda *a, **k: result)


def test_a_run_records_its_data_and_resumes_from_anywhere(
    synthetic_dir, tmp_path, capsys, monkeypatch, no_pictures
):
    monkeypatch.chdir(tmp_path)
    argv = train_argv(synthetic_dir.relative_to(tmp_path), "run")
    assert train.main(argv) == 0
    assert "paper" not in capsys.readouterr().out  # not the paper's data
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data_dir"] == str(synthetic_dir)  # absolute, not as typed
    assert config["data"]["folder"] == str(synthetic_dir)
    assert set(config["data"]["sha256"]) == set(STEMS)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = str(tmp_path / "run")  # a run folder names its checkpoint
    assert train.main(["--resume", run, "--epochs", "2", "--quiet"]) == 0
    assert evaluate.main([run, "--quiet"]) == 0
    assert "paper" not in capsys.readouterr().out


def changed_copy(synthetic_dir, folder, stem):
    """A copy of the data with one file's first value changed (no SHA256SUMS)."""
    shutil.copytree(synthetic_dir, folder)
    (folder / "SHA256SUMS").unlink(missing_ok=True)
    array = read_idx(folder / f"{stem}.gz").copy()
    array.flat[0] = (array.flat[0] + 1) % 10
    write_idx(folder / f"{stem}.gz", array)
    return folder


def test_resume_and_evaluate_refuse_other_data(
    synthetic_dir, tmp_path, capsys, no_pictures
):
    assert train.main(train_argv(synthetic_dir, tmp_path / "run")) == 0
    model = str(tmp_path / "run" / "model.npz")
    other = changed_copy(synthetic_dir, tmp_path / "other", "train-labels-idx1-ubyte")
    run_hostile(
        train.main,
        ["--resume", model, "--epochs", "2", "--data-dir", str(other)],
        capsys,
        tmp_path,
        status=1,
        message=rf"trained on --data-dir {synthetic_dir}, but --data-dir {other} "
        r"holds other data \(train-labels-idx1-ubyte differ\)",
    )
    shutil.copy(other / "train-labels-idx1-ubyte.gz", synthetic_dir)  # in place
    (synthetic_dir / "SHA256SUMS").unlink()  # or it would say the file was damaged
    run_hostile(
        train.main,
        ["--resume", model, "--epochs", "2"],
        capsys,
        tmp_path,
        status=1,
        message="holds other data",
    )
    labels = read_idx(synthetic_dir / "t10k-labels-idx1-ubyte.gz").copy()  # evaluated
    labels[0] = (labels[0] + 1) % 10
    write_idx(synthetic_dir / "t10k-labels-idx1-ubyte.gz", labels)
    run_hostile(
        evaluate.main,
        [str(tmp_path / "run"), "--quiet"],
        capsys,
        tmp_path,
        status=1,
        message=r"holds other data \(t10k-labels-idx1-ubyte differ\)",
    )
    # named on the command line, other data is the user's choice
    argv = [str(tmp_path / "run"), "--data-dir", str(other), "--quiet"]
    assert evaluate.main(argv) == 0


def raw_idx(header: tuple[int, ...], payload: bytes = b"") -> bytes:
    return (
        bytes([0, 0, 8, len(header)])
        + struct.pack(f">{len(header)}I", *header)
        + payload
    )


@pytest.mark.parametrize(
    "stem, content, message",
    [
        ("train", (raw_idx((0, 8, 8)), raw_idx((0,))), "the train split is empty"),
        ("train-labels-idx1-ubyte", raw_idx((0,)), "300 images but 0 labels"),
        ("t10k-images-idx3-ubyte", raw_idx((100, 0, 8)), "the test split is empty"),
        (
            "train-images-idx3-ubyte",
            raw_idx((2**32 - 1,) * 3, b"\0" * 64),
            r"announces shape \(4294967295, 4294967295, 4294967295\).* more than",
        ),
        (
            "train-images-idx3-ubyte",
            raw_idx((2**16, 2**16, 2**16), b"\0" * 64),  # 2**48: overflows nothing
            "more than the",
        ),
        (
            "train-images-idx3-ubyte",
            raw_idx((300, 8, 9), b"\0" * 64),
            r"header says shape \(300, 8, 9\) \(21616 bytes\) but the file has 80",
        ),
    ],
    ids=["no-images", "no-labels", "no-pixels", "overflow", "huge", "short"],
)
def test_lying_idx_files(synthetic_dir, tmp_path, capsys, stem, content, message):
    (synthetic_dir / "SHA256SUMS").unlink()
    stems, contents = (SPLITS[stem], content) if stem in SPLITS else ([stem], [content])
    for name, raw in zip(stems, contents):
        (synthetic_dir / f"{name}.gz").unlink()
        (synthetic_dir / name).write_bytes(raw)
    run_hostile(
        train.main,
        train_argv(synthetic_dir, tmp_path / "run"),
        capsys,
        tmp_path,
        status=1,
        message=f"{stem}: .*{message}|{message}",
    )


def test_a_gzip_bomb_is_not_inflated(tmp_path, monkeypatch):
    path = tmp_path / "bomb-idx3-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(raw_idx((5, 8, 8), b"\0" * 320))
        for _ in range(64):  # 64 MiB of zeros after what the header announces
            f.write(b"\0" * (1 << 20))
    inflated = []
    real_read = gzip.GzipFile.read

    def read(self, size=-1):
        chunk = real_read(self, size)
        inflated.append(len(chunk))
        return chunk

    monkeypatch.setattr(gzip.GzipFile, "read", read)
    with pytest.raises(data.DataError, match=r"longer than its IDX header's shape"):
        data.read_idx(path)
    assert sum(inflated) == 4 + 12 + 320 + 1  # the header, then what it announces


def sums_line(digest: str, name: str) -> str:
    return f"{digest}  {name}\n"


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda f, s: f.write_bytes(b"\xff\xfe not text"), "not UTF-8 text"),
        (
            lambda f, s: f.write_text("abc  train-images-idx3-ubyte\n"),
            "line 1: expected",
        ),
        (lambda f, s: f.write_text(s.splitlines()[0] + "\n"), "no entry for"),
        (lambda f, s: f.write_text(s + s.splitlines()[0] + "\n"), "listed twice"),
        ("compressed", "is the SHA-256 of the compressed"),
        ("gz-names", r"no entry for .* \(it lists .*\.gz, the compressed file\)"),
    ],
    ids=["not-utf8", "malformed", "missing", "twice", "compressed", "gz-names"],
)
def test_broken_checksum_files(synthetic_dir, tmp_path, capsys, write, message):
    sums = synthetic_dir / "SHA256SUMS"
    text = sums.read_text()
    if isinstance(write, str):
        lines = []
        for stem in STEMS:
            digest = hashlib.sha256((synthetic_dir / f"{stem}.gz").read_bytes())
            name = stem if write == "compressed" else f"{stem}.gz"
            lines.append(sums_line(digest.hexdigest(), name))
        sums.write_text("".join(lines))
    else:
        write(sums, text)
    run_hostile(
        train.main,
        train_argv(synthetic_dir, tmp_path / "run"),
        capsys,
        tmp_path,
        status=1,
        message=f"SHA256SUMS.*{message}",
    )


def test_nan_pixels_do_not_stop_a_batch(tmp_path, capsys):
    model = tmp_path / "model.npz"
    save_checkpoint(model, Checkpoint(MLP([784, 8, 10]).params))
    good = []
    for name in ("one.png", "two.png"):
        img = Image.new("L", (40, 40), 255)
        ImageDraw.Draw(img).line((20, 5, 20, 35), fill=0, width=4)
        img.save(tmp_path / name)
        good.append(str(tmp_path / name))
    pixels = np.zeros((30, 30), np.float32)
    pixels[5:25, 12:16] = 1.0
    pixels[0, :3] = [np.nan, np.inf, -np.inf]
    Image.fromarray(pixels, "F").save(tmp_path / "odd.tiff")
    run_hostile(
        predict.main,
        [str(model), good[0], str(tmp_path / "odd.tiff"), good[1]],
        capsys,
        tmp_path,
        status=1,
        message=r"odd\.tiff: NaN or infinite values in 3 of its 900 pixels",
    )


def test_negative_seed_and_sizes_that_cannot_fit(synthetic_dir, tmp_path, capsys):
    for command in (train.main, crossval.main):
        run_hostile(
            command,
            [*train_argv(synthetic_dir, tmp_path / "run")[:2], "--seed", "-1"],
            capsys,
            tmp_path,
            status=2,
            message="--seed must be >= 0, got -1",
        )
    for command in (train.main, crossval.main):
        run_hostile(
            command,
            train_argv(synthetic_dir, tmp_path / "run", "--hidden", "1000000000"),
            capsys,
            tmp_path,
            status=2,
            message=r"the model \[64, 1000000000, 10\] with --batch-size 64 "
            r"\(float32\) needs about [\d.]+ [TP]B of memory .* more than the",
        )
    big = train_argv(synthetic_dir, tmp_path / "run", "--batch-size", str(10**12))
    assert train.main(big) == 0  # one batch of all 300 examples an epoch
