"""The README's MLP-against-CNN table is the one its JSON makes.

``python docs/make_cnn_results.py --table`` prints the table from
``docs/results/cnn.json`` (every run's numbers, the command and the machine
that made them); the README must show exactly that table, so a number cannot
be edited by hand or left behind when the runs are made again.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_cnn_results():
    spec = importlib.util.spec_from_file_location(
        "make_cnn_results", ROOT / "docs" / "make_cnn_results.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_shows_the_table_of_cnn_json():
    result = json.loads((ROOT / "docs" / "results" / "cnn.json").read_text())
    table = make_cnn_results().table(result)
    assert table.count("\n") > 5
    assert table in (ROOT / "README.md").read_text()


def test_every_row_has_all_three_seeds_of_both_models():
    result = json.loads((ROOT / "docs" / "results" / "cnn.json").read_text())
    rows = make_cnn_results().table(result).splitlines()[2:]
    for row in rows:
        _, name, mlp, cnn, _ = row.split("|")
        assert len(mlp.split(",")) == len(cnn.split(",")) == 3 or "timing" in name, row
