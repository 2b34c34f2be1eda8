"""Tests of backprop.evaluate, backprop.plots and train --plots."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backprop.app.commands import evaluate as ev
from backprop.app.commands import train
from backprop.app.config import EngineConfig
from backprop.app.evaluation.outputs import pick_examples
from backprop.app.runs import Checkpoint, library_versions, load_model, save_checkpoint
from backprop.data import CLASS_NAMES, FASHION_MNIST_DIR, load_dataset, load_pixels
from backprop.loop import loss_and_accuracy, train_epoch
from backprop.model import MLP
from backprop.optim import Adam

PICTURES = ("curves.png", "confusion.png", "correct.png", "mistakes.png", "weights.png")


def quick_run(folder: Path, dataset: str, n_train: int = 6000, epochs: int = 2) -> Path:
    """A run folder like train's, from a small MLP trained on a slice of a dataset.

    Much faster than a full run, and its model makes mistakes to report.
    """
    (x, y), (x_test, y_test) = load_dataset(dataset)
    (pixels, _), _ = load_pixels(dataset)
    rng = np.random.default_rng(0)
    model = MLP([x.shape[1], 32, 10], rng=rng)
    opt = Adam(lr=1e-3)
    history = []
    for epoch in range(1, epochs + 1):
        loss, acc = train_epoch(
            model, opt, pixels[:n_train], y[:n_train], 128, rng, epoch=epoch
        )
        test_loss, test_acc = loss_and_accuracy(model, x_test, y_test)
        history.append(
            {
                "epoch": epoch,
                "train_loss": loss,
                "train_accuracy": acc,
                "test_loss": test_loss,
                "test_accuracy": test_acc,
                "seconds": 0.0,
            }
        )
    config = {
        **dataclasses.asdict(
            EngineConfig(epochs=epochs, dataset=dataset, hidden=(32,))
        ),
        "sizes": model.sizes,
    }
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        folder / "model.npz",
        Checkpoint(
            model.params,
            opt.state_dict(),
            rng.bit_generator.state,
            config,
            history,
            library_versions(),
        ),
    )
    (folder / "history.json").write_text(json.dumps(history))
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """ev.main's exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = ev.main(argv)
    return rc, out.getvalue(), err.getvalue()


def assert_png(path: Path, min_side: int = 200, max_side: int = 4000) -> None:
    assert path.is_file(), f"{path.name} missing"
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG"
        width, height = img.size
        assert min_side <= width <= max_side and min_side <= height <= max_side
        pixels = np.asarray(img.convert("L"))
    assert pixels.std() > 5, f"{path.name} looks blank"


def report_rows(text: str) -> dict[str, list[float]]:
    """Parse report.txt: row name -> its numbers."""
    rows = {}
    for line in text.splitlines():
        tokens = line.split()
        if not tokens or tokens[0] == "precision":
            continue
        width = 2 if tokens[0] == "accuracy" else 4  # accuracy: value, support
        rows[" ".join(tokens[:-width])] = [float(t) for t in tokens[-width:]]
    return rows


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory) -> Path:
    return quick_run(tmp_path_factory.mktemp("mnist") / "run", "mnist")


@pytest.fixture(scope="module")
def mnist_eval(mnist_run) -> tuple[Path, str]:
    """Evaluate the run once, into its own folder (the default)."""
    rc, out, err = run_main([str(mnist_run)])
    assert rc == 0, err
    return mnist_run, out


def test_writes_valid_pictures(mnist_eval):
    folder, _ = mnist_eval
    for name in PICTURES:
        assert_png(folder / name)


def test_prints_headline_next_to_paper(mnist_eval):
    folder, out = mnist_eval
    result = json.loads((folder / "report.json").read_text())
    last = out.strip().splitlines()[-1]
    assert f"test accuracy {result['test_accuracy']:.4f} (paper 0.976)" in last
    assert f"test loss {result['test_loss']:.4f} (paper 0.105)" in last


def test_report_matches_scikit_learn(mnist_run, mnist_eval):
    skm = pytest.importorskip("sklearn.metrics")
    folder, _ = mnist_eval
    model, _, _ = load_model(mnist_run)
    _, (x_test, y_test) = load_dataset("mnist")
    y_pred = model.predict(x_test)
    names = CLASS_NAMES["mnist"]
    expected = skm.classification_report(
        y_test,
        y_pred,
        labels=list(range(10)),
        target_names=names,
        output_dict=True,
        zero_division=0,
    )
    result = json.loads((folder / "report.json").read_text())
    report = result["report"]
    assert list(report) == list(expected)
    for key, value in expected.items():
        if isinstance(value, dict):
            assert set(report[key]) == set(value)
            for metric, number in value.items():
                assert report[key][metric] == pytest.approx(number, abs=1e-12)
        else:
            assert report[key] == pytest.approx(value, abs=1e-12)
    assert report["accuracy"] < 1.0  # the quick model makes mistakes to count
    assert result["test_accuracy"] == pytest.approx(skm.accuracy_score(y_test, y_pred))
    assert (
        result["confusion_matrix"]
        == skm.confusion_matrix(y_test, y_pred, labels=list(range(10))).tolist()
    )
    # report.txt: the same numbers, rounded to 4 digits
    rows = report_rows((folder / "report.txt").read_text())
    assert rows["accuracy"] == [
        pytest.approx(expected["accuracy"], abs=5.1e-5),
        len(y_test),
    ]
    for key in [*names, "macro avg", "weighted avg"]:
        e = expected[key]
        assert rows[key][:3] == pytest.approx(
            [e["precision"], e["recall"], e["f1-score"]], abs=5.1e-5
        )
        assert rows[key][3] == e["support"]


