"""``--model cnn`` through the application: train, resume, evaluate, predict,
crossval, explore and the Keras converter, on a tiny 28x28 synthetic dataset.

LeNet-5 needs 28x28 images; the dense widths after its convolutions are
``--hidden`` (16 here, so that each run takes a second).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_synthetic_images, write_idx_folder
from PIL import Image

from backprop.app.commands import crossval, evaluate, predict, train
from backprop.app.explorer.session import Session
from backprop.app.photos.prepare import decode_image, prepare_image
from backprop.app.runs import load_checkpoint, load_model, save_checkpoint
from backprop.cnn import CNN
from backprop.data import load_pixels, to_inputs
from backprop.diagnostics import dead_fractions, layer_names
from backprop.errors import CheckpointError
from backprop.model import MLP


@pytest.fixture(scope="module")
def digits28(tmp_path_factory) -> Path:
    """Four IDX files of a learnable 28x28, 10-class dataset: 200 train, 50 test."""
    rng = np.random.default_rng(28)
    folder = tmp_path_factory.mktemp("digits28")
    splits = {
        s: make_synthetic_images(rng, n, 28) for s, n in (("train", 200), ("test", 50))
    }
    return write_idx_folder(folder, splits)


def cnn_argv(data: Path, out: Path, *extra: str) -> list[str]:
    """Flags of a one-second CNN run on ``data`` into ``out``."""
    argv = ["--model", "cnn", "--data-dir", str(data), "--out", str(out), "--quiet"]
    return [*argv, "--hidden", "16", "--batch-size", "40", "--lr", "0.003", *extra]


def run(main, argv: list[str]) -> tuple[int, str, str]:
    """A command's exit status, stdout and stderr (usage errors exit 2)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cnn_run(digits28, tmp_path_factory) -> Path:
    """A three-epoch CNN run's folder."""
    out = tmp_path_factory.mktemp("cnn") / "run"
    code, _, err = run(train.main, cnn_argv(digits28, out, "--epochs", "3"))
    assert code == 0, err
    return out


def test_a_cnn_run_records_its_model_and_loads_back_as_a_cnn(cnn_run, digits28):
    config = json.loads((cnn_run / "config.json").read_text())
    assert config["model"] == "cnn" and config["kernels"] == "fused"
    assert config["cnn"]["input_shape"] == [28, 28, 1]
    assert config["cnn"]["layers"][-3:] == [
        ["pool", 2, 2],
        ["dense", 16],
        ["dense", 10],
    ]
    model, ckpt, _ = load_model(cnn_run)
    assert isinstance(model, CNN) and model.sizes == [784, 16, 10]
    assert ckpt.params["conv1.w"].shape == (5, 5, 1, 6)
    assert ckpt.params["dense1.w"].shape == (400, 16)
    history = ckpt.history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    # the diagnostics name the layers by their parameters, convolutions first
    assert list(history[-1]["diagnostics"]) == ["conv1", "conv2", "dense1", "dense2"]
    assert "dead_fraction" in history[-1]["diagnostics"]["conv1"]
    assert "dead_fraction" not in history[-1]["diagnostics"]["dense2"]
    # the checkpoint's model scores the test set as the last epoch did
    _, (px, y) = load_pixels("mnist", str(digits28))
    accuracy = float((model.predict(to_inputs(px, "float32")) == y).mean())
    assert accuracy == pytest.approx(history[-1]["test_accuracy"])


def test_cnn_without_hidden_is_lenet5(digits28, tmp_path):
    argv = ["--model", "cnn", "--data-dir", str(digits28), "--dry-run"]
    code, out, _ = run(train.main, argv)
    assert code == 0 and "dry run" in out
    parser = train.build_parser()
    from backprop.app.commands.flags_and_errors import engine_config, parse_with_typed

    args, typed = parse_with_typed(parser, ["--model", "cnn"], ("hidden",))
    assert engine_config(args, typed).hidden == (120, 84)
    args, typed = parse_with_typed(
        parser, ["--model", "cnn", "--hidden", "8"], ("hidden",)
    )
    assert engine_config(args, typed).hidden == (8,)


@pytest.mark.parametrize(
    "argv, ema",
    [
        (["--model", "cnn"], 0.999),  # chosen for the CNN on the tune set
        (["--model", "cnn", "--ema", "0"], 0.0),
        (["--model", "cnn", "--ema", "0.9"], 0.9),
        (["--model", "mlp"], 0.0),  # the paper's network keeps its weights
    ],
)
def test_a_cnn_averages_its_weights_unless_told(argv, ema):
    from backprop.app.commands import crossval
    from backprop.app.commands.flags_and_errors import (
        MODEL_DEFAULTS,
        engine_config,
        parse_with_typed,
    )
    from backprop.app.runs.folders import RUN_DEFINING

    args, typed = parse_with_typed(train.build_parser(), argv, RUN_DEFINING)
    assert engine_config(args, typed).ema == ema
    args, typed = parse_with_typed(crossval.build_parser(), argv, MODEL_DEFAULTS)
    assert engine_config(args, typed).ema == ema


