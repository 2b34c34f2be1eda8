"""Solution of lecture 4, exercise 3: the backward recursion for any depth."""

from __future__ import annotations

import numpy as np


def mlp_backward(
    params: dict[str, np.ndarray], x: np.ndarray, labels: np.ndarray
) -> tuple[float, dict[str, np.ndarray]]:
    """Mean cross-entropy of an MLP and the gradient of every parameter (BP1-BP4).

    Args:
        params: ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ... as in ``MLP.params``.
        x: inputs, shape (N, D).
        labels: integer classes, shape (N,).

    Returns:
        loss: the mean cross-entropy, a float.
        grads: the same names and shapes as ``params``.
    """
    layers = len(params) // 2
    inputs, pre = [], []  # H_{l-1} and A_l of every layer
    out = x  # (N, D)
    for l in range(1, layers + 1):  # noqa: E741
        inputs.append(out)
        a = out @ params[f"dense{l}.w"] + params[f"dense{l}.b"]  # (N, H_l)
        pre.append(a)
        out = np.maximum(a, 0) if l < layers else a
    n = len(x)
    rows = np.arange(n)  # (N,)
    shifted = out - out.max(axis=1, keepdims=True)  # (N, C)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, C)
    loss = float(-log_p[rows, labels].mean())
    da = np.exp(log_p)  # (N, C): P
    da[rows, labels] -= 1
    da /= n  # BP1
    grads = {}
    for l in range(layers, 0, -1):  # noqa: E741
        grads[f"dense{l}.w"] = inputs[l - 1].T @ da  # BP4
        grads[f"dense{l}.b"] = da.sum(axis=0)  # BP3
        if l > 1:
            da = (da @ params[f"dense{l}.w"].T) * (pre[l - 2] > 0)  # BP2
    return loss, {name: grads[name] for name in params}
