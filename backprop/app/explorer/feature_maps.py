"""The explorer's view of a CNN: its first convolution's feature maps and kernels.

Where the page draws an MLP's hidden units, it draws a CNN's first
convolution layer (``conv1``: in LeNet-5, 6 kernels of 5x5 over the 28x28
image, "same" padding):

* ``maps``: its F feature maps for one example, after the ReLU,
  ``relu(x * K_f + b_f)`` (``*`` the cross-correlation of ``conv2d_forward``),
  read from the engine's own forward caches;
* ``kernels``: its F kernels ``K_f = conv1.w[:, :, 0, f]`` (``view``: both,
  for ``session.forward``);
* ``kernel_units``: for one example and class, each kernel's gradient
  ``dL/dK_f`` (from ``CNN.backward``) beside the kernel, in the shape of the
  MLP's ``units`` (``unit``, ``grad_weights``, ``weights``), so the page draws
  both alike.

Every map and kernel is flattened row-major. Shapes: F filters, KH x KW
kernels, OH x OW maps; the input is one 28x28 channel (C = 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop.cnn import CNN, describe
from backprop.errors import ConfigError

SHAPE = (28, 28, 1)  # the drawn digit: one 28x28 channel


def first_conv(model: CNN) -> int:
    """The index in ``model.layers`` of the first convolution (``conv1``).

    Raises:
        ConfigError: the CNN has no convolution, or does not take one 28x28
            channel.
    """
    if model.input_shape != SHAPE:
        raise ConfigError(
            f"the explorer draws 28x28 digits; this CNN takes {model.input_shape} "
            "(H, W, C) images"
        )
    kinds = [layer[0] for layer in model.layers]
    if "conv" not in kinds:
        raise ConfigError(f"the CNN {describe(model.layers)} has no convolution")
    return kinds.index("conv")


def conv_info(model: CNN) -> dict[str, Any]:
    """What the page needs to lay out the view: names and shapes.

    Returns:
        ``layers`` (``backprop.cnn.describe``), ``filters`` (F), ``kernel``
        [KH, KW] and ``map`` [OH, OW] of ``conv1``.
    """
    index = first_conv(model)
    kh, kw, _, f = model.params["conv1.w"].shape
    _, caches = model.forward(np.zeros((1, 784), model.dtype))  # (1, C)
    oh, ow = caches[index][2].shape[1:3]
    return {
        "layers": describe(model.layers),
        "filters": int(f),
        "kernel": [int(kh), int(kw)],
        "map": [int(oh), int(ow)],
    }


def copy_of(model: CNN) -> CNN:
    """A CNN of the same layers with a copy of ``model``'s weights."""
    return CNN.from_params(
        model.params, layers=model.layers, input_shape=model.input_shape
    )


def maps(model: CNN, caches: list[tuple]) -> list[list[float]]:
    """``conv1``'s feature maps after ReLU, from one example's forward caches.

    Args:
        model: the CNN.
        caches: ``model.forward``'s, for a batch of one.

    Returns:
        F lists of OH*OW values, each a map read row by row.
    """
    out = caches[first_conv(model)][2][0]  # (OH, OW, F): the ReLU's output
    return out.transpose(2, 0, 1).reshape(out.shape[2], -1).tolist()  # (F, OH*OW)


def view(model: CNN, caches: list[tuple]) -> dict[str, list[list[float]]]:
    """The CNN view of one example: ``maps`` (F, OH*OW), ``kernels`` (F, KH*KW)."""
    return {
        "maps": maps(model, caches),
        "kernels": kernels(model.params["conv1.w"]).tolist(),
    }


def kernels(w: np.ndarray) -> np.ndarray:
    """Kernels (KH, KW, 1, F) as rows: (F, KH*KW), each read row by row."""
    return w[:, :, 0, :].transpose(2, 0, 1).reshape(w.shape[3], -1)  # (F, KH*KW)


def kernel_units(model: CNN, grads: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Each ``conv1`` kernel's gradient beside the kernel, the page's ``units``.

    Args:
        model: the CNN.
        grads: ``model.backward``'s gradients for one example.

    Returns:
        for each filter f: ``unit`` f, ``grad_weights`` dL/dK_f (KH*KW,) and
        ``weights`` K_f (KH*KW,).
    """
    dk, k = kernels(grads["conv1.w"]), kernels(model.params["conv1.w"])  # (F, KH*KW)
    return [
        {"unit": f, "grad_weights": dk[f].tolist(), "weights": k[f].tolist()}
        for f in range(len(k))
    ]
