"""Softmax and cross-entropy, fused for training and unfused for teaching.

Shapes: N is the batch size, C the number of classes. ``labels`` are integer
class indices, shape (N,). Losses are means over the batch, as Keras reports.

Three routes to the same gradient with respect to the logits:

* ``softmax_cross_entropy``: the fused, numerically stable route used for
  training; its gradient is ``(softmax(logits) - onehot) / N``.
* ``softmax_forward`` -> ``cross_entropy_forward``, then
  ``cross_entropy_backward`` -> ``softmax_backward``: the chain rule one node at
  a time, as a student derives it.
* The same chain with ``clip_eps=1e-7``: what Keras's categorical
  cross-entropy does to probabilities in eager mode (renormalise, then clip to
  ``[eps, 1 - eps]``), so the paper's TensorFlow loss can be reproduced exactly.
"""

from __future__ import annotations

from typing import Any

from backprop.device import xp_of

Array = Any  # a numpy.ndarray or cupy.ndarray

KERAS_EPSILON = 1e-7  # keras.config.epsilon(), the clip used on probabilities


def log_softmax(logits: Array) -> Array:
    """Stable log-softmax over the last axis (log-sum-exp after a max shift).

    Args:
        logits: shape (N, C).

    Returns:
        log-probabilities, shape (N, C).
    """
    xp = xp_of(logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)  # (N, C), max is 0
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))  # (N, C)


def softmax(logits: Array) -> Array:
    """Stable softmax over the last axis.

    Args:
        logits: shape (N, C).

    Returns:
        probabilities, shape (N, C); each row sums to 1.
    """
    xp = xp_of(logits)
    e = xp.exp(logits - logits.max(axis=-1, keepdims=True))  # (N, C)
    return e / e.sum(axis=-1, keepdims=True)  # (N, C)


def one_hot(labels: Array, num_classes: int, dtype: Any = "float32") -> Array:
    """One-hot rows for integer labels.

    Args:
        labels: integer class indices, shape (N,).
        num_classes: C.
        dtype: dtype of the result.

    Returns:
        shape (N, C), 1 at each label and 0 elsewhere.
    """
    xp = xp_of(labels)
    return (labels[:, None] == xp.arange(num_classes)).astype(dtype)  # (N, C)


def softmax_cross_entropy(logits: Array, labels: Array) -> tuple[Array, Array]:
    """Fused softmax + mean cross-entropy, and its gradient.

    Args:
        logits: shape (N, C).
        labels: integer class indices, shape (N,).

    Returns:
        loss: 0-d array, ``-mean(log softmax(logits)[i, labels[i]])``.
        dlogits: gradient of the loss, ``(softmax(logits) - onehot) / N``,
            shape (N, C).
    """
    xp = xp_of(logits)
    n = logits.shape[0]
    rows = xp.arange(n)  # (N,)
    log_probs = log_softmax(logits)  # (N, C)
    loss = -log_probs[rows, labels].mean()  # ()
    dlogits = xp.exp(log_probs)  # (N, C), the probabilities
    dlogits[rows, labels] -= 1
    dlogits /= n
    return loss, dlogits


def softmax_forward(logits: Array) -> tuple[Array, Array]:
    """Softmax as a graph node.

    Args:
        logits: shape (N, C).

    Returns:
        probs: shape (N, C).
        cache: ``probs``, all the backward pass needs.
    """
    probs = softmax(logits)  # (N, C)
    return probs, probs


def softmax_backward(dprobs: Array, cache: Array) -> Array:
    """Gradient through softmax: the Jacobian ``diag(p) - p p^T`` row by row.

    Args:
        dprobs: gradient of the loss with respect to the probabilities, (N, C).
        cache: ``probs`` from ``softmax_forward``, (N, C).

    Returns:
        dlogits: ``p * (dprobs - sum(dprobs * p))``, shape (N, C).
    """
    probs = cache
    return probs * (dprobs - (dprobs * probs).sum(axis=-1, keepdims=True))  # (N, C)


def cross_entropy_forward(
    probs: Array, labels: Array, *, clip_eps: float | None = None
) -> tuple[Array, tuple]:
    """Mean cross-entropy of probabilities, as a graph node.

    Args:
        probs: predicted probabilities, shape (N, C).
        labels: integer class indices, shape (N,).
        clip_eps: None for the exact loss ``-mean(log p[label])``. A number
            (Keras uses ``KERAS_EPSILON``) reproduces Keras's
            ``categorical_crossentropy(from_logits=False)`` in eager mode: each
            row is divided by its sum, then clipped to ``[eps, 1 - eps]``
            before the log.

    Returns:
        loss: 0-d array.
        cache: what ``cross_entropy_backward`` needs.
    """
    xp = xp_of(probs)
    rows = xp.arange(probs.shape[0])  # (N,)
    if clip_eps is None:
        picked = probs[rows, labels]  # (N,)
        return -xp.log(picked).mean(), (probs, labels, None, None)
    row_sums = probs.sum(axis=-1, keepdims=True)  # (N, 1)
    q = probs / row_sums  # (N, C), renormalised
    q_clipped = xp.clip(q, clip_eps, 1 - clip_eps)  # (N, C)
    loss = -xp.log(q_clipped[rows, labels]).mean()
    return loss, (q_clipped, labels, (q, row_sums), clip_eps)


def cross_entropy_backward(cache: tuple) -> Array:
    """Gradient of the mean cross-entropy with respect to the probabilities.

    Args:
        cache: from ``cross_entropy_forward``.

    Returns:
        dprobs: shape (N, C); ``-1 / (N p[label])`` at each label, 0 elsewhere,
            passed back through the clip and renormalisation when they were used.
    """
    p, labels, renorm, clip_eps = cache
    xp = xp_of(p)
    n = p.shape[0]
    rows = xp.arange(n)  # (N,)
    dp = xp.zeros_like(p)  # (N, C)
    dp[rows, labels] = -1.0 / (n * p[rows, labels])
    if renorm is None:
        return dp
    q, row_sums = renorm
    # tf.clip_by_value passes the gradient where eps <= q <= 1 - eps (inclusive).
    dq = dp * ((q >= clip_eps) & (q <= 1 - clip_eps))  # (N, C)
    # d(p_i / s)/d p_j = delta_ij / s - p_i / s^2, with s = sum(p).
    return (dq - (dq * q).sum(axis=-1, keepdims=True)) / row_sums  # (N, C)
