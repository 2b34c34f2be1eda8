"""Tampered checkpoints, and the guard that keeps only finite epochs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hostile import break_checkpoint_write, run_hostile, train_argv

from backprop.app import trainer
from backprop.app.commands import evaluate, train
from backprop.app.runs import load_checkpoint, write_json
from backprop.errors import OutputError


def meta_edit(edit):
    """A change to the checkpoint's JSON metadata."""

    def change(arrays):
        meta = json.loads(str(arrays["meta"]))
        meta = edit(meta)
        arrays["meta"] = np.array(json.dumps(meta))

    return change


def config_edit(key, value):
    def edit(meta):
        meta["config"][key] = value
        return meta

    return meta_edit(edit)


def put(key, value):
    def change(arrays):
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value

    return change


def stepped_weights(arrays):
    """Give a run without ``--ema`` the ``w.<name>`` fields of one with it."""
    for key in [k for k in arrays if k.startswith("param/")]:
        arrays[f"optim/w.{key[6:]}"] = arrays[key].copy()


TAMPERED = {
    "meta-list": (meta_edit(lambda m: [m]), "its metadata is a list, not an object"),
    "config-str": (
        meta_edit(lambda m: {**m, "config": "x"}),
        "metadata field 'config' is a str",
    ),
    "history-nan": (
        meta_edit(lambda m: {**m, "history": [{**m["history"][0], "test_loss": None}]}),
        "history entry 1 is not epoch 1 with finite",
    ),
    "no-t": (put("optim/t", None), "optimizer step count t is missing"),
    "float-t": (put("optim/t", np.array(5.0)), r"t is float64 \(\)"),
    "no-v": (put("optim/v.dense2.b", None), "optimizer fields missing: v.dense2.b"),
    "odd-field": (put("optim/x.dense1.w", np.zeros(3)), "unexpected: x.dense1.w"),
    "some-stepped-weights": (  # --ema's w.<name>: all of them or none
        put("optim/w.dense1.w", np.zeros((64, 4), np.float32)),
        "optimizer fields missing: w.dense1.b, w.dense2.b, w.dense2.w",
    ),
    "ema-without-stepped-weights": (  # would restart the average at step 0
        config_edit("ema", 0.9),
        "the run used --ema 0.9, but its checkpoint holds no weights Adam steps",
    ),
    "stepped-weights-without-ema": (  # would resume from the average
        stepped_weights,
        "the run used --ema 0.0, but its checkpoint holds weights Adam steps",
    ),
    "moment-shape": (
        put("optim/m.dense1.w", np.zeros(3, np.float32)),
        r"optimizer m.dense1.w is float32 \(3,\), but its parameter is float32 \(64, 4",
    ),
    "negative-v": (
        put("optim/v.dense1.b", -np.ones(4, np.float32)),
        "v.dense1.b holds invalid values",
    ),
    "scalar-weight": (
        put("param/dense1.w", np.array(1.0, np.float32)),
        r"parameter dense1.w is float32 \(\); expected float32 or float64",
    ),
    "int-weight": (put("param/dense1.b", np.zeros(4, np.int64)), "dense1.b is int64"),
    "nan-weight": (
        put("param/dense2.b", np.full(10, np.nan, np.float32)),
        "parameter dense2.b holds NaN or infinity",
    ),
    "bias-shape": (
        lambda arrays: [
            put(f"{kind}dense1.b", np.zeros(5, np.float32))(arrays)
            for kind in ("param/", "optim/m.", "optim/v.")
        ],
        r"dense1: weight \(64, 4\) and bias \(5,\) do not follow",
    ),
    "rng": (
        meta_edit(lambda m: {**m, "rng_state": {"bit_generator": "PCG64"}}),
        "random generator state cannot be restored",
    ),
    "hidden-str": (config_edit("hidden", "wide"), "its config holds hidden = 'wide'"),
    "adam-mode": (config_edit("adam", "nadam"), "its config holds adam = 'nadam'"),
    "zero-batch": (config_edit("batch_size", 0), "out of range: --batch-size must be"),
    "t-mismatch": (
        put("optim/t", np.array(99)),
        "Adam's step count is 99, but 1 epochs",
    ),
}
ON_LOAD = {
    "meta-list",
    "config-str",
    "history-nan",
    "no-t",
    "float-t",
    "no-v",
    "odd-field",
    "some-stepped-weights",
    "moment-shape",
    "negative-v",
    "scalar-weight",
    "int-weight",
    "nan-weight",
    "bias-shape",
}


