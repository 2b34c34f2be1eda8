"""Hostile file systems: a ``.lock`` or a target that is a link, users' hidden files.

A run folder received as a tar can hold symbolic links where the commands
write. None of them may redirect a write: the lock refuses a link, and every
file is written as a new temporary and renamed over its target. Only the
project's own temporaries are ever deleted.
"""

from __future__ import annotations

import os

import pytest
from hostile import run_hostile, train_argv

from backprop.app.commands import evaluate, train
from backprop.app.runs import atomic_write, write_json
from backprop.app.runs.files import remove_stale_temporaries
from backprop.app.runs.lock import FolderLock
from backprop.errors import OutputError


@pytest.fixture
def run_dir(synthetic_dir, tmp_path, capsys):
    """A finished one-epoch run."""
    assert train.main(train_argv(synthetic_dir, tmp_path / "run")) == 0
    capsys.readouterr()
    return tmp_path / "run"


def test_a_lock_that_is_a_link_is_refused_and_its_target_kept(
    run_dir, synthetic_dir, tmp_path, capsys
):
    victim = tmp_path / "thesis.txt"
    victim.write_text("years of work\n")
    (run_dir / ".lock").symlink_to(victim)
    run_hostile(
        evaluate.main,
        [str(run_dir), "--quiet"],
        capsys,
        tmp_path,
        status=1,
        message=r"run/\.lock: a symbolic link, not a lock file",
    )
    out = tmp_path / "new"
    out.mkdir()
    (out / ".lock").symlink_to(victim)
    run_hostile(
        train.main,
        train_argv(synthetic_dir, out),
        capsys,
        tmp_path,
        status=1,
        message=r"new/\.lock: a symbolic link",
    )
    assert victim.read_text() == "years of work\n"
    assert (out / ".lock").is_symlink()  # left as it was, not removed


def test_a_dangling_lock_link_creates_nothing(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".lock").symlink_to(tmp_path / "created-through-the-link")
    with pytest.raises(OutputError, match="a symbolic link"):
        FolderLock(folder).acquire()
    assert not (tmp_path / "created-through-the-link").exists()


def test_a_lock_that_is_a_fifo_is_refused(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    os.mkfifo(folder / ".lock")
    with pytest.raises(OutputError, match="not a regular file"):
        FolderLock(folder).acquire()


def test_a_link_in_the_targets_place_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim.json"
    victim.write_text("kept\n")
    (tmp_path / "run").mkdir()
    target = tmp_path / "run" / "report.json"
    target.symlink_to(victim)
    write_json(target, {"a": 1})
    assert victim.read_text() == "kept\n"
    assert not target.is_symlink() and target.read_text() == '{\n  "a": 1\n}\n'


def test_writes_go_through_the_descriptor_that_created_the_file(tmp_path, monkeypatch):
    """No name is opened for writing: a link swapped in cannot catch the bytes."""
    import builtins

    real_open = builtins.open

    def no_open_for_writing(file, mode="r", *args, **kwargs):
        assert not isinstance(file, str | os.PathLike) or "w" not in mode, file
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_open_for_writing)
    atomic_write(tmp_path / "model.npz", lambda f: f.write(b"bytes"))
    assert (tmp_path / "model.npz").read_bytes() == b"bytes"


def test_only_the_projects_own_temporaries_are_cleared(run_dir, capsys):
    users = [
        ".notes.txt.20250101",
        ".model.npz.backup_1",
        ".model.npz.k3j4h5g6",
        ".report.txt.abcdefgh.tmp.json",  # a suffix that is not the target's
        ".keep.txt",
    ]
    ours = [
        ".model.npz.k3j4h5g6.backprop-tmp.npz",
        ".history.json.a1b2c3d4.tmp.json",  # written by earlier versions
    ]
    for name in users + ours:
        (run_dir / name).write_text("x")
    assert train.main(["--resume", str(run_dir / "model.npz"), "--epochs", "2"]) == 0
    capsys.readouterr()
    assert all((run_dir / name).exists() for name in users)
    assert not any((run_dir / name).exists() for name in ours)
    assert remove_stale_temporaries(run_dir) == []


def test_the_temporaries_written_are_the_ones_cleared(tmp_path, monkeypatch):
    seen = []

    def write(f):
        seen.append(os.listdir(tmp_path))
        f.write(b"x")

    atomic_write(tmp_path / "weights.png", write)
    (name,) = [n for n in seen[0] if n != "weights.png"]
    assert name.startswith(".weights.png.") and name.endswith(".backprop-tmp.png")
    (tmp_path / name).write_bytes(b"left by a killed write")
    assert remove_stale_temporaries(tmp_path) == [tmp_path / name]
