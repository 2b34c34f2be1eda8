"""Converting weights between the engine, the TensorFlow model and Keras files."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip(
    "tensorflow", reason="TensorFlow is not installed (the tf extra)"
)
pytest.importorskip("tf_reference", reason="tf_reference is not importable")
import keras  # noqa: E402

from backprop.app.runs import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from backprop.data import load_mnist  # noqa: E402
from backprop.model import MLP  # noqa: E402
from backprop.optim import Adam  # noqa: E402
from tf_reference.convert import (  # noqa: E402
    ConversionError,
    export_keras,
    import_keras,
    keras_model,
    main,
    module_to_params,
    module_variables,
    params_to_module,
)
from tf_reference.paper_model import paper_model  # noqa: E402

pytestmark = pytest.mark.tf


def one_line(message: str) -> bool:
    return bool(message) and "\n" not in message


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_params_round_trip_through_tensorflow(dtype):
    engine = MLP([6, 5, 4, 3], seed=3, dtype=dtype)
    model = params_to_module(engine.params)
    variables = module_variables(model)
    assert list(variables) == list(engine.params)
    assert variables["dense2.w"].name == "dense2/w:0"  # the one name mapping
    assert variables["dense1.b"].dtype == tf.as_dtype(dtype)
    back = module_to_params(model)
    for name, value in engine.params.items():
        np.testing.assert_array_equal(back[name], value)
    x = np.random.default_rng(0).standard_normal((7, 6)).astype(dtype)
    np.testing.assert_allclose(
        model(x).numpy(),
        engine.predict_proba(x),
        rtol=1e-5 if dtype == "float32" else 1e-12,
    )


def test_tf_random_init_is_a_truncated_normal():
    model = paper_model((128,))
    tf.random.set_seed(0)
    model(tf.zeros([1, 784]))
    w = module_to_params(model)["dense1.w"]
    assert w.shape == (784, 128)
    assert np.abs(w).max() <= 0.2  # redrawn beyond two stddevs
    assert 0.08 < w.std() < 0.1  # 0.1 truncated at 2 stddevs: 0.088
    np.testing.assert_array_equal(module_to_params(model)["dense1.b"], 0.0)


def test_params_fill_an_unbuilt_model():
    engine = MLP([6, 5, 3], seed=1)
    model = paper_model((5,), classes=3)
    assert params_to_module(engine.params, model) is model
    np.testing.assert_array_equal(model.layers[0].w.numpy(), engine.params["dense1.w"])


def test_mismatched_names_are_one_line_errors():
    engine = MLP([6, 5, 3], seed=1)
    model = params_to_module(MLP([6, 5, 4, 3], seed=1).params)  # one layer more
    with pytest.raises(ConversionError) as info:
        params_to_module(engine.params, model)
    assert one_line(str(info.value)) and "dense3.w" in str(info.value)
    broken = dict(engine.params)
    broken["dense1.kernel"] = broken.pop("dense1.w")
    with pytest.raises(ConversionError) as info:
        params_to_module(broken)
    assert one_line(str(info.value)) and "dense1.kernel" in str(info.value)


def test_mismatched_shapes_and_dtypes_are_one_line_errors():
    model = params_to_module(MLP([6, 5, 3], seed=1).params)
    with pytest.raises(ConversionError) as info:
        params_to_module(MLP([6, 7, 3], seed=1).params, model)
    message = str(info.value)
    assert one_line(message) and "dense1.w" in message and "(6, 7)" in message
    with pytest.raises(ConversionError) as info:
        params_to_module(MLP([6, 5, 3], seed=1, dtype="float64").params, model)
    assert one_line(str(info.value)) and "float64" in str(info.value)
    with pytest.raises(ConversionError) as info:
        module_to_params(paper_model((5,)))  # never called: no weights yet
    assert one_line(str(info.value)) and "call the model" in str(info.value)


@pytest.fixture(scope="module")
def trained_engine():
    """An engine model after 40 Adam steps on MNIST, and the test set."""
    (x, y), (x_test, y_test) = load_mnist()
    model = MLP([784, 128, 10], seed=0)
    opt = Adam()
    for i in range(40):
        _, grads = model.loss_and_grads(
            x[i * 256 : (i + 1) * 256], y[i * 256 : (i + 1) * 256]
        )
        opt.step(model.params, grads)
    return model, x_test, y_test


def test_keras_export_gives_the_engine_predictions(trained_engine, tmp_path):
    engine, x_test, y_test = trained_engine
    path = tmp_path / "mnist.keras"
    export_keras(engine.params, path)
    served = keras.saving.load_model(path)
    probs = served(tf.constant(x_test)).numpy()  # (10000, 10)
    engine_probs = engine.predict_proba(x_test)
    np.testing.assert_array_equal(probs.argmax(1), engine_probs.argmax(1))
    np.testing.assert_allclose(probs, engine_probs, atol=1e-5)
    assert (probs.argmax(1) == y_test).mean() > 0.8  # a trained model, not noise
    back = import_keras(path)  # and the other way
    assert list(back) == list(engine.params)
    for name, value in engine.params.items():
        np.testing.assert_array_equal(back[name], value)
    np.testing.assert_array_equal(
        MLP.from_params(back).predict(x_test), engine.predict(x_test)
    )


def test_keras_export_float64_two_hidden_layers(tmp_path):
    engine = MLP([9, 7, 5, 4], seed=2, dtype="float64")
    path = tmp_path / "deep.keras"
    export_keras(engine.params, path)
    served = keras.saving.load_model(path)
    x = np.random.default_rng(1).standard_normal((11, 9))
    np.testing.assert_allclose(served(x).numpy(), engine.predict_proba(x), rtol=1e-12)
    back = import_keras(path)
    assert back["dense3.w"].dtype == np.float64
    for name, value in engine.params.items():
        np.testing.assert_array_equal(back[name], value)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras's save, NumPy 2
def test_keras_models_the_engine_cannot_hold_are_refused(tmp_path):
    tanh = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3, "tanh"),
            keras.layers.Dense(2, "softmax"),
        ]
    )
    tanh.save(tmp_path / "tanh.keras")
    with pytest.raises(ConversionError) as info:
        import_keras(tmp_path / "tanh.keras")
    assert one_line(str(info.value)) and "'tanh'" in str(info.value)
    dropout = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dropout(0.5), keras.layers.Dense(2, "softmax")]
    )
    dropout.save(tmp_path / "dropout.keras")
    with pytest.raises(ConversionError, match="Dropout"):
        import_keras(tmp_path / "dropout.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip file")
    with pytest.raises(ConversionError) as info:
        import_keras(tmp_path / "junk.keras")
    assert one_line(str(info.value))
    with pytest.raises(ConversionError, match="not found"):
        import_keras(tmp_path / "missing.keras")
    with pytest.raises(ConversionError, match=r"\.keras"):
        export_keras(MLP([4, 3, 2]).params, tmp_path / "model.h5")


def test_keras_model_matches_the_engine_layer_names():
    model = keras_model(MLP([4, 3, 2], seed=0).params)
    assert [layer.name for layer in model.layers] == ["dense1", "dense2"]
    assert [layer.get_config()["activation"] for layer in model.layers] == [
        "relu",
        "softmax",
    ]


def test_convert_cli_round_trip(tmp_path, capsys):
    engine = MLP([6, 5, 3], seed=4)
    save_checkpoint(tmp_path / "model.npz", Checkpoint(engine.params))
    assert main(["export", str(tmp_path / "model.npz"), str(tmp_path / "m.keras")]) == 0
    assert main(["import", str(tmp_path / "m.keras"), str(tmp_path / "back.npz")]) == 0
    back = load_checkpoint(tmp_path / "back.npz")
    for name, value in engine.params.items():
        np.testing.assert_array_equal(back.params[name], value)
    assert back.config["sizes"] == [6, 5, 3]
    out = capsys.readouterr().out
    assert "wrote" in out and "m.keras" in out


def test_convert_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "none.npz"), str(tmp_path / "m.keras")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    save_checkpoint(tmp_path / "model.npz", Checkpoint(MLP([6, 5, 3]).params))
    assert main(["export", str(tmp_path / "model.npz"), str(tmp_path / "m.h5")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and ".keras" in err
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


@pytest.mark.parametrize(
    "tf_version, keras_version, problem",
    [
        ("2.21.0", "3.15.1", None),
        ("2.16.0rc1", "3.0.0", None),
        ("2.15.1", "2.15.0", "TensorFlow 2.15.1 is too old"),
        ("2.17.0", "2.17.0", "Keras 2.17.0 is too old"),
    ],
)
def test_version_check(tf_version, keras_version, problem):
    from tf_reference import TensorFlowUnavailable, check_versions

    if problem is None:
        check_versions(tf_version, keras_version)
    else:
        with pytest.raises(TensorFlowUnavailable, match=problem) as info:
            check_versions(tf_version, keras_version)
        assert one_line(str(info.value))
