"""The out-of-distribution sets: intact, labelled, built as documented, readable."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SETS = ROOT / "ood" / "sets"
sys.path.insert(0, str(ROOT / "ood"))
import make_sets  # noqa: E402


def rows(name: str) -> list[dict[str, str]]:
    with open(SETS / name / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_every_file_matches_its_sha256():
    listed = {}
    for line in (SETS / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        listed[name] = digest
    files = {
        f"{p.parent.name}/{p.name}" for p in SETS.glob("*/*") if p.name != "labels.csv"
    }
    assert files == set(listed)
    for name, digest in listed.items():
        assert hashlib.sha256((SETS / name).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("name", make_sets.SEEDS)
def test_labels_cover_every_file_and_digit(name):
    table = rows(name)
    assert {r["file"] for r in table} == {
        p.name for p in (SETS / name).iterdir() if p.name != "labels.csv"
    }
    counts = Counter(int(r["label"]) for r in table)
    assert sorted(counts) == list(range(10))
    assert max(counts.values()) - min(counts.values()) <= 0.1 * len(table) / 10 + 2


def test_the_choosing_set_shares_no_font_with_the_measuring_one():
    tune = {r["source"] for r in rows("tune")}
    fonts = {r["source"] for r in rows("fonts")}
    assert tune and fonts and not tune & fonts
    assert len(tune) >= 15 and len(fonts) >= 15


def test_font_images_look_photographed():
    img = Image.open(SETS / "tune" / rows("tune")[0]["file"])
    assert img.format == "JPEG" and img.mode == "RGB"
    sizes = {Image.open(SETS / "fonts" / r["file"]).size for r in rows("fonts")[:50]}
    assert len(sizes) > 10  # pages of many sizes


def test_optdigits_are_rebuilt_exactly_from_scikit_learn():
    pytest.importorskip("sklearn")
    built = make_sets.optdigits_set()
    table = rows("optdigits")
    assert len(built) == len(table) == 1797
    for (file, data, label, _), row in zip(built[:200], table[:200]):
        assert file == row["file"] and label == int(row["label"])
        assert data == (SETS / "optdigits" / file).read_bytes()


def test_the_photograph_recipe_is_seeded():
    ink = np.zeros((40, 30))
    ink[5:35, 12:18] = 1.0  # a bar: a 1
    one = make_sets.photograph(
        make_sets.handwrite(ink, np.random.default_rng(3)), np.random.default_rng(4)
    )
    again = make_sets.photograph(
        make_sets.handwrite(ink, np.random.default_rng(3)), np.random.default_rng(4)
    )
    other = make_sets.photograph(
        make_sets.handwrite(ink, np.random.default_rng(3)), np.random.default_rng(5)
    )
    as_bytes = [np.asarray(i).tobytes() for i in (one, again, other)]
    assert as_bytes[0] == as_bytes[1] != as_bytes[2]


@pytest.mark.slow
def test_measure_reads_the_sets_through_predict(tmp_path):
    run = tmp_path / "run"
    subprocess.run(
        [sys.executable, "-m", "backprop.train", "--epochs", "1", "--quiet",
         "--out", str(run)],
        check=True, cwd=ROOT,
    )  # fmt: skip
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "ood" / "measure.py"), str(run), "--limit", "60",
         "--json", str(out)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())[str(run)]
    assert set(result) == {"mnist_test", "tune", "fonts", "optdigits"}
    history = json.loads((run / "history.json").read_text())
    assert result["mnist_test"] == history[-1]["test_accuracy"]
    for name in ("tune", "fonts", "optdigits"):
        assert 0.3 < result[name] <= 1.0  # read, and far better than chance
    assert f"| {run} |" in done.stdout
