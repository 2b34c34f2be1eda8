"""Lecture 6, exercise 2: an L2 weight-decay term, its gradient, and its use.

The penalty is ``lam / 2 * sum(w ** 2)`` over the weights ``denseK.w`` only;
biases are not decayed.

Grade with ``python -m exercises.grade weight_decay``.
"""

from __future__ import annotations

import numpy as np

from backprop.model import MLP


def l2_penalty(
    params: dict[str, np.ndarray], lam: float
) -> tuple[float, dict[str, np.ndarray]]:
    """The weight-decay penalty and its gradient.

    Args:
        params: the model's parameters, name -> array.
        lam: the decay strength (lambda).

    Returns:
        penalty: ``lam / 2 * sum over weights of sum(w ** 2)``.
        grads: name -> gradient for every parameter (zeros for biases).
    """
    # TODO
    raise NotImplementedError("l2_penalty is not written yet")


def loss_and_grads_with_decay(
    model: MLP, x: np.ndarray, y: np.ndarray, lam: float
) -> tuple[float, dict[str, np.ndarray]]:
    """Cross-entropy plus the penalty, and the gradient of the sum.

    Args:
        model: the network.
        x: inputs, shape (N, D).
        y: integer labels, shape (N,).
        lam: the decay strength.

    Returns:
        ``(loss, grads)`` like ``model.loss_and_grads``, penalty included.
    """
    # TODO: model.loss_and_grads, plus l2_penalty
    raise NotImplementedError("loss_and_grads_with_decay is not written yet")