def test_resume_is_bit_identical_to_an_uninterrupted_run(digits28, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    assert run(train.main, cnn_argv(digits28, full, "--epochs", "2"))[0] == 0
    assert run(train.main, cnn_argv(digits28, part, "--epochs", "1"))[0] == 0
    code, _, err = run(train.main, ["--resume", str(part), "--epochs", "2", "--quiet"])
    assert code == 0, err
    a, b = load_checkpoint(full / "model.npz"), load_checkpoint(part / "model.npz")
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    for name in a.optimizer:
        np.testing.assert_array_equal(a.optimizer[name], b.optimizer[name])
    keys = ("train_loss", "test_loss", "test_accuracy")
    assert [[h[k] for k in keys] for h in a.history] == [
        [h[k] for k in keys] for h in b.history
    ]


def test_resume_refuses_another_model(cnn_run, tmp_path):
    argv = ["--resume", str(cnn_run), "--epochs", "4", "--model", "mlp"]
    code, _, err = run(train.main, [*argv, "--out", str(tmp_path / "x")])
    assert code == 1  # a checkpoint error, as for --hidden
    assert err.strip().splitlines()[-1].endswith("the run used --model cnn, not mlp")
    assert "Traceback" not in err


def test_fused_and_reference_kernels_train_a_cnn_alike(digits28, tmp_path):
    """``--kernels fused`` (ReLU and pooling fused) and ``reference`` write the
    same history and weights, bit for bit; ``auto`` takes the fused step
    without a line about kernels."""
    pytest.importorskip("numba", reason="the fused kernels need Numba")
    runs = {}
    for kernels in ("fused", "reference", "auto"):
        argv = cnn_argv(digits28, tmp_path / kernels, "--kernels", kernels)
        argv.remove("--quiet")
        code, out, err = run(train.main, argv)
        assert code == 0, err
        took = "reference" if kernels == "reference" else "fused"
        assert f"(float32, {took} kernels)" in out
        assert not [line for line in out.splitlines() if line.startswith("kernels")]
        runs[kernels] = load_checkpoint(tmp_path / kernels / "model.npz")
    for kernels in ("fused", "auto"):
        for name, value in runs["reference"].params.items():
            np.testing.assert_array_equal(runs[kernels].params[name], value)
        timeless = [
            [{k: v for k, v in h.items() if k != "seconds"} for h in r.history]
            for r in (runs[kernels], runs["reference"])
        ]
        assert timeless[0] == timeless[1]


def test_an_old_mlp_checkpoint_still_loads_and_resumes(synthetic_dir, tmp_path):
    out = tmp_path / "mlp"
    argv = ["--data-dir", str(synthetic_dir), "--out", str(out), "--quiet"]
    argv += ["--hidden", "8", "--epochs", "1"]
    assert run(train.main, argv)[0] == 0
    ckpt = load_checkpoint(out / "model.npz")
    del ckpt.config["model"]  # as checkpoints were before --model
    save_checkpoint(out / "model.npz", ckpt)
    model, _, _ = load_model(out)
    assert isinstance(model, MLP) and model.sizes == [64, 8, 10]
    code, _, err = run(train.main, ["--resume", str(out), "--epochs", "2", "--quiet"])
    assert code == 0, err
    assert len(load_checkpoint(out / "model.npz").history) == 2


def test_a_cnn_checkpoint_without_its_layers_is_refused(cnn_run, tmp_path):
    ckpt = load_checkpoint(cnn_run / "model.npz")
    del ckpt.config["cnn"]
    save_checkpoint(tmp_path / "model.npz", ckpt)
    with pytest.raises(CheckpointError, match="without its layers"):
        load_model(tmp_path / "model.npz")


def test_evaluate_scores_a_cnn_run(cnn_run, digits28, tmp_path):
    out = tmp_path / "ev"
    argv = [str(cnn_run), "--data-dir", str(digits28), "--out", str(out), "--quiet"]
    code, _, err = run(evaluate.main, argv)
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    model, ckpt, _ = load_model(cnn_run)
    assert report["test_accuracy"] == pytest.approx(ckpt.history[-1]["test_accuracy"])
    for name in ("weights.png", "confusion.png", "diagnostics.png"):
        assert (out / name).stat().st_size > 0


def digit_png(path: Path, digits: list[np.ndarray]) -> Path:
    """Dark digits on white paper, side by side, as a PNG."""
    gap = np.zeros((28, 14), np.uint8)  # (28, 14)
    ink = np.hstack([np.hstack([d.reshape(28, 28), gap]) for d in digits])
    page = np.pad(ink, 12)  # white margins once inverted
    Image.fromarray(255 - page).resize((page.shape[1] * 3, page.shape[0] * 3)).save(
        path
    )
    return path


def test_predict_reads_with_a_cnn(cnn_run, digits28, tmp_path):
    model, _, _ = load_model(cnn_run)
    _, (px, _) = load_pixels("mnist", str(digits28))
    one = digit_png(tmp_path / "one.png", [px[0]])
    code, out, err = run(predict.main, [str(cnn_run), str(one), "--json"])
    assert code == 0, err
    answer = json.loads(out)
    prepared = prepare_image(decode_image(one.read_bytes())).reshape(1, -1)
    probabilities = model.predict_proba(prepared)[0]  # (10,)
    assert answer["digit"] == int(probabilities.argmax())
    assert answer["probability"] == pytest.approx(float(probabilities.max()))
    _, (mnist, _) = load_pixels("mnist", None)  # real digits, apart on the page
    two = digit_png(tmp_path / "two.png", [mnist[0], mnist[1]])
    code, out, err = run(predict.main, [str(cnn_run), str(two), "--multi", "--json"])
    assert code == 0, err
    read = json.loads(out)
    assert len(read["digits"]) == 2 and len(read["number"]) == 2


def test_crossval_trains_cnns(digits28, tmp_path):
    argv = ["--model", "cnn", "--data-dir", str(digits28), "--hidden", "16"]
    argv += ["--epochs", "1", "--folds", "2", "--out", str(tmp_path / "cv"), "--quiet"]
    code, out, err = run(crossval.main, argv)
    assert code == 0, err
    results = json.loads((tmp_path / "cv" / "crossval.json").read_text())
    assert results["folds"] == 2 and len(results["fold_results"]) == 2
    assert results["config"]["model"] == "cnn"
    assert results["config"]["hidden"] == [16]


def test_the_explorer_loads_a_cnn_run_and_shows_its_feature_maps(cnn_run, digits28):
    session = Session.from_run(cnn_run)
    model, ckpt, _ = load_model(cnn_run)
    info = session.info()
    assert info["model"] == "cnn" and info["source"] == "run"
    assert info["epochs"] == len(ckpt.history) == 3
    assert info["conv"]["filters"] == 6 and info["conv"]["map"] == [28, 28]
    _, (px, y) = load_pixels("mnist", str(digits28))
    x = to_inputs(px[:1], "float32")[0]  # (784,): a test digit
    answer = session.predict(x)
    probabilities = model.predict_proba(x.reshape(1, -1))[0]  # (10,)
    assert answer["probabilities"] == probabilities.tolist()
    assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-6)
    assert np.shape(answer["maps"]) == (6, 784)
    assert np.shape(answer["kernels"]) == (6, 25)
    backward = session.backward(x, int(y[0]))
    assert [np.shape(u["grad_weights"]) for u in backward["units"]] == [(25,)] * 6
    stepped = session.step(x, int(y[0]))
    assert stepped["steps"] == 1 and stepped["loss"] < stepped["loss_before"]


