"""A trained model as an ONNX graph: standard operators, the input documented.

``backprop export RUN --onnx model.onnx`` writes what ``build_model`` makes,
so the model runs outside Python's NumPy (onnxruntime, a browser, a phone).
The MLP of ``backprop.model`` becomes, in opset 13::

    pixels (N, 784) -> Gemm(dense1.w, dense1.b) -> Relu -> ...
        -> Gemm(denseL.w, denseL.b) -> Softmax(axis=1) -> probabilities (N, C)

``Gemm`` computes ``x @ w + b`` with the weights stored (inputs, outputs), as
the engine stores them, so they go in untransposed and keep their names
(``dense1.w`` ...). A CNN run (``--model cnn``, its layers in the config's
``cnn``) puts its convolutions and pooling in front
(``backprop.app.onnx_cnn``: ``Conv``, ``Relu``, ``MaxPool``), and its dense
layers read their flattened features: the same ``Gemm`` chain, then
``Softmax``. The element type is the run's (float32, or float64 for a float64
run). The model's ``metadata_props`` say what the input must be (784 values in
[0, 1], the image prepared as ``backprop predict`` prepares it), the output,
the network, the class names and the run's config, so a program in another
language can prepare its images the same way.

Built with the ``onnx`` package's helper API (the ``onnx`` extra); import this
module only after checking that ``onnx`` imports.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from backprop import __version__
from backprop.app.onnx_cnn import FEATURES, cnn_nodes
from backprop.app.runs import Checkpoint, model_from_checkpoint
from backprop.cnn import CNN
from backprop.cnn import describe as describe_layers
from backprop.data import class_names_for
from backprop.errors import BackpropError, CheckpointError

OPSET = 13  # Softmax over one axis (13's meaning), Gemm with a 1-D bias, Pad
IR_VERSION = 7  # the IR of opset 13: every onnxruntime since 1.7 reads it
INPUT, OUTPUT = "pixels", "probabilities"
PRODUCER = "backprop"
SIDE = 28  # the input is one SIDE x SIDE image per row
ELEMENT_TYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}

# How ``backprop predict`` turns an image file into the model's input
# (backprop.app.photos.prepare; its RECIPES), per dataset.
PREPARATION = {
    "mnist": (
        "each image prepared as `backprop predict` prepares an image file "
        "(backprop.app.photos.prepare, recipe 'mnist'): read as grey levels; "
        "the paper's uneven light and texture removed and the ink found with "
        "Otsu's threshold, the background made black (0) and the strongest ink "
        "white (1); the digit (the piece of ink with the most ink, its broken "
        "strokes merged, specks left out) cropped; its longer side scaled to 20 "
        "pixels (Lanczos), keeping the aspect ratio; pasted into a black 28x28 "
        "field so that its centre of mass lies on pixel (row 14, column 14), "
        "as in MNIST; then flattened row by row into 784 values"
    ),
    "fashion-mnist": (
        "each image prepared as `backprop predict` prepares an image file "
        "(backprop.app.photos.prepare, recipe 'fashion-mnist'): read as grey "
        "levels; the paper's uneven light and texture removed and the ink found "
        "with Otsu's threshold, the background made black (0) and the strongest "
        "ink white (1); every piece of ink but specks kept and cropped together; "
        "its longer side scaled to 28 pixels (Lanczos), keeping the aspect "
        "ratio; centred by its bounding box in a black 28x28 field; then "
        "flattened row by row into 784 values"
    ),
}


def dense_layers(params: dict[str, np.ndarray]) -> list[tuple[str, str]]:
    """The (weight, bias) names of an MLP's layers, first to last.

    Args:
        params: ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ``dense2.w``, ...

    Raises:
        CheckpointError: the parameters are not an MLP's.
    """
    count = len(params) // 2
    layers = [(f"dense{i}.w", f"dense{i}.b") for i in range(1, count + 1)]
    if count < 1 or sorted(params) != sorted(name for pair in layers for name in pair):
        raise CheckpointError(
            f"parameters {sorted(params)} are not dense1.w, dense1.b, ... of an MLP"
        )
    return layers


def dense_nodes(count: int, source: str) -> list[onnx.NodeProto]:
    """``count`` dense layers from ``source``, to the logits, named ``logits``.

    Args:
        count: how many layers: ``dense1.w``, ``dense1.b`` ... ``dense{count}.b``.
        source: the first layer's input, (N, D).

    Returns:
        ``Gemm`` per layer (``x @ w + b``), ``Relu`` after every one but the last.
    """
    nodes, previous = [], source
    for i in range(1, count + 1):
        dense = "logits" if i == count else f"dense{i}"
        inputs = [previous, f"dense{i}.w", f"dense{i}.b"]
        nodes.append(helper.make_node("Gemm", inputs, [dense], name=dense))
        previous = dense
        if i < count:
            previous = f"relu{i}"
            nodes.append(helper.make_node("Relu", [dense], [previous], name=previous))
    return nodes


def mlp_nodes(params: dict[str, np.ndarray]) -> list[onnx.NodeProto]:
    """The nodes of an MLP, from ``INPUT`` to its logits, named ``logits``.

    Args:
        params: ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ``dense2.w``, ...
    """
    return dense_nodes(len(dense_layers(params)), INPUT)


def cnn_of(params: dict[str, np.ndarray], config: dict[str, Any] | None) -> CNN | None:
    """The CNN a run's config describes (``--model cnn``), or None for an MLP.

    Raises:
        CheckpointError: the weights do not fit the config's layers, or the
            CNN does not read 28x28 grey images.
    """
    if not isinstance(config, dict) or config.get("model", "mlp") != "cnn":
        return None
    try:
        model = model_from_checkpoint(Checkpoint(params, config=config), "cpu")
    except BackpropError as exc:
        raise CheckpointError(str(exc)) from None
    if model.input_shape != (SIDE, SIDE, 1):
        raise CheckpointError(
            f"the CNN reads {model.input_shape} images, not ({SIDE}, {SIDE}, 1)"
        )
    return model


def layer_nodes(
    params: dict[str, np.ndarray], config: dict[str, Any] | None = None
) -> list[onnx.NodeProto]:
    """The nodes of a model, from ``INPUT`` (N, 784) to its logits (N, C).

    The one place a new kind of model goes: an MLP (``backprop.model``), or
    the CNN of a ``--model cnn`` run (``backprop.cnn``, its layers in
    ``config["cnn"]``): ``cnn_nodes`` to the flattened features, then the
    dense layers as ``mlp_nodes`` writes them.
    """
    cnn = cnn_of(params, config)
    if cnn is None:
        return mlp_nodes(params)
    count = sum(layer[0] == "dense" for layer in cnn.layers)
    features = cnn_nodes(INPUT, cnn.layers, cnn.input_shape, cnn.dtype)
    return features + dense_nodes(count, FEATURES)


def check_params(
    params: dict[str, np.ndarray], config: dict[str, Any] | None = None
) -> tuple[str, int, int]:
    """The element type, input width and class count of a model's parameters.

    Raises:
        CheckpointError: the dtype is neither float32 nor float64, the model
            does not take 28x28 images, or a CNN's weights do not fit its
            layers.
    """
    cnn = cnn_of(params, config)
    if cnn is not None:  # CNN.from_params checked the dtype and every shape
        return cnn.dtype, SIDE * SIDE, cnn.num_classes
    layers = dense_layers(params)
    first_w, last_w = params[layers[0][0]], params[layers[-1][0]]
    dtype = str(first_w.dtype)
    if dtype not in ELEMENT_TYPES or any(
        str(p.dtype) != dtype for p in params.values()
    ):
        raise CheckpointError(
            f"parameters of dtype {sorted({str(p.dtype) for p in params.values()})}; "
            f"expected all {' or all '.join(ELEMENT_TYPES)}"
        )
    if first_w.ndim != 2 or first_w.shape[0] != SIDE * SIDE:
        raise CheckpointError(
            f"the model takes {first_w.shape[0]} inputs, not {SIDE}x{SIDE} images"
        )
    return dtype, SIDE * SIDE, int(last_w.shape[-1])


def metadata(
    dtype: str, classes: list[str], dataset: str, config: dict[str, Any], network: str
) -> dict[str, str]:
    """The model's ``metadata_props``: what goes in, what comes out, where from.

    Args:
        dtype: the graph's element type, ``float32`` or ``float64``.
        classes: the class names, in the order of the output's columns.
        dataset: the run's dataset, which decides how images are prepared.
        config: the run's config (``config.json``), stored as JSON.
        network: the model in a few words (``describe``).
    """
    prepared = PREPARATION.get(dataset, PREPARATION["mnist"])
    return {
        "input": (
            f"'{INPUT}': (N, {SIDE * SIDE}) {dtype}, one {SIDE}x{SIDE} grey image "
            "per row in row-major order, values in [0, 1] (pixel / 255), ink "
            f"white (1) on a black (0) background; {prepared}"
        ),
        "output": (
            f"'{OUTPUT}': (N, {len(classes)}) {dtype}, the softmax of the logits: "
            "each row sums to 1; column k is the probability of class_names[k]"
        ),
        "network": network,
        "class_names": json.dumps(classes),
        "dataset": dataset,
        "config": json.dumps(config, sort_keys=True),
        "backprop_version": __version__,
    }


def describe(
    params: dict[str, np.ndarray], dataset: str, config: dict[str, Any] | None = None
) -> str:
    """A model in a few words, e.g. ``MLP 784-128-10 (mnist), float32``.

    A CNN is named by its layers (``backprop.cnn.describe``), e.g. ``CNN
    conv5x5x6same-pool2-conv5x5x16valid-pool2-dense120-dense84-dense10
    (mnist), float32``.
    """
    cnn = cnn_of(params, config)
    if cnn is not None:
        return f"CNN {describe_layers(cnn.layers)} ({dataset}), {cnn.dtype}"
    dtype, width, count = check_params(params)
    sizes = [width, *hidden_widths(params), count]
    return f"MLP {'-'.join(map(str, sizes))} ({dataset}), {dtype}"


def network_sizes(
    params: dict[str, np.ndarray], config: dict[str, Any] | None
) -> tuple[list[int], str]:
    """A model's ``sizes`` (784, then each dense layer's width) and dtype.

    Raises:
        CheckpointError: the parameters are not an MLP's, nor the CNN's that
            ``config`` describes.
    """
    cnn = cnn_of(params, config)
    if cnn is not None:
        return cnn.sizes, cnn.dtype
    layers = dense_layers(params)
    first = params[layers[0][0]]  # (D, H1)
    sizes = [int(first.shape[0])] + [int(params[w].shape[1]) for w, _ in layers]
    return sizes, str(first.dtype)


def build_model(
    params: dict[str, np.ndarray], dataset: str, config: dict[str, Any]
) -> onnx.ModelProto:
    """The ONNX model of a trained model: its graph, weights and metadata.

    Args:
        params: the host weights, ``dense1.w`` (784, H1), ``dense1.b`` (H1,), ...;
            a CNN's start with ``conv1.w`` (KH, KW, C, F), ``conv1.b`` (F,).
        dataset: the run's dataset (``mnist``, ``fashion-mnist``), which names
            the classes and decides how images are prepared.
        config: the run's config, stored in the metadata; ``model`` ``cnn``
            and ``cnn`` (the layers) make the graph a CNN's.

    Returns:
        a model that passes ``onnx.checker.check_model``.

    Raises:
        CheckpointError: the parameters are not an MLP (or the config's CNN)
            of 28x28 images in float32 or float64.
    """
    dtype, width, count = check_params(params, config)
    network = describe(params, dataset, config)
    classes = class_names_for(dataset, count)
    element = ELEMENT_TYPES[dtype]
    nodes = layer_nodes(params, config)
    nodes.append(
        helper.make_node("Softmax", ["logits"], [OUTPUT], name="softmax", axis=1)
    )
    graph = helper.make_graph(
        nodes,
        f"backprop_{network.split()[0].lower()}",  # backprop_mlp, backprop_cnn
        inputs=[helper.make_tensor_value_info(INPUT, element, ["N", width])],
        outputs=[helper.make_tensor_value_info(OUTPUT, element, ["N", count])],
        initializer=[
            numpy_helper.from_array(np.ascontiguousarray(value), name)
            for name, value in params.items()
        ],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER,
        producer_version=__version__,
        doc_string=f"backprop {network}; metadata_props 'input' says what goes in",
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, metadata(dtype, classes, dataset, config, network))
    onnx.checker.check_model(model, full_check=True)
    return model


def hidden_widths(params: dict[str, np.ndarray]) -> list[int]:
    """The hidden widths of an MLP's parameters, first to last."""
    return [int(params[w].shape[1]) for w, _ in dense_layers(params)[:-1]]
