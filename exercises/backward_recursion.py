"""Lecture 4, exercise 3: the backward recursion for an MLP of any depth.

With ``H_0 = x``, ``A_l = H_{l-1} W_l + b_l``, ``H_l = max(A_l, 0)`` for
``l < L`` and logits ``Z = A_L``, the gradients of the mean cross-entropy are

    (BP1) dA_L = (P - Y) / N                       (N, C)
    (BP2) dA_l = (dA_{l+1} W_{l+1}^T) * [A_l > 0]  (N, H_l), for l < L
    (BP3) db_l = dA_l summed over the batch        (H_l,)
    (BP4) dW_l = H_{l-1}^T dA_l                    (H_{l-1}, H_l)

Write them with NumPy alone (no ``backprop`` imports): a forward pass that keeps
what the backward pass needs, then one loop from ``l = L`` down to 1.

Grade with ``python -m exercises.grade backward_recursion``.
"""

from __future__ import annotations

import numpy as np


def mlp_backward(
    params: dict[str, np.ndarray], x: np.ndarray, labels: np.ndarray
) -> tuple[float, dict[str, np.ndarray]]:
    """Mean cross-entropy of an MLP and the gradient of every parameter.

    Args:
        params: ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ..., ``denseL.w``
            (H_{L-1}, C), ``denseL.b`` (C,), as in ``backprop.MLP.params``.
        x: inputs, shape (N, D).
        labels: integer classes, shape (N,).

    Returns:
        loss: the mean cross-entropy, a float.
        grads: the same names and shapes as ``params``.
    """
    # TODO: the forward pass (keep every H_{l-1} and A_l), a stable softmax,
    # then BP1, and BP2-BP4 in a loop over the layers from the last to the first
    raise NotImplementedError("mlp_backward is not written yet")
