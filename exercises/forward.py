"""Lecture 2, exercise 1: the forward pass of an MLP of any depth.

Grade with ``python -m exercises.grade forward``.
"""

from __future__ import annotations

import numpy as np


def mlp_forward(x: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """Logits of an MLP: dense layers with ReLU between them, none after the last.

    Args:
        x: inputs, shape (N, D).
        params: ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ..., ``denseK.w``
            (H_{K-1}, C), ``denseK.b`` (C,), as in ``backprop.MLP.params``.

    Returns:
        logits, shape (N, C).
    """
    # TODO: loop over k = 1 .. len(params) // 2; ReLU on every layer but the last
    raise NotImplementedError("mlp_forward is not written yet")
