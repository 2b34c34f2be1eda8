"""``backprop export RUN --onnx FILE`` of a CNN run: onnxruntime gives the engine.

A ``--model cnn`` run (LeNet-5's convolutions, dense 32, 10) trains one epoch
on the first 3,000 MNIST training digits; its export, run by onnxruntime on
the 10,000 test digits, must give the same predictions and the engine's
float32 probabilities within 1e-6, or within twice the engine's own float32
rounding (its distance from the same weights in float64) where that is larger:
for this CNN it is, on a few digits. A float64 CNN (written with im2col and
``MatMul``, onnxruntime having no float64 ``Conv``) must agree to 1e-12 on
the first 2,000. TensorFlow's "same" padding with an even kernel or stride 2
puts the odd row at the bottom: the graph's explicit ``pads`` must say so,
and the other way round must be caught. ``predict`` on the file answers as on the run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_mnist_subset

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

from onnx_runs import digit_files, onnx_probabilities, quiet  # noqa: E402

from backprop.app.commands import export, predict, train  # noqa: E402
from backprop.app.onnx_graph import build_model  # noqa: E402
from backprop.app.runs import Checkpoint, load_model, save_checkpoint  # noqa: E402
from backprop.cnn import CNN  # noqa: E402
from backprop.data import load_mnist  # noqa: E402

TOLERANCE = 1e-6  # |p_onnx - p_engine| in float32, as for the MLP
TOLERANCE64 = 1e-12
CNN_OPS = {"Reshape", "Transpose", "Conv", "Relu", "MaxPool", "Flatten", "Gemm"}
# Even kernels and stride 2 on 28x28, 28x28, 7x7: TensorFlow pads 1+2, 0+1, 0+1.
ODD_PADS = (
    ("conv", 4, 6, "same", 1),
    ("conv", 3, 8, "same", 2),
    ("pool", 2, 2),
    ("conv", 2, 8, "same", 2),
    ("dense", 16),
    ("dense", 10),
)


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory) -> Path:
    """A CNN run trained for one epoch on 3,000 MNIST digits (about 90% accuracy)."""
    folder = write_mnist_subset(tmp_path_factory.mktemp("mnist3000"), 3000, 200)
    out = tmp_path_factory.mktemp("onnx-cnn") / "run"
    argv = ["--model", "cnn", "--hidden", "32", "--epochs", "1", "--batch-size", "50"]
    argv += ["--data-dir", str(folder), "--device", "cpu", "--out", str(out)]
    code, _, err = quiet(train.main, [*argv, "--quiet"])
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def cnn_onnx(cnn_run, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx-cnn-file") / "cnn.onnx"
    code, out, err = quiet(export.main, [str(cnn_run), "--onnx", str(path)])
    assert code == 0, err
    network = "CNN conv5x5x6same-pool2-conv5x5x16valid-pool2-dense32-dense10"
    assert f"wrote {path}" in out and f"{network} (mnist), float32" in out
    return path


def test_onnxruntime_gives_the_cnns_probabilities(cnn_run, cnn_onnx):
    _, (x_test, _) = load_mnist()  # float32 (10000, 784)
    model, ckpt, _ = load_model(cnn_run)
    assert isinstance(model, CNN)
    engine = model.predict_proba(x_test)  # (10000, 10) float32
    onnx_p = onnx_probabilities(cnn_onnx, x_test)  # (10000, 10)
    assert onnx_p.shape == engine.shape == (10000, 10)
    assert onnx_p.dtype == engine.dtype == np.float32
    assert float(engine.max(axis=1).mean()) > 0.5  # a trained model, not uniform
    # The same weights in float64: how far float32's rounding takes each answer.
    params64 = {name: value.astype(np.float64) for name, value in ckpt.params.items()}
    exact = CNN.from_params(params64, layers=model.layers).predict_proba(
        x_test.astype(np.float64)
    )  # (10000, 10)
    engine_error = float(np.abs(engine - exact).max())
    onnx_error = float(np.abs(onnx_p - exact).max())
    gap = float(np.abs(onnx_p - engine).max())
    same = int((onnx_p.argmax(axis=1) == engine.argmax(axis=1)).sum())
    over = int((np.abs(onnx_p - engine).max(axis=1) > TOLERANCE).sum())
    print(
        f"max |p_onnx - p_engine| = {gap:.3g} ({over} of 10000 digits over "
        f"{TOLERANCE:g}); predictions equal: {same} of 10000; from float64: "
        f"engine {engine_error:.3g}, onnxruntime {onnx_error:.3g}"
    )
    assert same == 10000
    # Both sum in float32 in different orders: the gap is float32's rounding,
    # which for this CNN's logits passes 1e-6 by itself (the engine's own).
    assert gap <= max(TOLERANCE, 2 * engine_error)
    assert onnx_error <= max(TOLERANCE, 2 * engine_error)


def test_the_cnn_graph_is_standard_and_keeps_the_weights(cnn_run, cnn_onnx):
    proto = onnx.load(str(cnn_onnx))
    onnx.checker.check_model(proto, full_check=True)
    ops = [n.op_type for n in proto.graph.node if n.op_type != "Constant"]
    assert set(ops) <= CNN_OPS | {"Softmax"}
    convolution = ["Transpose", "Conv", "Relu", "MaxPool"]  # the kernel, then NCHW
    assert ops == [
        *["Reshape", "Transpose"],  # (N, 784) -> (N, 28, 28, 1) -> (N, 1, 28, 28)
        *convolution,
        *convolution,
        *["Transpose", "Flatten"],  # (N, 16, 5, 5) -> (N, 5, 5, 16) -> (N, 400)
        *["Gemm", "Relu", "Gemm", "Softmax"],
    ]
    assert all(op.domain in ("", "ai.onnx") for op in proto.opset_import)
    assert [op.version for op in proto.opset_import] == [13]
    assert not any(a.name == "auto_pad" for n in proto.graph.node for a in n.attribute)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["network"].startswith("CNN conv5x5x6same-pool2-conv5x5x16valid")
    saved = json.loads((cnn_run / "config.json").read_text())
    assert json.loads(meta["config"]) == saved
    assert "(N, 784)" in meta["input"] and "28x28" in meta["input"]
    model, _, _ = load_model(cnn_run)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    assert sorted(weights) == sorted(model.params)
    for name, value in model.params.items():
        np.testing.assert_array_equal(weights[name], value)  # Keras layout, unchanged


def saved_cnn(folder: Path, layers, dtype: str, seed: int) -> CNN:
    """A CNN of ``layers`` with spread-out weights, saved as a run's checkpoint."""
    model = CNN(layers, seed=seed, dtype=dtype, init="he")
    for value in model.params.values():
        value *= 1.5  # logits 1.5**4 times He's: far from a uniform guess
    config = {"model": "cnn", "cnn": model.spec, "dtype": dtype}
    save_checkpoint(folder / "model.npz", Checkpoint(model.params, config=config))
    return model


