"""The README's MLP-against-CNN table is the one its JSON makes.

``python docs/make_cnn_results.py --table`` prints the table from
``docs/results/cnn.json`` (every run's numbers, the command and the machine
that made them); the README must show exactly that table, so a number cannot
be edited by hand or left behind when the runs are made again.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import load_file_as_module

ROOT = Path(__file__).resolve().parents[2]


def make_cnn_results():
    return load_file_as_module(
        ROOT / "docs" / "make_cnn_results.py", "make_cnn_results"
    )


def test_readme_shows_the_table_of_cnn_json():
    result = json.loads((ROOT / "docs" / "results" / "cnn.json").read_text())
    table = make_cnn_results().table(result)
    assert table.count("\n") > 5
    assert table in (ROOT / "README.md").read_text()


def test_every_row_has_all_three_seeds_of_both_models():
    """Each model, with and without ``--augment``, has 20-epoch runs of seeds
    0, 1 and 2 (in that order, as the table lists them), each read on the
    out-of-distribution sets, and one shorter timing run of seed 0."""
    runs = json.loads((ROOT / "docs" / "results" / "cnn.json").read_text())["runs"]
    for model in ("mlp", "cnn"):
        for augment in (False, True):
            full = [
                r
                for r in runs
                if r["model"] == model
                and r["augment"] == augment
                and r["epochs_planned"] >= 20
            ]
            assert [r["seed"] for r in full] == [0, 1, 2], (model, augment)
            assert all(r["epochs_finished"] == 20 and r["ood"] for r in full)
        timing = [r for r in runs if r["model"] == model and r["epochs_planned"] < 20]
        assert [(r["seed"], r["augment"]) for r in timing] == [(0, False)], model
