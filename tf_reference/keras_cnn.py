"""The engine's CNN as a Keras model, and back: weights are copied, never transposed.

Keras's ``Conv2D`` keeps its kernel as (KH, KW, C, F) and its ``Flatten``
reads (N, H, W, C) images row-major, exactly as ``backprop.cnn.CNN`` does, so
``conv1.w`` is the kernel of the Keras layer ``conv1`` and ``dense1.w`` the
kernel of ``dense1``. The Keras model takes the same flat (N, H*W*C) rows as
the engine (a ``Reshape`` layer first) and ends in a softmax, as the paper's
MLP does, so ``tf_reference.paper_model.paper_loss`` inside ``tf.function`` computes
the engine's fused loss from the logits behind it. Checks fail with a one-line
``ConversionError``.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from backprop.cnn import CNN, normalise_layers
from backprop.device import to_numpy
from backprop.errors import ConfigError
from tf_reference.conversion import ConversionError
from tf_reference.paper_model import keras


def keras_cnn(
    params: dict[str, Any],
    layers: Any,
    input_shape: tuple[int, int, int] = (28, 28, 1),
) -> keras.Sequential:
    """A Keras model computing what the engine's CNN computes, as probabilities.

    Args:
        params: ``conv1.w`` (KH, KW, C, F), ``conv1.b`` (F,), ..., ``dense1.w``
            (D, H), ...; NumPy or CuPy.
        layers: the CNN's layer specs (``CNN.layers``).
        input_shape: (H, W, C) of its images.

    Returns:
        ``keras.Sequential``: ``Reshape`` to images, then ``Conv2D`` (ReLU)
        named ``conv1``, ..., ``MaxPool2D``, ``Flatten``, ``Dense`` (ReLU)
        named ``dense1``, ..., softmax on the last; it maps (N, H*W*C) inputs
        to (N, classes) probabilities.

    Raises:
        ConversionError: the parameters do not fit the layers.
    """
    params = {name: to_numpy(value) for name, value in params.items()}
    try:
        model = CNN.from_params(params, layers=layers, input_shape=input_shape)
    except ConfigError as exc:
        raise ConversionError(str(exc)) from None
    dtype = model.dtype
    stack: list[Any] = [
        keras.Input(shape=(math.prod(model.input_shape),), dtype=dtype),
        keras.layers.Reshape(model.input_shape, dtype=dtype),
    ]
    counts = {"conv": 0, "dense": 0}
    for index, layer in enumerate(model.layers):
        if layer[0] == "pool":
            stack.append(keras.layers.MaxPool2D(layer[1], layer[2], dtype=dtype))
            continue
        counts[layer[0]] += 1
        name = f"{layer[0]}{counts[layer[0]]}"
        if layer[0] == "conv":
            _, k, f, padding, stride = layer
            stack.append(
                keras.layers.Conv2D(
                    f, k, stride, padding, activation="relu", name=name, dtype=dtype
                )
            )
            continue
        if counts["dense"] == 1:
            stack.append(keras.layers.Flatten(dtype=dtype))
        last = index == len(model.layers) - 1
        activation = "softmax" if last else "relu"
        stack.append(
            keras.layers.Dense(layer[1], activation=activation, name=name, dtype=dtype)
        )
    keras_model = keras.Sequential(stack, name="backprop_cnn")
    for kind, count in counts.items():
        for i in range(1, count + 1):
            keras_model.get_layer(f"{kind}{i}").set_weights(
                [params[f"{kind}{i}.w"], params[f"{kind}{i}.b"]]
            )
    return keras_model


def keras_cnn_to_params(
    model: keras.Model,
) -> tuple[dict[str, np.ndarray], tuple, tuple[int, int, int]]:
    """Engine parameters, layer specs and image shape from a Keras CNN.

    Args:
        model: a Keras ``Sequential`` of ``Reshape`` (optional), ``Conv2D``
            (ReLU, bias) and ``MaxPool2D`` layers, ``Flatten``, then ``Dense``
            layers with biases (ReLU, softmax on the last).

    Returns:
        ``(params, layers, input_shape)`` as ``CNN.from_params`` takes them.

    Raises:
        ConversionError: the model is not such a stack.
    """
    found = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    if found and isinstance(found[0], keras.layers.Reshape):
        input_shape = tuple(int(s) for s in found[0].target_shape)
        found = found[1:]
    else:
        input_shape = tuple(int(s) for s in model.input_shape[1:])
    params: dict[str, np.ndarray] = {}
    specs: list[tuple] = []
    denses = [layer for layer in found if isinstance(layer, keras.layers.Dense)]
    for layer in found:
        config = layer.get_config()
        if isinstance(layer, keras.layers.Flatten):
            continue
        if isinstance(layer, keras.layers.MaxPool2D):
            pool, stride = config["pool_size"], config["strides"]
            if (
                pool[0] != pool[1]
                or stride[0] != stride[1]
                or config["padding"] != "valid"
            ):
                raise ConversionError(
                    f"Keras layer {layer.name!r}: the engine pools square windows, "
                    "equal strides, padding valid"
                )
            specs.append(("pool", pool[0], stride[0]))
            continue
        if (
            isinstance(layer, keras.layers.Conv2D)
            and type(layer) is keras.layers.Conv2D
        ):
            kernel, stride = config["kernel_size"], config["strides"]
            if (
                kernel[0] != kernel[1]
                or stride[0] != stride[1]
                or tuple(config["dilation_rate"]) != (1, 1)
                or config["activation"] != "relu"
                or not config["use_bias"]
                or config["data_format"] != "channels_last"
            ):
                raise ConversionError(
                    f"Keras layer {layer.name!r}: the engine's convolutions are "
                    "square, undilated, channels_last, with a bias and ReLU"
                )
            kind, spec = "conv", ("conv", kernel[0], config["filters"],
                                  config["padding"], stride[0])  # fmt: skip
        elif isinstance(layer, keras.layers.Dense):
            want = "softmax" if layer is denses[-1] else "relu"
            if config["activation"] != want or not config["use_bias"]:
                raise ConversionError(
                    f"Keras layer {layer.name!r} has activation "
                    f"{config['activation']!r}; the engine needs biases, ReLU "
                    "hidden layers and a softmax output"
                )
            kind, spec = "dense", ("dense", config["units"])
        else:
            raise ConversionError(
                f"Keras layer {layer.name!r} is a {type(layer).__name__}; the "
                "engine's CNN has Conv2D, MaxPool2D, Flatten and Dense layers"
            )
        specs.append(spec)
        count = sum(s[0] == kind for s in specs)
        w, b = (np.asarray(v) for v in layer.get_weights())
        params[f"{kind}{count}.w"], params[f"{kind}{count}.b"] = w, b
    try:
        layers = normalise_layers(specs)
        CNN.from_params(params, layers=layers, input_shape=input_shape)
    except ConfigError as exc:
        raise ConversionError(f"Keras model {model.name!r}: {exc}") from None
    return params, layers, input_shape


def export_cnn(model: CNN, path: str | Path) -> keras.Sequential:
    """Save an engine CNN as a ``.keras`` file; returns the Keras model saved."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ConversionError(f"{path}: a Keras model file must end in .keras")
    keras_model = keras_cnn(model.params, model.layers, model.input_shape)
    partial = path.with_name(f".{path.stem}.partial.keras")  # never half a file
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # Keras's, NumPy 2
            keras_model.save(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return keras_model


def import_cnn(path: str | Path) -> CNN:
    """An engine CNN from a ``.keras`` file (see ``keras_cnn_to_params``)."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            keras_model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many kinds on a bad file
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConversionError(
            f"{path}: not a readable Keras model ({first_line})"
        ) from None
    params, layers, input_shape = keras_cnn_to_params(keras_model)
    return CNN.from_params(params, layers=layers, input_shape=input_shape)