def test_pick_examples_sorts_mistakes_by_confidence():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 10, 500)
    y_pred = np.where(rng.random(500) < 0.3, rng.integers(0, 10, 500), y_true)
    confidence = rng.random(500)
    correct, mistakes = pick_examples(y_true, y_pred, confidence, 25)
    assert len(correct) == 25 and np.all(y_true[correct] == y_pred[correct])
    assert np.all(np.diff(correct) > 0)  # test order
    wrong = np.flatnonzero(y_true != y_pred)
    assert len(mistakes) == min(25, len(wrong))
    assert np.all(y_true[mistakes] != y_pred[mistakes])
    assert np.all(np.diff(confidence[mistakes]) <= 0)
    assert confidence[mistakes[-1]] >= np.sort(confidence[wrong])[::-1][24]


def test_out_folder_and_model_file(mnist_run, tmp_path):
    rc, out, err = run_main([str(mnist_run / "model.npz"), "--out", str(tmp_path)])
    assert rc == 0, err
    for name in (*PICTURES, "report.txt", "report.json"):
        assert (tmp_path / name).is_file()


def test_run_without_history_skips_curves(mnist_run, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(mnist_run / "model.npz", folder / "model.npz")
    rc, out, err = run_main([str(folder), "--quiet"])
    assert rc == 0, err
    assert "curves.png skipped" in err and err.count("\n") == 1
    assert not (folder / "curves.png").exists()
    for name in PICTURES[1:]:
        assert_png(folder / name)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a checkpoint", "not a readable backprop checkpoint"),
        (None, "not a backprop checkpoint"),
    ],
)
def test_model_that_is_not_ours(tmp_path, content, message):
    path = tmp_path / "model.npz"
    if content is None:
        np.savez(path, weights=np.zeros(3))
    else:
        path.write_bytes(content)
    rc, out, err = run_main([str(path)])
    assert rc == 1
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1


def test_folder_without_model(tmp_path):
    rc, _, err = run_main([str(tmp_path)])
    assert rc == 1 and "no model.npz" in err and err.count("\n") == 1


def test_bad_history_is_an_error(mnist_run, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(mnist_run / "model.npz", folder / "model.npz")
    (folder / "history.json").write_text("{not json")
    rc, _, err = run_main([str(folder)])
    assert rc == 1 and "history.json" in err and err.count("\n") == 1


def test_history_with_a_dict_for_a_number(synthetic_dir, tmp_path, capsys):
    folder = tmp_path / "run"
    argv = ["--data-dir", str(synthetic_dir), "--out", str(folder), "--quiet"]
    assert train.main([*argv, "--epochs", "2", "--hidden", "4"]) == 0
    history = json.loads((folder / "history.json").read_text())
    history[1]["test_accuracy"] = {"value": 0.5}
    (folder / "history.json").write_text(json.dumps(history))
    capsys.readouterr()
    assert ev.main([str(folder), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "history.json: epoch 2's test_accuracy is a dict, not a number" in err


def test_train_plots_flag(synthetic_dir, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--data-dir", str(synthetic_dir), "--epochs", "2", "--device", "cpu"]
    rc = train.main([*argv, "--out", str(out), "--quiet", "--plots"])
    assert rc == 0
    assert "test accuracy" in capsys.readouterr().out
    for name in PICTURES:
        assert_png(out / name, min_side=150)
    result = json.loads((out / "report.json").read_text())
    history = json.loads((out / "history.json").read_text())
    assert result["test_accuracy"] == pytest.approx(history[-1]["test_accuracy"])
    assert result["test_loss"] == pytest.approx(history[-1]["test_loss"], rel=1e-5)
    assert np.sum(result["confusion_matrix"]) == 100  # the synthetic test set


@pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(), reason="Fashion-MNIST is not installed"
)
def test_fashion_mnist_class_names(tmp_path):
    folder = quick_run(tmp_path / "run", "fashion-mnist", n_train=3000, epochs=1)
    rc, out, err = run_main([str(folder)])
    assert rc == 0, err
    names = CLASS_NAMES["fashion-mnist"]
    result = json.loads((folder / "report.json").read_text())
    assert result["class_names"] == names
    assert list(result["report"])[:10] == names
    rows = report_rows((folder / "report.txt").read_text())
    assert {"Ankle boot", "T-shirt/top"} <= set(rows)
    assert "paper" not in out.strip().splitlines()[-1]
    for name in PICTURES:
        assert_png(folder / name)


def test_plots_do_not_import_matplotlib_on_import():
    code = (
        "import sys, backprop, backprop.evaluate, backprop.predict, "
        "backprop.crossval, backprop.app.evaluation.plots, backprop.train; "
        "print('matplotlib' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
