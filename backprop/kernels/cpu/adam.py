"""One Adam step over all parameters in a flat buffer: reference ``optim.Adam.step``."""

from __future__ import annotations

import math
from typing import Any

from backprop.kernels.cpu.compile import Array, check_shapes, jit

# --- optimizer ----------------------------------------------------------------


@jit
def _adam_keras(
    p: Array,
    g: Array,
    m: Array,
    v: Array,
    one_minus_b1: Any,
    one_minus_b2: Any,
    lr_t: Any,
    eps: Any,
) -> None:
    for k in range(p.shape[0]):
        m[k] += one_minus_b1 * (g[k] - m[k])
        v[k] += one_minus_b2 * (g[k] * g[k] - v[k])
        p[k] -= lr_t * m[k] / (math.sqrt(v[k]) + eps)


def adam_keras(
    p: Array,
    g: Array,
    m: Array,
    v: Array,
    one_minus_b1: float,
    one_minus_b2: float,
    lr_t: float,
    eps: float,
) -> None:
    """One Adam step in Keras's convention, over flat buffers, in place.

    Replaces the loop over parameters of ``optim.Adam.step`` in ``"keras"``
    mode, on flat buffers of every parameter, gradient and moment. Per element
    it does exactly that step's operations, in the same order and precision,
    so the results are bit-identical::

        m += (1 - b1) * (g - m)
        v += (1 - b2) * (g * g - v)
        p -= lr_t * m / (sqrt(v) + eps)   # lr_t * m first, then the division

    Args:
        p: parameters, shape (P,); updated.
        g: gradients, shape (P,).
        m: first moments, shape (P,); updated.
        v: second moments, shape (P,); updated.
        one_minus_b1: ``1 - beta1``, a Python float (computed in float64).
        one_minus_b2: ``1 - beta2``, a Python float.
        lr_t: the step size ``lr sqrt(1 - b2^t) / (1 - b1^t)`` with Keras's
            float32 lr and betas, as ``optim.Adam`` computes it.
        eps: epsilon, added to ``sqrt(v)``.

    Raises:
        ValueError: the buffers differ in shape or are not 1-D.
    """
    ok = p.ndim == 1 and p.shape == g.shape == m.shape == v.shape
    check_shapes("adam_keras", ok, p=p, g=g, m=m, v=v)
    dt = p.dtype.type
    _adam_keras(p, g, m, v, dt(one_minus_b1), dt(one_minus_b2), dt(lr_t), dt(eps))


@jit
def _adam_algorithm1(
    p: Array,
    g: Array,
    m: Array,
    v: Array,
    one_minus_b1: Any,
    one_minus_b2: Any,
    lr: Any,
    eps: Any,
    bc1: Any,
    bc2: Any,
) -> None:
    for k in range(p.shape[0]):
        m[k] += one_minus_b1 * (g[k] - m[k])
        v[k] += one_minus_b2 * (g[k] * g[k] - v[k])
        m_hat = m[k] / bc1
        v_hat = v[k] / bc2
        p[k] -= lr * m_hat / (math.sqrt(v_hat) + eps)


def adam_algorithm1(
    p: Array,
    g: Array,
    m: Array,
    v: Array,
    one_minus_b1: float,
    one_minus_b2: float,
    lr: float,
    eps: float,
    bc1: float,
    bc2: float,
) -> None:
    """One Adam step as the paper's Algorithm 1, over flat buffers, in place.

    Replaces the loop over parameters of ``optim.Adam.step`` in
    ``"algorithm1"`` mode, on flat buffers of every parameter, gradient and
    moment. Per element it does exactly that step's operations, in the same
    order and precision, so the results are bit-identical::

        m += (1 - b1) * (g - m)
        v += (1 - b2) * (g * g - v)
        m_hat = m / bc1
        v_hat = v / bc2
        p -= lr * m_hat / (sqrt(v_hat) + eps)

    Args:
        p: parameters, shape (P,); updated.
        g: gradients, shape (P,).
        m: first moments, shape (P,); updated.
        v: second moments, shape (P,); updated.
        one_minus_b1: ``1 - beta1``, a Python float (computed in float64).
        one_minus_b2: ``1 - beta2``, a Python float.
        lr: learning rate.
        eps: epsilon, added to ``sqrt(v_hat)``.
        bc1: ``1 - beta1**t``, a Python float.
        bc2: ``1 - beta2**t``, a Python float.

    Raises:
        ValueError: the buffers differ in shape or are not 1-D.
    """
    ok = p.ndim == 1 and p.shape == g.shape == m.shape == v.shape
    check_shapes("adam_algorithm1", ok, p=p, g=g, m=m, v=v)
    dt = p.dtype.type
    _adam_algorithm1(
        p,
        g,
        m,
        v,
        dt(one_minus_b1),
        dt(one_minus_b2),
        dt(lr),
        dt(eps),
        dt(bc1),
        dt(bc2),
    )
