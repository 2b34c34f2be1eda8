"""The gradient checker: central differences judged by a policy, kinks apart.

A backward pass is trusted once it agrees with the definition of a derivative
(``backprop.gradcheck.numerical``). This module decides what "agrees" means.

Relative error, and why it needs a floor
    ``|a - n| / max(|a|, |n|, floor)`` for analytic ``a`` and numerical ``n``.
    It does not care about the scale of the gradient, which is why it is the
    measure to look at (CS231n's advice). But a finite difference cannot
    resolve derivatives below its own rounding noise: ``f`` is computed with a
    relative error of about ``eps`` (the dtype's machine epsilon), so the
    difference quotient carries an absolute error of about ``eps * |f| / h``.
    A weight of a dead ReLU unit has analytic gradient exactly 0 and a
    numerical one of, say, 3e-12; their relative error would be 1, a false
    alarm. So the denominator never drops below ``floor = 4 eps S / (h rtol)``,
    where ``S`` is the size of ``f`` (``max(1, |f|)``, or ``sum(|out * dout|)``
    in the upstream form) and 4 is a safety factor: entries smaller than
    ``floor`` are judged on their absolute error, ``4 eps S / h``, which is the
    noise itself. A wrong backward pass errs by about the size of the gradient,
    far above that.

ReLU kinks
    ReLU's derivative jumps at 0. If moving ``x[i]`` by ``+-h`` pushes any
    pre-activation across 0, the central difference straddles the kink and
    measures an average of the two slopes: a correct backward pass looks wrong.
    Such entries are reported separately, in ``report.kinks``, and not failed.
    Detection is exact, not a guess from ``|z| < h``: the checker is given the
    pre-activations (a callable, ``pre_activations``) and records which ReLUs
    pass gradient (``z > 0``) at ``x``, ``x + h e_i`` and ``x - h e_i``. If
    the pattern is the same at all three points, no kink was crossed in
    between: the pre-activations of the first layer that ``x[i]`` feeds are
    affine in ``x[i]``, so each is positive (or not) on the whole interval when
    it is at both ends; then every ReLU of that layer is linear on the
    interval, so the next layer's ``z`` is affine too, and so on up the
    network. ReLU outputs can stand in for pre-activations (``out > 0``
    exactly where ``z > 0``); ``check_model`` uses its forward pass's caches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from backprop.device import to_numpy
from backprop.errors import ConfigError
from backprop.gradcheck.numerical import (
    central_difference,
    policy_for,
    sample_indices,
)
from backprop.gradcheck.report import GradCheckReport, compare, mismatch_report
from backprop.losses import softmax_cross_entropy
from backprop.model import MLP

Array = Any  # a numpy.ndarray or cupy.ndarray
Index = tuple[int, ...]
# probe(x) -> (value, noise scale S, arrays whose "> 0" pattern is the ReLU state)
Probe = Callable[[Array], tuple[float, float, list[Array]]]

NOISE_FACTOR = 4.0  # safety factor on the rounding noise eps * S / h


def noise_floor(dtype: Any, scale: float, step: float, rtol: float) -> float:
    """The smallest gradient a central difference resolves to ``rtol``.

    Args:
        dtype: dtype the function computes in; its epsilon sets the rounding.
        scale: size S of the function's value (``max(1, |f|)``, or
            ``sum(|out * dout|)`` in the upstream-gradient form).
        step: h.
        rtol: the tolerance.

    Returns:
        ``NOISE_FACTOR * eps * max(1, S) / (h * rtol)``.
    """
    eps = float(np.finfo(np.dtype(dtype)).eps)
    return NOISE_FACTOR * eps * max(1.0, scale) / (step * rtol)


def _relu_masks(arrays: Sequence[Array]) -> list[Array]:
    """Which ReLUs pass gradient: ``z > 0`` for each pre-activation array."""
    return [z > 0 for z in arrays]


def _same_masks(first: Sequence[Array], second: Sequence[Array]) -> bool:
    """True when two lists of boolean masks are equal entry by entry."""
    return all(bool((a == b).all()) for a, b in zip(first, second))


def _central_differences(
    probe: Probe, x: Array, h: float, indices: Iterable[Index]
) -> Iterator[tuple[Index, float, bool, float]]:
    """Perturb ``x`` in place, one entry at a time, and restore it.

    Args:
        probe: evaluates the function at the current ``x``.
        x: the array to differentiate with respect to; any shape, any device.
        h: step.
        indices: entries of ``x`` to visit.

    Yields:
        ``(index, derivative, crossed_kink, scale)`` per entry, where scale is
        the larger noise scale S of the two evaluations.
    """
    _, _, state = probe(x)
    masks_at_x = _relu_masks(state)
    scales: list[float] = []  # noise scale at x + h e_i and x - h e_i
    same: list[bool] = []  # whether the ReLU pattern there is the one at x

    def value(z: Array) -> float:
        f, scale, state = probe(z)
        scales.append(scale)
        same.append(_same_masks(_relu_masks(state), masks_at_x))
        return f

    for idx in indices:
        scales.clear()
        same.clear()
        derivative = central_difference(value, x, idx, h)  # visits x +- h e_i
        yield idx, derivative, not all(same), max(scales)


def _scalar_probe(
    f: Callable[[Array], Any],
    pre_activations: Callable[[Array], list[Array]] | None = None,
) -> Probe:
    """Probe for a scalar function: value ``f(x)``, noise scale ``|f(x)|``."""

    def probe(x: Array) -> tuple[float, float, list[Array]]:
        value = float(f(x))
        state = [] if pre_activations is None else pre_activations(x)
        return value, abs(value), state

    return probe


def _upstream_probe(
    f: Callable[[Array], Array],
    dout: Array,
    pre_activations: Callable[[Array], list[Array]] | None = None,
) -> Probe:
    """Probe for ``sum(f(x) * dout)``, summed exactly on the host in float64."""
    dout_host = to_numpy(dout).astype(np.float64)  # same shape as f(x)

    def probe(x: Array) -> tuple[float, float, list[Array]]:
        out = to_numpy(f(x)).astype(np.float64)  # same shape as dout
        if out.shape != dout_host.shape:
            raise ConfigError(
                f"f(x) has shape {out.shape} but dout has shape {dout_host.shape}"
            )
        terms = (out * dout_host).ravel()  # (out.size,)
        state = [] if pre_activations is None else pre_activations(x)
        return math.fsum(terms), float(np.abs(terms).sum()), state

    return probe


def _all_indices(x: Array) -> Iterator[Index]:
    """Every index of ``x``, in C order."""
    return np.ndindex(*x.shape)


def _check_with_probe(
    probe: Probe,
    x: Array,
    analytic: Array,
    *,
    name: str,
    h: float | None,
    rtol: float | None,
    floor: float | None,
    indices: Iterable[Index] | None,
) -> GradCheckReport:
    """``check_gradient`` for any probe (scalar or upstream form)."""
    policy = policy_for(x.dtype)
    h = policy.step if h is None else float(h)
    rtol = policy.rtol if rtol is None else float(rtol)
    if tuple(analytic.shape) != tuple(x.shape):
        return mismatch_report(name, x, analytic, rtol, h)
    numerical = np.zeros(x.shape, dtype=np.float64)  # same shape as x
    visited = np.zeros(x.shape, dtype=bool)  # entries compared
    kinks: list[Index] = []
    scale = 0.0
    todo = _all_indices(x) if indices is None else indices
    for idx, derivative, crossed, s in _central_differences(probe, x, h, todo):
        scale = max(scale, s)
        numerical[idx] = derivative
        if crossed:
            kinks.append(tuple(int(i) for i in idx))
        else:
            visited[idx] = True
    if floor is None:
        floor = noise_floor(x.dtype, scale, h, rtol)
    return compare(
        name,
        analytic,
        numerical,
        dtype=x.dtype,
        tolerance=rtol,
        floor=floor,
        step=h,
        mask=visited,
        kinks=kinks,
    )


def check_gradient(
    f: Callable[[Array], Any],
    x: Array,
    analytic: Array,
    *,
    name: str = "x",
    dout: Array | None = None,
    pre_activations: Callable[[Array], list[Array]] | None = None,
    h: float | None = None,
    rtol: float | None = None,
    floor: float | None = None,
    indices: Iterable[Index] | None = None,
) -> GradCheckReport:
    """Compare an analytic gradient with central differences, entry by entry.

    Args:
        f: ``f(x)`` returns a scalar loss; or, when ``dout`` is given, an array
            of the shape of ``dout`` (a layer's output). ``x`` is perturbed in
            place, so ``f`` may read it through a closure instead.
        x: the array the gradient is with respect to, any shape, NumPy or CuPy;
            restored on return.
        analytic: the backward pass's gradient, shape of ``x``.
        name: what ``x`` is, for the report.
        dout: upstream gradient, shape of ``f(x)``; the check is then of
            ``sum(f(x) * dout)``.
        pre_activations: ``pre_activations(x)`` returns the inputs of every ReLU
            the function applies (or their outputs); entries whose step
            changes which of them are positive are reported as kinks, not
            compared. None: no ReLU, or do not look.
        h: step; None picks ``policy_for(x.dtype).step``.
        rtol: tolerance; None picks ``policy_for(x.dtype).rtol``.
        floor: smallest denominator of the relative error; None estimates the
            rounding noise (see the module docstring).
        indices: entries of ``x`` to check; None checks all of them.

    Returns:
        A ``GradCheckReport``; a gradient of the wrong shape fails with a note.
    """
    if dout is None:
        probe = _scalar_probe(f, pre_activations)
    else:
        probe = _upstream_probe(f, dout, pre_activations)
    return _check_with_probe(
        probe, x, analytic, name=name, h=h, rtol=rtol, floor=floor, indices=indices
    )


def check_layer(
    forward: Callable[..., Array],
    inputs: dict[str, Array],
    dout: Array,
    analytic: dict[str, Array],
    *,
    pre_activations: Callable[..., list[Array]] | None = None,
    h: float | None = None,
    rtol: float | None = None,
    max_entries: int | None = None,
    seed: int = 0,
) -> list[GradCheckReport]:
    """Check a layer's gradients with respect to each of its inputs.

    Example, for the affine layer::

        out, cache = dense_forward(x, w, b)
        dx, dw, db = dense_backward(dout, cache)
        check_layer(lambda x, w, b: dense_forward(x, w, b)[0],
                    {"x": x, "w": w, "b": b}, dout, {"x": dx, "w": dw, "b": db})

    Args:
        forward: ``forward(**inputs)`` returns the layer's output, shape of
            ``dout``.
        inputs: name -> array; each is perturbed in turn and restored.
        dout: upstream gradient, shape of the output.
        analytic: name -> gradient from the backward pass, shapes of ``inputs``.
        pre_activations: ``pre_activations(**inputs)`` returns the ReLU inputs,
            for kink detection (``lambda x: [x]`` for ``relu_forward``).
        h: step; None picks the policy's.
        rtol: tolerance; None picks the policy's.
        max_entries: check at most this many random entries per input
            (None or 0: all).
        seed: seed of the generator that picks the entries.

    Returns:
        One report per entry of ``analytic``, in its order.
    """
    rng = np.random.default_rng(seed)

    def output(_: Array) -> Array:
        return forward(**inputs)

    def relu_inputs(_: Array) -> list[Array]:
        return pre_activations(**inputs)

    return [
        check_gradient(
            output,
            inputs[name],
            grad,
            name=name,
            dout=dout,
            pre_activations=None if pre_activations is None else relu_inputs,
            h=h,
            rtol=rtol,
            indices=sample_indices(tuple(inputs[name].shape), max_entries, rng),
        )
        for name, grad in analytic.items()
    ]


# ---------------------------------------------------------------------------
# the whole model


def model_loss(model: MLP, x: Array, y: Array) -> float:
    """The model's mean cross-entropy on a batch, as a Python float.

    Args:
        model: the network.
        x: inputs, shape (N, D).
        y: integer labels, shape (N,).
    """
    logits, _ = model.forward(x)  # (N, C)
    return float(softmax_cross_entropy(logits, y)[0])


def _model_probe(model: MLP, x: Array, y: Array) -> Probe:
    """Loss and ReLU outputs from one forward pass of the model."""

    def probe(_: Array) -> tuple[float, float, list[Array]]:
        logits, caches = model.forward(x)  # (N, C)
        loss = float(softmax_cross_entropy(logits, y)[0])
        relu_outputs = [relu for _, relu in caches if relu is not None]
        return loss, abs(loss), relu_outputs

    return probe


def check_model(
    model: MLP,
    x: Array,
    y: Array,
    grads: dict[str, Array] | None = None,
    *,
    h: float | None = None,
    rtol: float | None = None,
    max_entries: int | None = None,
    seed: int = 0,
) -> list[GradCheckReport]:
    """Check the gradient of the loss with respect to every model parameter.

    Args:
        model: the network; its parameters are perturbed in place and restored.
        x: inputs, shape (N, D), on the model's device.
        y: integer labels, shape (N,), on the model's device.
        grads: analytic gradients, name -> array shaped like the parameter;
            None computes them with ``model.loss_and_grads``.
        h: step; None picks the policy's for the model's dtype.
        rtol: tolerance; None picks the policy's.
        max_entries: check at most this many random entries per parameter
            (None or 0: all).
        seed: seed of the generator that picks the entries.

    Returns:
        One report per parameter, in ``model.params`` order. Entries whose
        step switches any ReLU on or off are listed as kinks.
    """
    if grads is None:
        _, grads = model.loss_and_grads(x, y)
    rng = np.random.default_rng(seed)
    probe = _model_probe(model, x, y)
    reports = []
    for name, param in model.params.items():
        if name not in grads:
            raise ConfigError(f"no analytic gradient for parameter {name}")
        reports.append(
            _check_with_probe(
                probe,
                param,
                grads[name],
                name=name,
                h=h,
                rtol=rtol,
                floor=None,
                indices=sample_indices(tuple(param.shape), max_entries, rng),
            )
        )
    return reports
