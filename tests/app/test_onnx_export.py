"""``backprop export RUN --onnx FILE``: the graph, run in onnxruntime, is the engine.

A model trained for one epoch on the bundled MNIST is exported; onnxruntime
runs the file on the 10,000 test digits and must give the engine's float32
probabilities within 1e-6 and the same predictions, from a graph of standard
operators only. ``predict`` on the file answers as on the run. Hostile
inputs get one line each.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

from hostile import ROOT, run_hostile  # noqa: E402
from onnx_runs import digit_files, onnx_probabilities, quiet  # noqa: E402

from backprop.app.commands import export, predict, train  # noqa: E402
from backprop.app.onnx_graph import INPUT, OUTPUT  # noqa: E402
from backprop.app.runs import Checkpoint, load_model, save_checkpoint  # noqa: E402
from backprop.data import load_mnist  # noqa: E402
from backprop.model import MLP  # noqa: E402

STANDARD_OPS = {"Gemm", "MatMul", "Add", "Relu", "Softmax"}
TOLERANCE = 1e-6  # the bound on |p_onnx - p_engine|, float32


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run trained for one epoch on the bundled MNIST (about 91% test accuracy)."""
    out = tmp_path_factory.mktemp("onnx") / "run"
    argv = ["--epochs", "1", "--hidden", "32", "--device", "cpu", "--out", str(out)]
    assert quiet(train.main, [*argv, "--quiet"])[0] == 0
    return out


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx-file") / "digits.onnx"
    code, out, err = quiet(export.main, [str(trained), "--onnx", str(path)])
    assert code == 0, err
    assert f"wrote {path}" in out and "MLP 784-32-10 (mnist), float32" in out
    return path


def test_onnxruntime_gives_the_engines_probabilities(trained, exported):
    _, (x_test, _) = load_mnist()  # float32 (10000, 784)
    model, _, _ = load_model(trained)
    engine = model.predict_proba(x_test)  # (10000, 10) float32
    onnx_p = onnx_probabilities(exported, x_test)  # (10000, 10)
    assert onnx_p.shape == engine.shape == (10000, 10)
    assert onnx_p.dtype == engine.dtype == np.float32
    gap = float(np.abs(onnx_p - engine).max())
    same = int((onnx_p.argmax(axis=1) == engine.argmax(axis=1)).sum())
    print(f"max |p_onnx - p_engine| = {gap:.3g}; predictions equal: {same} of 10000")
    assert gap <= TOLERANCE
    assert same == 10000


def test_the_graph_is_standard_and_documents_its_input(trained, exported):
    proto = onnx.load(str(exported))
    onnx.checker.check_model(proto, full_check=True)
    assert {node.op_type for node in proto.graph.node} <= STANDARD_OPS
    assert [node.op_type for node in proto.graph.node] == [
        "Gemm",
        "Relu",
        "Gemm",
        "Softmax",
    ]
    assert all(op.domain in ("", "ai.onnx") for op in proto.opset_import)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["class_names"]) == [str(k) for k in range(10)]
    assert meta["dataset"] == "mnist"
    saved = json.loads((trained / "config.json").read_text())
    assert json.loads(meta["config"]) == saved
    for words in ("784", "[0, 1]", "28x28", "white", "centre of mass", "predict"):
        assert words in meta["input"], words
    # The weights went in unchanged, under the engine's names.
    model, _, _ = load_model(trained)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    assert sorted(weights) == sorted(model.params)
    for name, value in model.params.items():
        np.testing.assert_array_equal(weights[name], value)


def test_a_float64_run_gives_a_float64_graph(tmp_path):
    model = MLP([784, 8, 8, 10], seed=3, dtype="float64")
    rng = np.random.default_rng(0)
    for value in model.params.values():
        value[...] = rng.normal(0, 0.3, value.shape)
    save_checkpoint(tmp_path / "model.npz", Checkpoint(model.params, config={}))
    path = tmp_path / "m.onnx"
    assert quiet(export.main, [str(tmp_path), "--onnx", str(path)])[0] == 0
    x = rng.random((50, 784))  # (50, 784) float64
    got = onnx_probabilities(path, x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, model.predict_proba(x), rtol=0, atol=1e-12)


def test_predict_on_the_onnx_file_answers_as_on_the_run(trained, exported, tmp_path):
    pytest.importorskip("PIL", reason="predict reads images with Pillow")
    files = [str(p) for p in digit_files(tmp_path, 5)]
    page = str(ROOT / "docs" / "figures" / "number-page.png")
    for extra, lines in (([*files, "--json"], 5), ([page, "--multi", "--json"], 1)):
        run_code, run_out, run_err = quiet(predict.main, [str(trained), *extra])
        onnx_code, onnx_out, onnx_err = quiet(predict.main, [str(exported), *extra])
        assert run_code == onnx_code == 0, run_err + onnx_err
        by_run = [json.loads(line) for line in run_out.splitlines()]
        by_onnx = [json.loads(line) for line in onnx_out.splitlines()]
        assert len(by_run) == len(by_onnx) == lines
        for a, b in zip(by_run, by_onnx):
            for one, other in zip(a.get("digits", [a]), b.get("digits", [b])):
                assert one["digit"] == other["digit"]
                assert one["runner_up"] == other["runner_up"]
                assert abs(one["probability"] - other["probability"]) <= TOLERANCE


