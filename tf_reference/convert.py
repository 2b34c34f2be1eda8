"""Engine parameters <-> TensorFlow variables and Keras files, in one place.

The engine names its parameters ``dense1.w`` (D, H1), ``dense1.b`` (H1,),
``dense2.w``, ...; the TensorFlow model of ``tf_reference.paper_model`` holds the
same arrays as the variables ``dense1/w``, ``dense1/b``, ... of its layers, in
the same layout (weights (D, H), ``out = x @ w + b``), so converting is copying.
Every check here fails with a one-line ``ConversionError``.

    python -m tf_reference.convert export runs/x model.keras   # or runs/x/model.npz
    python -m tf_reference.convert import model.keras model.npz

``export`` writes a Keras model (Dense ReLU layers, a Dense softmax layer) that
TensorFlow can serve; ``import`` turns such a model back into an engine
checkpoint, which ``backprop.MLP.from_params`` loads. A CNN's run (``--model
cnn``) goes through ``tf_reference.keras_cnn`` both ways.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from backprop.app.commands.flags_and_errors import HelpFormatter, Parser, run_command
from backprop.app.runs import (
    Checkpoint,
    find_model,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
    temporary_beside,
)
from backprop.cnn import CNN, describe
from backprop.device import to_numpy
from backprop.errors import ConfigError, OutputError
from backprop.model import MLP
from tf_reference import keras_cnn
from tf_reference.conversion import ConversionError
from tf_reference.paper_model import Dense, Sequential, keras, paper_model, tf


def check_params(params: dict[str, Any]) -> list[int]:
    """The layer sizes of engine parameters, or a ``ConversionError``.

    Args:
        params: ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ...

    Returns:
        sizes, e.g. ``[784, 128, 10]``.
    """
    try:
        return MLP.from_params(params).sizes
    except ConfigError as exc:
        raise ConversionError(str(exc)) from None


def module_variables(model: Sequential) -> dict[str, tf.Variable]:
    """The variables of a built model under their engine names.

    Layer ``i`` (from 1) holds ``dense{i}.w`` and ``dense{i}.b``.

    Args:
        model: a ``tf_reference.paper_model.Sequential`` of ``Dense`` layers.

    Returns:
        engine name -> ``tf.Variable``, in the engine's order.
    """
    variables = {}
    for i, layer in enumerate(model.layers, start=1):
        if not isinstance(layer, Dense):
            raise ConversionError(
                f"layer {i} of the TensorFlow model is a {type(layer).__name__}, "
                "not a tf_reference Dense layer"
            )
        if not layer.is_built:
            raise ConversionError(
                f"the TensorFlow model's layer {i} ({layer.name}) has no weights yet; "
                "call the model on a batch first"
            )
        variables[f"dense{i}.w"] = layer.w
        variables[f"dense{i}.b"] = layer.b
    return variables


def module_to_params(model: Sequential) -> dict[str, np.ndarray]:
    """Copy a TensorFlow model's weights into engine parameters.

    Args:
        model: a built ``tf_reference.paper_model.Sequential``.

    Returns:
        ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ... as NumPy arrays.
    """
    return {name: var.numpy() for name, var in module_variables(model).items()}


def params_to_module(
    params: dict[str, Any], model: Sequential | None = None
) -> Sequential:
    """Copy engine parameters into a TensorFlow model.

    Args:
        params: ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ...; NumPy or CuPy.
        model: the model to overwrite; None makes a ``paper_model`` of the
            parameters' sizes and dtype. An unbuilt model is built first, by a
            call on one row of zeros.

    Returns:
        the model, holding copies of ``params``.

    Raises:
        ConversionError: the names, shapes or dtypes do not match.
    """
    params = {name: to_numpy(value) for name, value in params.items()}
    sizes = check_params(params)
    dtype = params["dense1.w"].dtype
    if model is None:
        model = paper_model(sizes[1:-1], sizes[-1], dtype=tf.as_dtype(dtype))
    if model.layers and not model.layers[0].is_built:
        model(tf.zeros([1, sizes[0]], model.layers[0].dtype))
    variables = module_variables(model)
    if set(variables) != set(params):
        raise ConversionError(
            f"engine parameters {sorted(params)} do not match the TensorFlow "
            f"model's {sorted(variables)}"
        )
    for name, var in variables.items():
        value = params[name]
        if tuple(var.shape) != value.shape:
            raise ConversionError(
                f"{name}: engine shape {value.shape} but TensorFlow variable "
                f"{var.name} has {tuple(var.shape)}"
            )
        if var.dtype.as_numpy_dtype != value.dtype:
            raise ConversionError(
                f"{name}: engine dtype {value.dtype} but TensorFlow variable "
                f"{var.name} is {var.dtype.name}"
            )
    for name, var in variables.items():
        var.assign(params[name])
    return model


def adam_state(opt: keras.optimizers.Adam, model: Sequential) -> dict[str, Any]:
    """A Keras Adam's state in the engine's ``Adam.state_dict()`` layout.

    Args:
        opt: the optimizer that trained ``model``.
        model: a built ``tf_reference.paper_model.Sequential``.

    Returns:
        ``{"t": steps, "m.dense1.w": ..., "v.dense1.w": ..., ...}``; only
        ``{"t": 0}`` before the first step.
    """
    steps = int(opt.iterations.numpy())
    state: dict[str, Any] = {"t": steps}
    if steps == 0:
        return state
    try:  # Keras 3 keeps the moments in lists indexed like the variables.
        for name, var in module_variables(model).items():
            index = opt._get_variable_index(var)
            state[f"m.{name}"] = opt._momentums[index].numpy()
            state[f"v.{name}"] = opt._velocities[index].numpy()
    except (AttributeError, KeyError, IndexError) as exc:
        raise ConversionError(
            f"cannot read Adam's moments from Keras {keras.__version__} ({exc})"
        ) from None
    return state


def keras_model(params: dict[str, Any]) -> keras.Sequential:
    """A Keras model computing what the engine's MLP computes, as probabilities.

    Args:
        params: ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ...

    Returns:
        ``keras.Sequential`` of ``Dense`` layers named ``dense1``, ``dense2``, ...
        (ReLU, then softmax on the last) holding copies of ``params``; it maps
        (N, D) inputs to (N, C) probabilities.
    """
    params = {name: to_numpy(value) for name, value in params.items()}
    sizes = check_params(params)
    dtype = str(params["dense1.w"].dtype)
    count = len(sizes) - 1
    layers: list[Any] = [keras.Input(shape=(sizes[0],), dtype=dtype)]
    for i in range(1, count + 1):
        activation = "softmax" if i == count else "relu"
        layers.append(
            keras.layers.Dense(
                sizes[i], activation=activation, name=f"dense{i}", dtype=dtype
            )
        )
    model = keras.Sequential(layers, name="backprop_mlp")
    for i in range(1, count + 1):
        model.get_layer(f"dense{i}").set_weights(
            [params[f"dense{i}.w"], params[f"dense{i}.b"]]
        )
    return model


def keras_to_params(model: keras.Model) -> dict[str, np.ndarray]:
    """Engine parameters from a Keras model of Dense ReLU layers and a softmax one.

    Args:
        model: a Keras model whose layers (after its input) are ``Dense`` with
            biases: ReLU activations, then softmax on the last.

    Returns:
        ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ... as NumPy arrays.

    Raises:
        ConversionError: the model is not such a stack.
    """
    layers = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    if not layers:
        raise ConversionError(f"Keras model {model.name!r} has no layers")
    params: dict[str, np.ndarray] = {}
    for i, layer in enumerate(layers, start=1):
        if not isinstance(layer, keras.layers.Dense):
            raise ConversionError(
                f"Keras layer {layer.name!r} is a {type(layer).__name__}; "
                "the engine's MLP has only Dense layers"
            )
        want = "softmax" if i == len(layers) else "relu"
        got = layer.get_config().get("activation")
        if got != want or not layer.use_bias:
            raise ConversionError(
                f"Keras layer {layer.name!r} has activation {got!r}"
                f"{'' if layer.use_bias else ' and no bias'}; the engine's MLP "
                "needs biases, ReLU hidden layers and a softmax output"
            )
        w, b = (np.asarray(v) for v in layer.get_weights())
        params[f"dense{i}.w"], params[f"dense{i}.b"] = w, b
    check_params(params)
    return params


def export_keras(params: dict[str, Any], path: str | Path) -> keras.Sequential:
    """Save engine parameters as a Keras model file.

    Args:
        params: ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ...
        path: where to write; must end in ``.keras``.

    Returns:
        the Keras model that was saved.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ConversionError(f"{path}: a Keras model file must end in .keras")
    model = keras_model(params)
    with warnings.catch_warnings(), temporary_beside(path) as tmp:
        warnings.simplefilter("ignore", DeprecationWarning)  # Keras's, on NumPy 2
        model.save(tmp)  # then renamed to path: never half a file there
    return model


