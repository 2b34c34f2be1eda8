"""A CNN's convolutions and pooling (``backprop.cnn.CNN``) as ONNX nodes.

The engine works in Keras's layout, images (N, H, W, C) and kernels
(KH, KW, C, F); ONNX's ``Conv`` and ``MaxPool`` take images (N, C, H, W) and
kernels (F, C, KH, KW). The graph converts at both ends, so the weights keep
the engine's layout and names (``conv1.w`` (KH, KW, C, F) is transposed by a
node of the graph) and the first dense layer's weights apply unchanged::

    pixels (N, 784) -> Reshape (N, 28, 28, 1) -> Transpose (N, 1, 28, 28)
        -> Conv(conv1.w as (F, C, KH, KW), conv1.b; pads, strides) -> Relu
        -> MaxPool(kernel_shape, strides) -> ...                 (N, C, H, W)
        -> Transpose (N, H, W, C) -> Flatten -> features (N, H*W*C)

``"same"`` padding is TensorFlow's (``backprop.conv``): of the ``pad_total``
rows, ``pad_total // 2`` go on top and the rest at the bottom (likewise for
columns), written as the ``Conv``'s explicit ``pads``, never ``auto_pad``.
Pooling is "valid" (no padding, the last incomplete window dropped), as
``MaxPool`` computes it by default.

onnxruntime has no float64 ``Conv`` (1.32, CPU). A float64 CNN's
convolutions are therefore written as the engine computes them, im2col: the
``Pad``-ded images, one strided ``Slice`` per kernel offset (i, j),
``Concat``-ed to (N, KH*KW*C, OH, OW) in (i, j, c) order, then ``MatMul`` with
``conv1.w`` reshaped to (KH*KW*C, F), plus ``conv1.b``. Every operator of
either form is in the standard domain of opset 13.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from backprop.conv import output_size

NCHW, NHWC = [0, 3, 1, 2], [0, 2, 3, 1]  # Transpose perms between the layouts
FEATURES = "features"  # the flattened (N, H*W*C) output of ``cnn_nodes``


def constant(name: str, values: Sequence[int]) -> onnx.NodeProto:
    """A ``Constant`` node holding int64 ``values`` (a shape, pads, starts ...)."""
    tensor = numpy_helper.from_array(np.asarray(values, np.int64), name)
    return helper.make_node("Constant", [], [name], name=name, value=tensor)


def node(op: str, inputs: list[str], output: str, **attrs: Any) -> onnx.NodeProto:
    """A node named after its one output."""
    return helper.make_node(op, inputs, [output], name=output, **attrs)


def conv_op(
    name: str, x: str, k: int, stride: int, pads: list[int]
) -> list[onnx.NodeProto]:
    """``Conv`` of ``x`` (N, C, H, W) with ``{name}.w`` (KH, KW, C, F) transposed."""
    kernel = f"{name}.w.fckk"  # (F, C, KH, KW)
    return [
        node("Transpose", [f"{name}.w"], kernel, perm=[3, 2, 0, 1]),
        node(
            "Conv",
            [x, kernel, f"{name}.b"],
            name,
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=pads,
        ),
    ]


def conv_im2col(
    name: str, x: str, shape: tuple[int, ...], stride: int, pads: list[int], out: tuple
) -> list[onnx.NodeProto]:
    """The convolution as im2col and ``MatMul``, for dtypes without ``Conv``.

    Args:
        name: the layer's name (``conv1``); its weights are ``{name}.w``
            (KH, KW, C, F) and ``{name}.b`` (F,).
        x: the input, (N, C, H, W).
        shape: the kernel's, (KH, KW, C, F).
        stride: the step between windows.
        pads: [top, left, bottom, right], all >= 0.
        out: the output's (OH, OW).

    Returns:
        nodes ending in ``name``, (N, F, OH, OW).
    """
    k, _, c, f = shape
    top, left, bottom, right = pads
    rows, columns = ((size - 1) * stride + 1 for size in out)  # an offset's span
    nodes = [
        constant(f"{name}.pads", [0, 0, top, left, 0, 0, bottom, right]),
        node("Pad", [x, f"{name}.pads"], f"{name}.padded"),  # (N, C, Hp, Wp)
        constant(f"{name}.axes", [2, 3]),
        constant(f"{name}.steps", [stride, stride]),
    ]
    slices = []
    for i in range(k):
        for j in range(k):
            at = f"{name}.cols{i}{j}"  # (N, C, OH, OW): xpad[:, :, y*s+i, x*s+j]
            nodes += [
                constant(f"{at}.starts", [i, j]),
                constant(f"{at}.ends", [i + rows, j + columns]),
                node(
                    "Slice",
                    [
                        f"{name}.padded",
                        f"{at}.starts",
                        f"{at}.ends",
                        f"{name}.axes",
                        f"{name}.steps",
                    ],
                    at,
                ),
            ]
            slices.append(at)
    cols, matrix = f"{name}.cols", f"{name}.w.matrix"
    return [
        *nodes,
        node("Concat", slices, cols, axis=1),  # (N, KH*KW*C, OH, OW)
        node("Transpose", [cols], f"{cols}.last", perm=NHWC),  # (N,OH,OW,KH*KW*C)
        constant(f"{matrix}.shape", [k * k * c, f]),
        node("Reshape", [f"{name}.w", f"{matrix}.shape"], matrix),  # (KH*KW*C, F)
        node("MatMul", [f"{cols}.last", matrix], f"{name}.product"),  # (N,OH,OW,F)
        node("Add", [f"{name}.product", f"{name}.b"], f"{name}.nhwc"),  # (N,OH,OW,F)
        node("Transpose", [f"{name}.nhwc"], name, perm=NCHW),  # (N, F, OH, OW)
    ]


def cnn_nodes(
    source: str, layers: Sequence[tuple], input_shape: Sequence[int], dtype: str
) -> list[onnx.NodeProto]:
    """The nodes from the pixels to the features the first dense layer reads.

    Args:
        source: the input's name, (N, H*W*C) rows.
        layers: ``CNN.layers``, normalised; its dense layers are not written
            here.
        input_shape: (H, W, C) of the images.
        dtype: ``float32`` (``Conv``) or ``float64`` (im2col and ``MatMul``).

    Returns:
        nodes ending in ``FEATURES``, (N, H'*W'*C') in (H', W', C') order,
        as ``CNN.forward`` flattens its images.
    """
    h, w, c = (int(s) for s in input_shape)
    nodes = [
        constant("image.shape", [-1, h, w, c]),
        node("Reshape", [source, "image.shape"], "image"),  # (N, H, W, C)
        node("Transpose", ["image"], "image.nchw", perm=NCHW),  # (N, C, H, W)
    ]
    x, convs, pools = "image.nchw", 0, 0
    for layer in layers:
        if layer[0] == "conv":
            _, k, f, padding, stride = layer
            convs += 1
            name = f"conv{convs}"
            oh, top = output_size(h, k, stride, padding)
            ow, left = output_size(w, k, stride, padding)
            # "valid" may leave rows unread (a negative after): no padding there
            bottom = max((oh - 1) * stride + k - h - top, 0)
            right = max((ow - 1) * stride + k - w - left, 0)
            pads = [top, left, bottom, right]
            if dtype == "float64":
                nodes += conv_im2col(name, x, (k, k, c, f), stride, pads, (oh, ow))
            else:
                nodes += conv_op(name, x, k, stride, pads)  # (N, F, OH, OW)
            nodes.append(node("Relu", [name], f"{name}.relu"))  # (N, F, OH, OW)
            x, h, w, c = f"{name}.relu", oh, ow, f
        elif layer[0] == "pool":
            _, p, stride = layer
            pools += 1
            name = f"pool{pools}"
            nodes.append(
                node("MaxPool", [x], name, kernel_shape=[p, p], strides=[stride] * 2)
            )  # (N, C, H', W')
            x = name
            h = output_size(h, p, stride, "valid")[0]
            w = output_size(w, p, stride, "valid")[0]
    return [
        *nodes,
        node("Transpose", [x], f"{x}.nhwc", perm=NHWC),  # (N, H, W, C)
        node("Flatten", [f"{x}.nhwc"], FEATURES, axis=1),  # (N, H*W*C)
    ]
