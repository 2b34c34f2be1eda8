"""Hostile output folders: another run's, "", a file, locked, unwritable, full."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys

import pytest
from hostile import break_checkpoint_write, run_hostile, train_argv
from PIL import Image, ImageDraw

from backprop.app.commands import crossval, evaluate, predict, train
from backprop.app.runs import Checkpoint, load_checkpoint, save_checkpoint, write_json
from backprop.app.runs.files import remove_stale_temporaries
from backprop.model import MLP


@pytest.fixture
def run_dir(synthetic_dir, tmp_path, capsys):
    """A finished one-epoch run."""
    assert train.main(train_argv(synthetic_dir, tmp_path / "run")) == 0
    capsys.readouterr()
    return tmp_path / "run"


def test_out_holding_another_run_is_refused(run_dir, synthetic_dir, tmp_path, capsys):
    argv = train_argv(synthetic_dir, run_dir, "--seed", "7")
    run_hostile(
        train.main,
        argv,
        capsys,
        tmp_path,
        status=1,
        message=r"run: already holds model\.npz, config\.json, .*--overwrite",
    )
    before = (run_dir / "model.npz").read_bytes()
    assert train.main([*argv, "--overwrite"]) == 0
    assert (run_dir / "model.npz").read_bytes() != before
    assert load_checkpoint(run_dir / "model.npz").config["seed"] == 7


def test_resume_writes_into_its_own_folder(run_dir, tmp_path, capsys):
    resume = ["--resume", str(run_dir / "model.npz"), "--epochs", "2", "--quiet"]
    assert train.main(resume) == 0
    assert len(load_checkpoint(run_dir / "model.npz").history) == 2
    other = tmp_path / "other"
    other.mkdir()
    write_json(other / "config.json", {"a run": "of someone else"})
    run_hostile(
        train.main,
        [*resume[:2], "--epochs", "3", "--out", str(other)],
        capsys,
        tmp_path,
        status=1,
        message="other: already holds config.json of another run",
    )


def test_empty_out_is_refused(synthetic_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for command in (train.main, crossval.main):
        run_hostile(
            command,
            ["--data-dir", str(synthetic_dir), "--out", ""],
            capsys,
            tmp_path,
            status=2,
            message="--out: expected a folder, got an empty string",
        )


def test_out_that_is_a_file_or_under_one(synthetic_dir, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    for out, message in (
        (tmp_path / "notes.txt", "notes.txt: exists and is not a folder"),
        (tmp_path / "notes.txt" / "run", r"cannot create the folder \(Not a directory"),
    ):
        run_hostile(
            train.main,
            train_argv(synthetic_dir, out),
            capsys,
            tmp_path,
            status=1,
            message=message,
        )


def test_unwritable_out(synthetic_dir, tmp_path, capsys, monkeypatch):
    # As root, chmod cannot make a folder unwritable: the refusals are faked.
    real_open = os.open

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    def open_but_locks(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, *args, **kwargs)

    cv = ["--data-dir", str(synthetic_dir), "--folds", "2", "--out"]
    with monkeypatch.context() as patch:
        patch.setattr("pathlib.Path.mkdir", refuse)
        for command, argv in (
            (train.main, train_argv(synthetic_dir, tmp_path / "r")),
            (crossval.main, [*cv, str(tmp_path / "cv")]),
        ):
            run_hostile(
                command,
                argv,
                capsys,
                tmp_path,
                status=1,
                message=r"cannot create the folder \(Permission denied\)",
            )
    save_checkpoint(tmp_path / "m" / "model.npz", Checkpoint(MLP([64, 4, 10]).params))
    monkeypatch.setattr(os, "open", open_but_locks)
    for command, argv in (
        (train.main, train_argv(synthetic_dir, tmp_path)),
        (crossval.main, [*cv, str(tmp_path)]),
        (evaluate.main, [str(tmp_path / "m")]),
    ):
        run_hostile(
            command,
            argv,
            capsys,
            tmp_path,
            status=1,
            message=r"cannot write \(Read-only file system\)",
        )


def test_a_second_writer_fails_at_once(synthetic_dir, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from backprop.app.runs.lock import FolderLock; "
            "FolderLock(sys.argv[1]).acquire(); print('locked', flush=True); "
            "time.sleep(60)",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        run_hostile(
            train.main,
            train_argv(synthetic_dir, out),
            capsys,
            tmp_path,
            status=1,
            message=rf"run: another process \(pid {holder.pid}\) is writing this",
        )
    finally:
        holder.kill()
        holder.wait()
    assert train.main(train_argv(synthetic_dir, out)) == 0  # released with it
    assert not (out / ".lock").exists()


def test_full_disk_keeps_the_last_good_checkpoint(
    synthetic_dir, tmp_path, capsys, monkeypatch
):
    break_checkpoint_write(
        monkeypatch, 3, OSError(errno.ENOSPC, "No space left on device")
    )  # epoch 2's checkpoint
    out = tmp_path / "run"
    run_hostile(
        train.main,
        train_argv(synthetic_dir, out, "--epochs", "3"),
        capsys,
        tmp_path,
        status=1,
        message=r"model\.npz: cannot write \(No space left on device\); "
        r".*model\.npz holds the 1 finished epochs",
        new_files=True,
    )
    assert len(load_checkpoint(out / "model.npz").history) == 1
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "history.json",
        "model.npz",
    ]


def test_stale_temporaries_go_and_files_get_the_usual_mode(run_dir, capsys):
    stale = [
        run_dir / ".model.npz.k3j4h5g6.backprop-tmp.npz",
        run_dir / ".history.json.a1b2c3d4.tmp.json",
    ]
    for path in stale:
        path.write_bytes(b"left by a killed write")
    (run_dir / ".keep.txt").write_text("a user's file")
    assert train.main(["--resume", str(run_dir / "model.npz"), "--epochs", "2"]) == 0
    assert not any(p.exists() for p in stale) and (run_dir / ".keep.txt").exists()
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("model.npz", "config.json", "history.json", "report.txt"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o666 & ~umask
    assert remove_stale_temporaries(run_dir) == []


def test_crossval_refuses_its_out_before_training(
    run_dir, synthetic_dir, tmp_path, capsys, monkeypatch
):
    def never(*args, **kwargs):
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr(crossval, "cross_validate", never)
    run_hostile(
        crossval.main,
        ["--data-dir", str(synthetic_dir), "--out", str(run_dir), "--folds", "2"],
        capsys,
        tmp_path,
        status=1,
        message="already holds model.npz",
    )


def test_evaluate_into_another_runs_folder(run_dir, synthetic_dir, tmp_path, capsys):
    assert train.main(train_argv(synthetic_dir, tmp_path / "b", "--seed", "3")) == 0
    capsys.readouterr()
    run_hostile(
        evaluate.main,
        [str(run_dir), "--out", str(tmp_path / "b"), "--quiet"],
        capsys,
        tmp_path,
        status=1,
        message=r"b: already holds report\.txt of another run",
    )
    run_hostile(
        evaluate.main,
        [str(run_dir), "--examples", "100000"],
        capsys,
        tmp_path,
        status=2,
        message="--examples must be between 1 and 400",
    )


def test_predict_show_keeps_existing_pictures(tmp_path, capsys):
    model = tmp_path / "model.npz"
    save_checkpoint(model, Checkpoint(MLP([784, 8, 10]).params))
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        img = Image.new("L", (40, 40), 255)
        ImageDraw.Draw(img).line((20, 5, 20, 35), fill=0, width=4)
        img.save(tmp_path / folder / "one.png")
    (tmp_path / "a" / "one.prepared.png").write_bytes(b"someone's picture")
    argv = [str(model), str(tmp_path / "a" / "one.png"), "--show"]
    run_hostile(
        predict.main,
        argv,
        capsys,
        tmp_path,
        status=1,
        message=r"one\.prepared\.png: exists; pass --overwrite",
    )
    shown = ["--show-dir", str(tmp_path / "s")]
    line = run_hostile(
        predict.main,
        [*argv[:2], str(tmp_path / "b" / "one.png"), *argv[2:], *shown],
        capsys,
        tmp_path,
        status=1,
        message="already written for another image of the same name",
        new_files=True,
    )
    assert line.startswith(f"error: {tmp_path / 's' / 'one.prepared.png'}")
    assert predict.main([*argv, "--overwrite"]) == 0
    assert (tmp_path / "a" / "one.prepared.png").read_bytes()[:4] == b"\x89PNG"