def import_keras(path: str | Path) -> dict[str, np.ndarray]:
    """Engine parameters from a ``.keras`` file (see ``keras_to_params``).

    Args:
        path: a Keras model file.

    Returns:
        ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ... as NumPy arrays.
    """
    return keras_to_params(read_keras(path))


def read_keras(path: str | Path) -> keras.Model:
    """The Keras model in a ``.keras`` file, or a one-line ``ConversionError``."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many kinds on a bad file
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConversionError(
            f"{path}: not a readable Keras model ({first_line})"
        ) from None


def is_cnn(model: keras.Model) -> bool:
    """Whether a Keras model has convolutions (``tf_reference.keras_cnn``'s form)."""
    return any(isinstance(layer, keras.layers.Conv2D) for layer in model.layers)


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags of ``python -m tf_reference.convert``."""
    p = Parser(
        prog="python -m tf_reference.convert",
        description="Convert between engine checkpoints (.npz) and Keras models.",
        formatter_class=HelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    exp = sub.add_parser(
        "export",
        help="engine checkpoint -> .keras file",
        formatter_class=HelpFormatter,
    )
    exp.add_argument(
        "checkpoint", type=Path, help="an engine model.npz, or its run folder"
    )
    exp.add_argument("keras_file", type=Path, help="the .keras file to write")
    imp = sub.add_parser(
        "import",
        help=".keras file -> engine checkpoint",
        formatter_class=HelpFormatter,
    )
    imp.add_argument("keras_file", type=Path, help="a .keras file")
    imp.add_argument("checkpoint", type=Path, help="the engine model.npz to write")
    for sub_parser in (exp, imp):
        sub_parser.add_argument(
            "--overwrite", action="store_true", help="replace the file written"
        )
    return p


def check_target(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing file unless ``--overwrite``.

    Raises:
        OutputError: ``path`` exists (a run's checkpoint would lose its
            optimizer state and history) and ``overwrite`` is off.
    """
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, not a file to write")
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: exists; pass --overwrite to replace it")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(parser, lambda: run(args))


def run(args: argparse.Namespace) -> int:
    """Export or import as the flags say; the body of ``main``.

    A run of ``--model cnn`` exports through ``tf_reference.keras_cnn``, and a
    Keras model with ``Conv2D`` layers imports as a CNN's checkpoint.
    """
    if args.command == "export":
        ckpt = load_checkpoint(find_model(args.checkpoint)[0])
        check_target(args.keras_file, args.overwrite)
        if ckpt.config.get("model") == "cnn":
            try:
                model = model_from_checkpoint(ckpt, "cpu")
            except ConfigError as exc:
                raise ConversionError(f"{args.checkpoint}: {exc}") from None
            keras_cnn.export_cnn(model, args.keras_file)
            print(f"wrote {args.keras_file}: Keras CNN {describe(model.layers)}")
            return 0
        export_keras(ckpt.params, args.keras_file)
        print(f"wrote {args.keras_file}: Keras model {check_params(ckpt.params)}")
        return 0
    check_target(args.checkpoint, args.overwrite)
    keras_model = read_keras(args.keras_file)
    source = str(args.keras_file)
    if is_cnn(keras_model):
        params, layers, shape = keras_cnn.keras_cnn_to_params(keras_model)
        model = CNN.from_params(params, layers=layers, input_shape=shape)
        config = {"model": "cnn", "cnn": model.spec, "sizes": model.sizes}
        config.update(dtype=model.dtype, source=source)
        save_checkpoint(args.checkpoint, Checkpoint(params, config=config))
        print(f"wrote {args.checkpoint}: engine CNN {describe(model.layers)}")
        return 0
    params = keras_to_params(keras_model)
    sizes = check_params(params)
    dtype = str(params["dense1.w"].dtype)
    config = {"sizes": sizes, "dtype": dtype, "source": source}
    save_checkpoint(args.checkpoint, Checkpoint(params, config=config))
    print(f"wrote {args.checkpoint}: engine parameters {sizes} {dtype}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