def test_dead_filters_count_per_filter():
    model = CNN((("conv", 3, 4, "same"), ("pool", 2), ("dense", 5), ("dense", 3)))
    model.params["conv1.b"][:2] = -1e6  # filters 0 and 1 never fire
    x = np.random.default_rng(0).random((8, 784), dtype=np.float32)  # (8, 784)
    fractions = dead_fractions(model, x)
    assert layer_names(model) == ["conv1", "dense1", "dense2"]
    assert fractions.shape == (2,) and fractions[0] == 0.5


@pytest.mark.tf
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras's save, NumPy 2
def test_keras_export_and_import_of_a_cnn_run(cnn_run, tmp_path):
    pytest.importorskip("tensorflow")
    from tf_reference import convert

    keras_file, back = tmp_path / "cnn.keras", tmp_path / "back.npz"
    code, out, err = run(convert.main, ["export", str(cnn_run), str(keras_file)])
    assert code == 0 and "Keras CNN conv5x5x6same" in out, err
    code, out, err = run(convert.main, ["import", str(keras_file), str(back)])
    assert code == 0 and "engine CNN" in out, err
    model, _, _ = load_model(cnn_run)
    again, _, _ = load_model(back)
    assert isinstance(again, CNN) and again.layers == model.layers
    for name in model.params:
        np.testing.assert_array_equal(again.params[name], model.params[name])
