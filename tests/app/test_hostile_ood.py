"""Hostile ``ood/`` command lines: each refused in one line, before any work."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hostile import run_hostile, train_argv
from PIL import Image

from backprop.app.commands import train

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "ood"))
import measure  # noqa: E402


@pytest.fixture
def run_dir(synthetic_dir, tmp_path, capsys, monkeypatch):
    """A finished one-epoch run; measuring anything fails the test."""
    assert train.main(train_argv(synthetic_dir, tmp_path / "run")) == 0
    capsys.readouterr()

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured before the command line was checked")

    monkeypatch.setattr(measure, "measure", no_measuring)
    return tmp_path / "run"


def test_json_onto_the_checkpoint_is_refused(run_dir, tmp_path, capsys):
    run_hostile(
        measure.main,
        [str(run_dir), "--json", str(run_dir / "model.npz")],
        capsys,
        tmp_path,
        status=1,
        message=r"model\.npz: exists; pass --overwrite to replace it",
    )


def test_json_in_a_missing_folder_is_refused_first(run_dir, tmp_path, capsys):
    run_hostile(
        measure.main,
        [str(run_dir), "--json", str(tmp_path / "nodir" / "x.json")],
        capsys,
        tmp_path,
        status=1,
        message=r"x\.json: the folder .*nodir does not exist",
    )


def test_a_missing_run_or_an_image_as_the_run(run_dir, tmp_path, capsys):
    run_hostile(
        measure.main,
        [str(tmp_path / "nothing")],
        capsys,
        tmp_path,
        status=1,
        message=r"nothing: no such file or folder",
    )
    image = tmp_path / "seven.png"
    Image.new("L", (28, 28), 255).save(image)
    run_hostile(
        measure.main,
        [str(image)],
        capsys,
        tmp_path,
        status=1,
        message=r"seven\.png: not a readable backprop checkpoint",
    )


def test_a_run_without_history_is_one_line(run_dir, tmp_path, capsys):
    (run_dir / "history.json").unlink()
    run_hostile(
        measure.main,
        [str(run_dir)],
        capsys,
        tmp_path,
        status=1,
        message=r"run: no epochs in a history\.json beside its model",
    )


@pytest.mark.parametrize("limit", ["-700", "0"])
def test_a_limit_below_one_is_refused(run_dir, tmp_path, capsys, limit):
    run_hostile(
        measure.main,
        [str(run_dir), "--limit", limit],
        capsys,
        tmp_path,
        status=2,
        message=rf"--limit must be at least 1, got {limit}",
    )


def test_make_sets_keeps_the_committed_sets_without_overwrite(capsys, monkeypatch):
    import make_sets

    def no_building(name):
        raise AssertionError("built a set before refusing")

    monkeypatch.setattr(make_sets, "build", no_building)
    assert make_sets.main([]) == 1
    err = capsys.readouterr().err
    assert "ood/sets: holds the sets; pass --overwrite" in err and err.count("\n") == 1
