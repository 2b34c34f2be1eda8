"""The network a run trains, as ``--model`` names it: the MLP or the CNN.

``--model mlp`` (the default) is the paper's dense network of ``--hidden``
widths; ``--model cnn`` is ``backprop.cnn.CNN`` with LeNet-5's convolutions
and pooling, then dense layers of the ``--hidden`` widths (LeNet-5's 120, 84
unless typed). Both train with the fused kernels where Numba imports
(``backprop.kernels.make_step``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop.app.config import EngineConfig
from backprop.cnn import CNN, LENET5, describe
from backprop.data import NUM_CLASSES
from backprop.errors import ConfigError
from backprop.kernels import resolve_kernels
from backprop.model import MLP


def cnn_layers(hidden: tuple[int, ...], classes: int) -> tuple[tuple, ...]:
    """``--model cnn``'s layers: LeNet-5's convolutions, then ``hidden`` and logits.

    Args:
        hidden: widths of the dense layers after the convolutions.
        classes: width of the logits.
    """
    convolutions = tuple(layer for layer in LENET5 if layer[0] != "dense")
    return (*convolutions, *(("dense", h) for h in hidden), ("dense", classes))


def make_model(
    cfg: EngineConfig, inputs: int, rng: np.random.Generator, device: str
) -> MLP | CNN:
    """The network ``cfg.model`` names, its weights drawn from ``rng``.

    Args:
        cfg: the settings (``model``, ``hidden``, ``dtype``, ``init``).
        inputs: pixels per image, D (28 * 28 for a CNN).
        rng: the run's generator.
        device: ``"cpu"`` or ``"gpu"``.

    Raises:
        ConfigError: a CNN's images are not 28x28.
    """
    if cfg.model == "mlp":
        sizes = [inputs, *cfg.hidden, NUM_CLASSES]
        return MLP(sizes, rng=rng, dtype=cfg.dtype, device=device, init=cfg.init)
    if inputs != 28 * 28:
        raise ConfigError(
            f"--model cnn reads 28x28 images, but these have {inputs} pixels"
        )
    layers = cnn_layers(cfg.hidden, NUM_CLASSES)
    return CNN(layers, rng=rng, dtype=cfg.dtype, device=device, init=cfg.init)


def run_kernels(cfg: EngineConfig, xp: Any, *, announce: bool) -> str:
    """``--kernels`` resolved: ``"reference"`` or ``"fused"``, for either model.

    Args:
        cfg: the settings (``kernels``).
        xp: numpy or cupy, where the run trains.
        announce: say in one line when ``auto`` chooses the reference path.
    """
    return resolve_kernels(cfg.kernels, xp, announce=announce)


def network_name(model: MLP | CNN) -> str:
    """``[784, 128, 10]`` for an MLP, ``CNN conv5x5x6same-pool2-...`` for a CNN."""
    if isinstance(model, CNN):
        return f"CNN {describe(model.layers)}"
    return str(model.sizes)
