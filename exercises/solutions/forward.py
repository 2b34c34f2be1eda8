"""Solution of lecture 2, exercise 1: the forward pass of an MLP of any depth."""

from __future__ import annotations

import numpy as np


def mlp_forward(x: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """Logits of an MLP: dense layers with ReLU between them, none after the last.

    Args:
        x: inputs, shape (N, D).
        params: ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ... as in ``MLP.params``.

    Returns:
        logits, shape (N, C).
    """
    layers = len(params) // 2
    out = x  # (N, D)
    for k in range(1, layers + 1):
        out = out @ params[f"dense{k}.w"] + params[f"dense{k}.b"]  # (N, H_k)
        if k < layers:
            out = np.maximum(out, 0)  # (N, H_k)
    return out