def pads_of(proto: onnx.ModelProto) -> list[list[int]]:
    """Each ``Conv``'s pads, or each im2col ``Pad``'s (height, width) pads."""
    found = []
    constants = {
        n.output[0]: onnx.numpy_helper.to_array(n.attribute[0].t)
        for n in proto.graph.node
        if n.op_type == "Constant"
    }
    for n in proto.graph.node:
        if n.op_type == "Conv":
            pads = next(a for a in n.attribute if a.name == "pads")
            found.append(list(pads.ints))  # top, left, bottom, right
        elif n.op_type == "Pad":
            pads = constants[n.input[1]].tolist()  # N, C, H, W before; then after
            found.append([pads[2], pads[3], pads[6], pads[7]])
    return found


@pytest.mark.parametrize(
    ("dtype", "tolerance"), [("float32", TOLERANCE), ("float64", TOLERANCE64)]
)
def test_same_padding_puts_the_odd_row_after(dtype, tolerance, tmp_path):
    model = saved_cnn(tmp_path, ODD_PADS, dtype, seed=5)
    path = tmp_path / "odd.onnx"
    code, out, err = quiet(export.main, [str(tmp_path), "--onnx", str(path)])
    assert code == 0, err
    assert "conv4x4x6same-conv3x3x8sames2-pool2-conv2x2x8sames2" in out
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    # TensorFlow: pad_total // 2 before (top, left), the rest after
    assert pads_of(proto) == [[1, 1, 2, 2], [0, 0, 1, 1], [0, 0, 1, 1]]
    _, (x_test, _) = load_mnist()
    x = x_test[:1000].astype(dtype)  # (1000, 784)
    engine = model.predict_proba(x)  # (1000, 10)
    assert float(engine.max(axis=1).mean()) > 0.3  # not a uniform guess
    got = onnx_probabilities(path, x)
    assert got.dtype == np.dtype(dtype)
    gap = float(np.abs(got - engine).max())
    print(f"{dtype}: max |p_onnx - p_engine| = {gap:.3g}")
    assert gap <= tolerance
    assert (got.argmax(axis=1) == engine.argmax(axis=1)).all()
    # The padding the other way round (the odd row on top) is caught.
    config = {"model": "cnn", "cnn": model.spec}
    params = {name: np.asarray(value) for name, value in model.params.items()}
    flipped = build_model(params, "mnist", config)
    for n in flipped.graph.node:
        for a in n.attribute:
            if n.op_type == "Conv" and a.name == "pads":
                a.ints[:] = [a.ints[2], a.ints[3], a.ints[0], a.ints[1]]
            if n.op_type == "Constant" and n.output[0].endswith(".pads"):
                p = onnx.numpy_helper.to_array(a.t)[[4, 5, 6, 7, 0, 1, 2, 3]]
                a.t.CopyFrom(onnx.numpy_helper.from_array(p, n.output[0]))
    wrong = onnx_probabilities(flipped, x)
    assert float(np.abs(wrong - engine).max()) > 100 * TOLERANCE