@pytest.fixture
def run_dir(synthetic_dir, tmp_path, capsys):
    assert train.main(train_argv(synthetic_dir, tmp_path / "run")) == 0
    capsys.readouterr()
    return tmp_path / "run"


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampered_checkpoints(run_dir, tmp_path, capsys, case):
    change, message = TAMPERED[case]
    path = run_dir / "model.npz"
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    np.savez(path, **arrays)
    resume = ["--resume", str(path), "--epochs", "2"]
    run_hostile(train.main, resume, capsys, tmp_path, status=1, message=message)
    if case in ON_LOAD:  # what every reader meets, not only a resume
        argv = [str(run_dir), "--quiet"]
        run_hostile(evaluate.main, argv, capsys, tmp_path, status=1, message=message)


def test_an_npy_renamed_npz(tmp_path, capsys):
    np.save(tmp_path / "weights.npy", np.zeros((3, 3)))
    (tmp_path / "weights.npy").rename(tmp_path / "model.npz")
    run_hostile(
        train.main,
        ["--resume", str(tmp_path / "model.npz")],
        capsys,
        tmp_path,
        status=1,
        message=r"model\.npz: one \.npy array, not a checkpoint",
    )


def blow_up(monkeypatch, at_epoch, poison):
    """Make ``trainer.train_epoch`` leave broken weights after epoch ``at_epoch``."""
    real = trainer.train_epoch

    def epoch(model, *args, epoch=1, **kwargs):
        result = real(model, *args, epoch=epoch, **kwargs)
        if epoch == at_epoch:
            poison(model)
        return result

    monkeypatch.setattr(trainer, "train_epoch", epoch)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflows are the point
@pytest.mark.parametrize(
    "poison, message",
    [
        (  # finite weights whose logits overflow
            lambda m: [m.params[f"dense{i}.w"].__imul__(1e30) for i in (1, 2)],
            "test loss is nan",
        ),
        (
            lambda m: m.params["dense2.b"].__setitem__(0, np.inf),
            "NaN or infinite values in the weights",
        ),
    ],
    ids=["huge-but-finite", "infinite"],
)
def test_only_finite_epochs_are_kept(
    synthetic_dir, tmp_path, capsys, monkeypatch, poison, message
):
    blow_up(monkeypatch, 2, poison)
    out = tmp_path / "run"
    run_hostile(
        train.main,
        train_argv(synthetic_dir, out, "--epochs", "3"),
        capsys,
        tmp_path,
        status=1,
        message=rf"epoch 2: {message}; training stopped; .*run/model\.npz keeps "
        r"the last good epoch \(1\)",
        new_files=True,
    )
    ckpt = load_checkpoint(out / "model.npz")
    assert len(ckpt.history) == 1
    assert all(np.isfinite(p).all() for p in ckpt.params.values())
    strict = json.loads((out / "history.json").read_text(), parse_constant=pytest.fail)
    assert [r["epoch"] for r in strict] == [1]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_resume_into_a_new_folder_names_the_file_it_wrote(
    run_dir, tmp_path, capsys, monkeypatch
):
    blow_up(monkeypatch, 2, lambda m: m.params["dense1.w"].__imul__(np.inf))
    new = tmp_path / "new"
    run_hostile(
        train.main,
        ["--resume", str(run_dir / "model.npz"), "--epochs", "3", "--out", str(new)],
        capsys,
        tmp_path,
        status=1,
        message=rf"{new / 'model.npz'} keeps the last good epoch \(1\)",
        new_files=True,
    )
    assert len(load_checkpoint(new / "model.npz").history) == 1


def test_ctrl_c_in_the_checkpoint_write_tells_the_truth(
    synthetic_dir, tmp_path, capsys, monkeypatch
):
    break_checkpoint_write(monkeypatch, 3, KeyboardInterrupt)  # epoch 2's checkpoint
    out = tmp_path / "run"
    run_hostile(
        train.main,
        train_argv(synthetic_dir, out, "--epochs", "3"),
        capsys,
        tmp_path,
        status=130,
        message=r"interrupted in epoch 2; .*model\.npz holds the 1 finished epochs "
        r"\(continue with --resume",
        new_files=True,
    )
    assert len(load_checkpoint(out / "model.npz").history) == 1
    assert len(json.loads((out / "history.json").read_text())) == 1
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "history.json",
        "model.npz",
    ]


def test_history_json_is_strict(tmp_path):
    with pytest.raises(OutputError, match=r"\[0\]\['test_loss'\] = nan is not a"):
        write_json(tmp_path / "history.json", [{"test_loss": float("nan")}])
    assert not list(tmp_path.iterdir())
