"""Numerical gradients and the relative error: the two tools of a gradient check.

For every entry ``x[i]`` of an array, the central difference

    numerical[i] = (f(x + h e_i) - f(x - h e_i)) / (2 h)

estimates ``df/dx[i]`` with an error of order ``h**2`` (the Taylor terms of
even order cancel). ``f`` must return a scalar: a loss. To check a layer whose
output is an array, ``f(x)`` is replaced by ``sum(f(x) * dout)`` for a fixed
random upstream gradient ``dout``; its gradient is exactly what the layer's
``backward(dout, cache)`` returns (the "upstream-gradient form").

``x`` is perturbed in place (rounded to its dtype; the step divided by is the
one actually stored) and restored, on NumPy or CuPy; the differences are taken
on the host in float64. ``backprop.gradcheck.checker`` builds the full check on
these: a noise floor, ReLU kinks and a report.

Step size and tolerance by dtype (``POLICIES``)
    float64: ``h = 1e-5``, tolerance ``1e-7``. The rounding error
    ``eps |f| / h`` (eps = 2.2e-16) and the truncation error ``h**2 |f'''| / 6``
    balance near ``h = eps**(1/3) ~ 6e-6``; with ``h = 1e-5`` both are about
    1e-11 for a loss of order 1. On the random networks of the test suite the
    worst relative error of a correct gradient is about 3e-8, so 1e-7 leaves
    room (CS231n: "1e-7 and less you should be happy").
    float32: ``h = 1e-2``, tolerance ``1e-2``. eps is 1.2e-7, so the same
    balance gives ``h ~ 5e-3``; we take 1e-2, whose rounding error (about 3e-5
    for a loss of 2.3) is still small next to typical gradients. Even so, a
    correct float32 gradient shows relative errors of a few 1e-3, so the
    float32 check is loose: it catches wrong formulas (which err by 100% or
    more) but not subtle ones (a factor N / (N - 1)). Check new code in
    float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop.device import to_numpy
from backprop.errors import ConfigError

Array = Any  # a numpy.ndarray or cupy.ndarray
Index = tuple[int, ...]


@dataclass(frozen=True)
class Policy:
    """Step size and tolerance of the gradient check for one dtype.

    Attributes:
        step: h, the half-width of the central difference.
        rtol: the largest relative error that passes.
    """

    step: float
    rtol: float


POLICIES: dict[str, Policy] = {
    "float64": Policy(step=1e-5, rtol=1e-7),
    "float32": Policy(step=1e-2, rtol=1e-2),
}


def policy_for(dtype: Any) -> Policy:
    """The step size and tolerance for arrays of ``dtype`` (see module docstring).

    Raises:
        ConfigError: the dtype is not float32 or float64.
    """
    name = np.dtype(dtype).name
    if name not in POLICIES:
        raise ConfigError(
            f"no gradient-check policy for dtype {name}; "
            f"use one of {', '.join(POLICIES)}"
        )
    return POLICIES[name]


def _host_float64(array: Any) -> np.ndarray:
    """A number or an array from any device, as a float64 NumPy array."""
    if isinstance(array, int | float):
        return np.asarray(array, dtype=np.float64)
    return to_numpy(array).astype(np.float64)


def relative_error(analytic: Any, numerical: Any, floor: float = 0.0) -> np.ndarray:
    """Entrywise ``|a - n| / max(|a|, |n|, floor)``, on the host in float64.

    Two exact zeros have relative error 0. A NaN anywhere gives NaN.

    Args:
        analytic: gradient from the backward pass, any shape, any device.
        numerical: gradient from finite differences, same shape.
        floor: smallest denominator; below it the error is absolute / floor.

    Returns:
        float64 array of the common shape.
    """
    a = _host_float64(analytic)
    n = _host_float64(numerical)
    diff = np.abs(a - n)  # same shape as a
    scale = np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)  # same shape
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(diff == 0, 0.0, diff / scale)


def central_difference(
    f: Callable[[Array], float], x: Array, idx: tuple, h: float
) -> float:
    """``(f(x + h e_i) - f(x - h e_i)) / (x_up - x_down)`` for one entry ``idx``.

    ``x[idx]`` is moved in place and restored; ``f`` returns a Python float.
    """
    old = float(x[idx])
    x[idx] = old + h
    up = float(x[idx])  # what the dtype could store
    f_up = f(x)
    x[idx] = old - h
    down = float(x[idx])
    f_down = f(x)
    x[idx] = old
    return (f_up - f_down) / (up - down)


def numerical_gradient(
    f: Callable[[Array], Any], x: Array, h: float | None = None
) -> np.ndarray:
    """Central-difference gradient of a scalar function.

    ``x`` is perturbed in place and restored, so ``f`` may ignore its argument
    and read ``x`` through a closure (a model's parameter, for instance).

    Args:
        f: ``f(x)`` returns a scalar (a Python float or a 0-d array).
        x: point to differentiate at, any shape, NumPy or CuPy.
        h: step; None picks ``policy_for(x.dtype).step``.

    Returns:
        float64 NumPy array, shape of ``x``.
    """
    h = policy_for(x.dtype).step if h is None else float(h)
    grad = np.zeros(x.shape, dtype=np.float64)  # same shape as x
    for idx in np.ndindex(*x.shape):
        grad[idx] = central_difference(lambda z: float(f(z)), x, idx, h)
    return grad


def numerical_gradient_array(
    f: Callable[[Array], Array], x: Array, dout: Array, h: float | None = None
) -> np.ndarray:
    """Central-difference gradient of ``sum(f(x) * dout)``: the upstream form.

    This is what a layer's backward pass computes from its upstream gradient
    ``dout``: the vector-Jacobian product ``J^T dout``.

    Args:
        f: ``f(x)`` returns an array of the same shape as ``dout``.
        x: point to differentiate at, any shape, NumPy or CuPy.
        dout: upstream gradient, shape of ``f(x)``.
        h: step; None picks ``policy_for(x.dtype).step``.

    Returns:
        float64 NumPy array, shape of ``x``.
    """
    h = policy_for(x.dtype).step if h is None else float(h)
    dout_host = _host_float64(dout)  # shape of f(x)

    def weighted_sum(z: Array) -> float:
        return math.fsum((_host_float64(f(z)) * dout_host).ravel())

    grad = np.zeros(x.shape, dtype=np.float64)  # same shape as x
    for idx in np.ndindex(*x.shape):
        grad[idx] = central_difference(weighted_sum, x, idx, h)
    return grad


def sample_indices(
    shape: tuple[int, ...], max_entries: int | None, rng: np.random.Generator
) -> list[Index] | None:
    """A random subset of the indices of an array, or None for all of them.

    Args:
        shape: the array's shape.
        max_entries: how many to pick; None or 0 (or at least the size) for all.
        rng: the generator that picks.

    Returns:
        Sorted distinct indices, or None when every entry is to be checked.
    """
    size = math.prod(shape)
    if not max_entries or max_entries >= size:
        return None
    flat = np.sort(rng.choice(size, size=max_entries, replace=False))  # (k,)
    return [tuple(int(i) for i in np.unravel_index(k, shape)) for k in flat]