# Hostile inputs: one line each, no traceback, nothing the user had changed.


def test_missing_run(tmp_path, capsys):
    argv = [str(tmp_path / "nowhere"), "--onnx", str(tmp_path / "m.onnx")]
    run_hostile(export.main, argv, capsys, tmp_path, status=1, message="no such file")
    assert not (tmp_path / "m.onnx").exists()


def test_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a run")
    argv = [str(tmp_path), "--onnx", str(tmp_path / "m.onnx")]
    run_hostile(export.main, argv, capsys, tmp_path, status=1, message="no model.npz")


def test_a_damaged_checkpoint(tmp_path, capsys):
    (tmp_path / "model.npz").write_bytes(b"PK\x03\x04 not really a zip")
    argv = [str(tmp_path), "--onnx", str(tmp_path / "m.onnx")]
    run_hostile(export.main, argv, capsys, tmp_path, status=1, message="model.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_an_existing_file_is_kept_without_overwrite(trained, tmp_path, capsys):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"the user's own file")
    argv = [str(trained), "--onnx", str(target)]
    run_hostile(export.main, argv, capsys, tmp_path, status=1, message="--overwrite")
    assert quiet(export.main, [*argv, "--overwrite"])[0] == 0
    assert onnx.load(str(target)).producer_name == "backprop"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_a_symlink_is_replaced_never_followed(trained, tmp_path, capsys):
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"keep me")
    link = tmp_path / "m.onnx"
    link.symlink_to(precious)
    argv = [str(trained), "--onnx", str(link)]
    run_hostile(export.main, argv, capsys, tmp_path, status=1, message="exists")
    dangling = tmp_path / "dangling.onnx"
    dangling.symlink_to(tmp_path / "not-there")
    argv = [str(trained), "--onnx", str(dangling)]
    run_hostile(export.main, argv, capsys, tmp_path, status=1, message="exists")
    assert not (tmp_path / "not-there").exists()
    assert (
        quiet(export.main, [str(trained), "--onnx", str(link), "--overwrite"])[0] == 0
    )
    assert precious.read_bytes() == b"keep me"
    assert not link.is_symlink() and link.stat().st_size > 1000


def test_a_folder_as_output(trained, tmp_path, capsys):
    (tmp_path / "out.onnx").mkdir()
    argv = [str(trained), "--onnx", str(tmp_path / "out.onnx"), "--overwrite"]
    run_hostile(export.main, argv, capsys, tmp_path, status=1, message="is a folder")


def test_an_output_name_without_onnx_suffix(trained, tmp_path, capsys):
    argv = [str(trained), "--onnx", str(tmp_path / "model.npz")]
    run_hostile(export.main, argv, capsys, tmp_path, status=2, message=r"\.onnx")


HIDE = "import sys; sys.modules[{!r}] = None; "


@pytest.mark.parametrize(
    ("module", "command", "message"),
    [
        ("onnx", "export", r"ONNX export needs onnx.*pip install -e '\.\[onnx\]'"),
        ("onnxruntime", "predict", r"needs onnxruntime.*'\.\[onnx\]'"),
    ],
)
def test_a_missing_package_is_one_line(
    module, command, message, trained, exported, tmp_path, capsys, monkeypatch
):
    code = HIDE.format(module) + (
        f"from backprop.app.commands.{command} import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    if command == "export":
        argv = [str(trained), "--onnx", str(tmp_path / "m.onnx")]
    else:
        argv = [str(exported), str(ROOT / "docs" / "figures" / "number-page.png")]
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)  # the subprocess runs in tmp_path
    run_hostile(code, argv, capsys, tmp_path, status=1, message=message)


def foreign_model(path: Path, producer: str, external: bool = False) -> None:
    """A small valid ONNX model (Identity) that backprop did not write."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.zeros((784, 10), np.float32), "dense1.w")
    if external:
        weight.data_location = TensorProto.EXTERNAL
        weight.ClearField("raw_data")
        entry = weight.external_data.add()
        entry.key, entry.value = "location", "../../etc/passwd"
    graph = helper.make_graph(
        [helper.make_node("Identity", [INPUT], [OUTPUT])],
        "g",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", 784])],
        initializer=[weight],
    )
    model = helper.make_model(graph, producer_name=producer)
    path.write_bytes(model.SerializeToString())


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("garbage", "not an ONNX file"),
        ("empty", "not written by backprop export"),
        ("foreign", "not written by backprop export"),
        ("external", "weights are in other files"),
        ("missing", "no such file"),
    ],
)
def test_predict_refuses_a_bad_onnx_file(case, message, tmp_path, capsys):
    pytest.importorskip("PIL", reason="predict reads images with Pillow")
    path = tmp_path / "model.onnx"
    if case == "garbage":
        path.write_bytes(b"\xff\x00 not protobuf at all \x00" * 10)
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "foreign":
        foreign_model(path, "someone-else")
    elif case == "external":
        foreign_model(path, "backprop", external=True)
    image = digit_files(tmp_path, 1)[0]
    argv = [str(path), str(image)]
    run_hostile(predict.main, argv, capsys, tmp_path, status=1, message=message)
