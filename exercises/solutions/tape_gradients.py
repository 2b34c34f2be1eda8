"""Solution of lecture 7, exercise 1: gradients from TensorFlow's GradientTape."""

from __future__ import annotations

import numpy as np


def tape_gradients(
    params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
) -> tuple[float, dict[str, np.ndarray]]:
    """Mean cross-entropy of the MLP and its gradients, by automatic differentiation.

    Args:
        params: ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ... (any depth).
        x: inputs, shape (N, D).
        y: integer labels, shape (N,).

    Returns:
        ``(loss, grads)`` with the names and shapes of ``params``.
    """
    import tensorflow as tf

    variables = {name: tf.Variable(value) for name, value in params.items()}
    layers = len(params) // 2
    with tf.GradientTape() as tape:
        out = tf.constant(x)  # (N, D)
        for k in range(1, layers + 1):
            out = tf.matmul(out, variables[f"dense{k}.w"]) + variables[f"dense{k}.b"]
            if k < layers:
                out = tf.nn.relu(out)  # (N, H_k)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=out)
        )
    grads = tape.gradient(loss, variables)
    return float(loss), {name: g.numpy() for name, g in grads.items()}