def test_a_float64_cnn_run_gives_a_float64_graph(cnn_run, tmp_path):
    model, ckpt, _ = load_model(cnn_run)
    params = {name: value.astype(np.float64) for name, value in ckpt.params.items()}
    config = {**ckpt.config, "dtype": "float64"}
    save_checkpoint(tmp_path / "model.npz", Checkpoint(params, config=config))
    path = tmp_path / "cnn64.onnx"
    code, out, err = quiet(export.main, [str(tmp_path), "--onnx", str(path)])
    assert code == 0, err
    assert "float64" in out
    model64, _, _ = load_model(tmp_path)
    _, (x_test, _) = load_mnist()
    x = x_test[:2000].astype(np.float64)  # (2000, 784)
    got = onnx_probabilities(path, x)  # (2000, 10)
    engine = model64.predict_proba(x)  # (2000, 10)
    assert got.dtype == engine.dtype == np.float64
    gap = float(np.abs(got - engine).max())
    same = int((got.argmax(axis=1) == engine.argmax(axis=1)).sum())
    print(
        f"float64: max |p_onnx - p_engine| = {gap:.3g}; "
        f"predictions equal: {same} of 2000"
    )
    assert gap <= TOLERANCE64
    assert same == 2000


def test_predict_on_a_cnns_onnx_file_answers_as_on_the_run(cnn_run, cnn_onnx, tmp_path):
    pytest.importorskip("PIL", reason="predict reads images with Pillow")
    files = [str(p) for p in digit_files(tmp_path, 5)]
    run_code, run_out, run_err = quiet(predict.main, [str(cnn_run), *files, "--json"])
    onnx_code, onnx_out, onnx_err = quiet(
        predict.main, [str(cnn_onnx), *files, "--json"]
    )
    assert run_code == onnx_code == 0, run_err + onnx_err
    by_run = [json.loads(line) for line in run_out.splitlines()]
    by_onnx = [json.loads(line) for line in onnx_out.splitlines()]
    assert len(by_run) == len(by_onnx) == 5
    for one, other in zip(by_run, by_onnx):
        assert one["digit"] == other["digit"]
        assert one["runner_up"] == other["runner_up"]
        assert abs(one["probability"] - other["probability"]) <= TOLERANCE


def test_a_cnn_checkpoint_without_its_layers_is_one_line(cnn_run, tmp_path, capsys):
    from hostile import run_hostile

    _, ckpt, _ = load_model(cnn_run)
    config = {k: v for k, v in ckpt.config.items() if k != "cnn"}
    save_checkpoint(tmp_path / "model.npz", Checkpoint(ckpt.params, config=config))
    argv = [str(tmp_path), "--onnx", str(tmp_path / "m.onnx")]
    run_hostile(export.main, argv, capsys, tmp_path, status=1, message="config 'cnn'")
    assert not (tmp_path / "m.onnx").exists()
