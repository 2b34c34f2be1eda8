"""Solution of lecture 6, exercise 2: an L2 weight-decay term and its gradient."""

from __future__ import annotations

import numpy as np

from backprop.model import MLP


def l2_penalty(
    params: dict[str, np.ndarray], lam: float
) -> tuple[float, dict[str, np.ndarray]]:
    """The weight-decay penalty ``lam / 2 * sum(w ** 2)`` and its gradient ``lam w``.

    Args:
        params: the model's parameters, name -> array.
        lam: the decay strength.

    Returns:
        ``(penalty, grads)``; bias gradients are zeros.
    """
    penalty = 0.0
    grads = {}
    for name, p in params.items():
        if name.endswith(".w"):
            penalty += 0.5 * lam * float((p * p).sum())
            grads[name] = lam * p  # shape of p
        else:
            grads[name] = np.zeros_like(p)  # shape of p
    return penalty, grads


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
        ``(loss, grads)``.
    """
    loss, grads = model.loss_and_grads(x, y)
    penalty, decay = l2_penalty(model.params, lam)
    return float(loss) + penalty, {k: grads[k] + decay[k] for k in grads}
