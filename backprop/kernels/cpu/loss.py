"""The fused softmax cross-entropy: reference ``losses.softmax_cross_entropy``."""

from __future__ import annotations

import math
from typing import Any

from backprop.kernels.cpu.compile import Array, check_shapes, jit

# --- loss ---------------------------------------------------------------------


@jit
def _softmax_cross_entropy(
    logits: Array, labels: Array, dlogits: Array, db: Array, n_dt: Any
) -> tuple[float, int]:
    zero, one = logits.dtype.type(0), logits.dtype.type(1)
    n, c = logits.shape
    loss_sum = 0.0  # float64 on purpose: the mean over the batch
    correct = 0
    for i in range(n):
        y = labels[i]
        if y < 0 or y >= c:
            raise IndexError("softmax_cross_entropy: a label is out of range")
        # Row max and its first index (NaN wins, as in np.max and np.argmax).
        mx = logits[i, 0]
        best = 0
        for j in range(1, c):
            x = logits[i, j]
            if x > mx or (math.isnan(x) and not math.isnan(mx)):
                mx = x
                best = j
        if best == y:
            correct += 1
        # log-sum-exp of the shifted logits
        total = zero
        for j in range(c):
            total += math.exp(logits[i, j] - mx)
        log_total = math.log(total)
        # the example's loss -log p[y], and the gradient (p - onehot) / N,
        # with the probabilities p as exp of the log-softmax
        loss_sum -= (logits[i, y] - mx) - log_total
        for j in range(c):
            p = math.exp((logits[i, j] - mx) - log_total)
            if j == y:
                p -= one
            dlogits[i, j] = p / n_dt
    for j in range(c):
        db[j] = zero
    for i in range(n):  # rows in order, as NumPy's axis-0 sum adds them
        for j in range(c):
            db[j] += dlogits[i, j]
    return loss_sum / n, correct


def softmax_cross_entropy(
    logits: Array, labels: Array, dlogits: Array, db: Array
) -> tuple[float, int]:
    """Softmax, mean cross-entropy, its gradient, the bias gradient and accuracy.

    For each row, in one visit: the row max (and argmax), the sum of
    ``exp(logits - max)``, ``log_total`` its log, the example's loss
    ``-((logits[y] - max) - log_total)``, and the gradient
    ``dlogits[i, j] = (exp((logits[j] - max) - log_total) - [j == y]) / N``
    (probabilities as exp of the log-softmax, as the reference does). Then
    ``db[j] = sum_i dlogits[i, j]``, rows in order in the arrays' dtype.

    Replaces ``losses.softmax_cross_entropy``, plus
    ``(logits.argmax(1) == labels).sum()``, plus the ``db`` that
    ``layers.dense_backward`` computes as ``dout.sum(axis=0)`` for the last
    layer. The per-element operations are the reference's, in its precision;
    the results differ only because ``exp``/``log`` come from libm here (from
    NumPy's own SIMD code there, for float32) and because the row's
    exponentials are added in order (NumPy sums pairwise): a few ulps of the
    log-probabilities, carried into the probabilities (``tests/engine/test_kernels.py``
    states and asserts the measured bounds). The argmax, and so ``correct``,
    is exact. The per-example losses are summed in float64, in row order; for
    float32 data that is more precise than NumPy's float32 mean. A NaN logit
    makes the loss NaN, as in the reference.

    Args:
        logits: shape (N, C), N >= 1.
        labels: int64 class indices, shape (N,), each in [0, C).
        dlogits: output buffer for the gradient with respect to the logits,
            shape (N, C) (may be ``buf[:N]`` of a bigger buffer).
        db: output buffer for the bias gradient of the last layer, shape (C,).

    Returns:
        ``(loss, correct)``: the mean loss as a Python float, and how many rows
        have their argmax (the first maximum on ties, like ``np.argmax``) equal
        to the label.

    Raises:
        ValueError: the shapes do not match, or N or C is 0.
        IndexError: a label is out of range.
    """
    n, c = logits.shape
    ok = labels.shape == (n,) and dlogits.shape == (n, c) and db.shape == (c,)
    check_shapes(
        "softmax_cross_entropy",
        ok and n >= 1 and c >= 1,
        logits=logits,
        labels=labels,
        dlogits=dlogits,
        db=db,
    )
    loss, correct = _softmax_cross_entropy(
        logits, labels, dlogits, db, logits.dtype.type(n)
    )
    return float(loss), int(correct)
