"""Lecture 6, exercise 1: SGD with momentum, in the style of ``backprop/optim.py``.

The heavy-ball update, for every parameter p with gradient g:

    v <- beta * v + g
    p <- p - lr * v

with v starting at zeros. Update the parameters in place, and keep one v per
parameter name.

Grade with ``python -m exercises.grade momentum``.
"""

from __future__ import annotations

import numpy as np


class Momentum:
    """SGD with momentum.

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
        # TODO
        raise NotImplementedError("Momentum.step is not written yet")
