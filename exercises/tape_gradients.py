"""Lecture 7, exercise 1: the engine's gradients, from TensorFlow's GradientTape.

Write the MLP's loss with TensorFlow operations (``tf.matmul``, ``tf.nn.relu``,
``tf.nn.sparse_softmax_cross_entropy_with_logits``, ``tf.reduce_mean``), record
it on a ``tf.GradientTape``, and return the tape's gradients under the
engine's names. Needs the ``tf`` extra.

Grade with ``python -m exercises.grade tape_gradients``.
"""

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
        ``(loss, grads)``: the loss as a float; grads name -> NumPy array with
        the names and shapes of ``params``.
    """
    # TODO: import tensorflow as tf; make a tf.Variable per parameter; ...
    raise NotImplementedError("tape_gradients is not written yet")
