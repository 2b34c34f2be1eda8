"""Solution of lecture 6, exercise 1: SGD with momentum."""

from __future__ import annotations

import numpy as np


class Momentum:
    """SGD with momentum: ``v <- beta v + g``, ``p <- p - lr v``.

    Args:
        lr: learning rate.
        beta: momentum coefficient in [0, 1).
    """

    def __init__(self, lr: float = 0.01, beta: float = 0.9) -> None:
        self.lr = lr
        self.beta = beta
        self.v: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update every parameter in place.

        Args:
            params: name -> array; updated in place.
            grads: name -> gradient, shapes of ``params``.
        """
        for name, p in params.items():
            v = self.v.setdefault(name, np.zeros_like(p))  # shape of p
            v *= self.beta
            v += grads[name]
            p -= self.lr * v
