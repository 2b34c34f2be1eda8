"""Gradient checking: compare a backward pass with central differences.

A backward pass is trusted once it agrees with the definition of a derivative.
For every entry ``x[i]`` of an array, the central difference

    numerical[i] = (f(x + h e_i) - f(x - h e_i)) / (2 h)

estimates ``df/dx[i]`` with an error of order ``h**2`` (the Taylor terms of
even order cancel). ``f`` must return a scalar: a loss. To check a layer whose
output is an array, ``f(x)`` is replaced by ``sum(f(x) * dout)`` for a fixed
random upstream gradient ``dout``; its gradient is exactly what the layer's
``backward(dout, cache)`` returns (the "upstream-gradient form").

The functions under test may run on NumPy or CuPy; the perturbations are made
in place on the function's own array (rounded to its dtype, and the step
actually stored is the one divided by), and the differences are taken on the
host in float64.

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
    network. ReLU outputs can stand in for
    pre-activations (``out > 0`` exactly where ``z > 0``); ``check_model`` uses
    the masks its forward pass already caches.

Optimizers
    An optimizer step has no derivative to check, but it has a formula.
    ``check_adam`` runs the engine's Adam for a few steps and compares the
    displacement of every parameter with Adam written out again here, in
    float64 on the host (``adam_reference``), through the same report type.

Run ``python -m backprop.gradcheck`` for the whole-model check of a small
random batch, printed as a table.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backprop.device import DEVICES, get_xp, to_device, to_numpy
from backprop.errors import BackpropError, ConfigError
from backprop.init import INITIALIZERS
from backprop.losses import softmax_cross_entropy
from backprop.model import DTYPES, MLP
from backprop.optim import ADAM_MODES, Adam
from backprop.train import parse_hidden

Array = Any  # a numpy.ndarray or cupy.ndarray
Index = tuple[int, ...]
# probe(x) -> (value, noise scale S, arrays whose "> 0" pattern is the ReLU state)
Probe = Callable[[Array], tuple[float, float, list[Array]]]

NOISE_FACTOR = 4.0  # safety factor on the rounding noise eps * S / h


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


# ---------------------------------------------------------------------------
# central differences


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
    for idx in indices:
        old = float(x[idx])
        x[idx] = old + h
        up = float(x[idx])  # what the dtype could store
        f_up, scale_up, state = probe(x)
        same_up = _same_masks(_relu_masks(state), masks_at_x)
        x[idx] = old - h
        down = float(x[idx])
        f_down, scale_down, state = probe(x)
        same_down = _same_masks(_relu_masks(state), masks_at_x)
        x[idx] = old
        derivative = (f_up - f_down) / (up - down)
        crossed = not (same_up and same_down)
        yield idx, derivative, crossed, max(scale_up, scale_down)


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


def _default_step(x: Array, h: float | None) -> float:
    """``h`` if given, else the policy's step for ``x``'s dtype."""
    return policy_for(x.dtype).step if h is None else float(h)


def numerical_gradient(
    f: Callable[[Array], Any], x: Array, h: float | None = None
) -> np.ndarray:
    """Central-difference gradient of a scalar function.

    ``x`` is perturbed in place and restored, so ``f`` may ignore its argument
    and read ``x`` through a closure (a model's parameter, for instance).

    Args:
        f: ``f(x)`` returns a scalar (a Python float or a 0-d array).
        x: point to differentiate at, any shape, NumPy or CuPy.
        h: step; None picks the policy's step for ``x.dtype``.

    Returns:
        float64 NumPy array, shape of ``x``: ``(f(x + h e_i) - f(x - h e_i)) / 2h``,
        where ``2h`` is the difference of the two values ``x[i]`` actually held.
    """
    h = _default_step(x, h)
    grad = np.zeros(x.shape, dtype=np.float64)  # same shape as x
    for idx, derivative, _, _ in _central_differences(
        _scalar_probe(f), x, h, _all_indices(x)
    ):
        grad[idx] = derivative
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
        h: step; None picks the policy's step for ``x.dtype``.

    Returns:
        float64 NumPy array, shape of ``x``.
    """
    h = _default_step(x, h)
    grad = np.zeros(x.shape, dtype=np.float64)  # same shape as x
    for idx, derivative, _, _ in _central_differences(
        _upstream_probe(f, dout), x, h, _all_indices(x)
    ):
        grad[idx] = derivative
    return grad


# ---------------------------------------------------------------------------
# reports


def _format_index(index: Index | None) -> str:
    """``(3, 7)`` as ``[3, 7]``, the way it is typed to read the entry."""
    return "-" if index is None else "[" + ", ".join(str(i) for i in index) + "]"


@dataclass
class GradCheckReport:
    """The outcome of checking one array's gradient (or one parameter's update).

    Attributes:
        name: what was checked, e.g. ``"dense1.w"``.
        shape: shape of the array.
        dtype: dtype of the array.
        worst_index: the entry with the largest relative error, or None when no
            entry was compared.
        analytic: the backward pass's value at ``worst_index``.
        numerical: the finite difference (or reference) value there.
        rel_error: relative error at ``worst_index`` (inf for a shape mismatch).
        tolerance: the largest relative error that passes.
        floor: smallest denominator of the relative error (see module docstring).
        step: h of the central difference (0 when no difference was taken).
        passed: ``rel_error <= tolerance``.
        kinks: entries excluded because their step crossed a ReLU kink.
        checked: number of entries compared (kinks excluded).
        note: why the check could not compare values, e.g. a shape mismatch.
        labels: names of the two values, ``("analytic", "numerical")``.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    worst_index: Index | None
    analytic: float
    numerical: float
    rel_error: float
    tolerance: float
    floor: float
    step: float
    passed: bool
    kinks: list[Index] = field(default_factory=list)
    checked: int = 0
    note: str = ""
    labels: tuple[str, str] = ("analytic", "numerical")

    @property
    def size(self) -> int:
        """Number of entries of the array."""
        return math.prod(self.shape)

    @property
    def verdict(self) -> str:
        """``"PASS"`` or ``"FAIL"``."""
        return "PASS" if self.passed else "FAIL"

    def __str__(self) -> str:
        shape = "x".join(str(d) for d in self.shape) or "scalar"
        lines = [f"{self.name} ({shape}, {self.dtype}): {self.verdict}"]
        if self.note:
            lines.append(f"  {self.note}")
        if self.worst_index is not None:
            compare = "<=" if self.passed else ">"
            lines.append(
                f"  max relative error {self.rel_error:.2e} {compare} tolerance "
                f"{self.tolerance:.0e}, at {_format_index(self.worst_index)}"
            )
            width = max(len(label) for label in self.labels)
            lines.append(f"  {self.labels[0]:<{width}}  {self.analytic: .10e}")
            lines.append(f"  {self.labels[1]:<{width}}  {self.numerical: .10e}")
        if self.step:
            lines.append(
                f"  step h {self.step:.0e}; errors of entries below "
                f"{self.floor:.1e} are measured against {self.floor:.1e}"
            )
        checked = f"  checked {self.checked} of {self.size} entries"
        if self.kinks:
            shown = ", ".join(_format_index(k) for k in self.kinks[:5])
            more = ", ..." if len(self.kinks) > 5 else ""
            checked += (
                f"; {len(self.kinks)} skipped where the step crosses a ReLU "
                f"kink: {shown}{more}"
            )
        lines.append(checked)
        return "\n".join(lines)


def _mismatch_report(
    name: str, x: Array, analytic: Array, tolerance: float, step: float
) -> GradCheckReport:
    """A failed report for an analytic gradient of the wrong shape."""
    return GradCheckReport(
        name=name,
        shape=tuple(x.shape),
        dtype=str(x.dtype),
        worst_index=None,
        analytic=math.nan,
        numerical=math.nan,
        rel_error=math.inf,
        tolerance=tolerance,
        floor=0.0,
        step=step,
        passed=False,
        note=(
            f"the {name} gradient has shape {tuple(analytic.shape)}, "
            f"but {name} has shape {tuple(x.shape)}"
        ),
    )


def compare(
    name: str,
    analytic: Array,
    numerical: np.ndarray,
    *,
    dtype: Any,
    tolerance: float,
    floor: float,
    step: float = 0.0,
    mask: np.ndarray | None = None,
    kinks: Sequence[Index] = (),
    labels: tuple[str, str] = ("analytic", "numerical"),
) -> GradCheckReport:
    """Build a report from two arrays of values.

    Args:
        name: what is being checked.
        analytic: values under test, any shape, any device.
        numerical: reference values, same shape (host float64).
        dtype: dtype of the checked array, for the report.
        tolerance: the largest relative error that passes.
        floor: smallest denominator of the relative error.
        step: h, for the report (0 when there was none).
        mask: boolean array, shape of ``analytic``; only True entries are
            compared (None compares all).
        kinks: entries excluded at ReLU kinks, for the report.
        labels: names of the two values in the report.

    Returns:
        The report; NaN in a compared entry counts as the worst error.
    """
    a = _host_float64(analytic)  # same shape as numerical
    errors = relative_error(a, numerical, floor)  # same shape
    errors = np.where(np.isnan(errors), np.inf, errors)
    if mask is None:
        mask = np.ones(errors.shape, dtype=bool)
    checked = int(mask.sum())
    if checked == 0:
        return GradCheckReport(
            name=name,
            shape=tuple(a.shape),
            dtype=str(np.dtype(dtype)),
            worst_index=None,
            analytic=math.nan,
            numerical=math.nan,
            rel_error=0.0,
            tolerance=tolerance,
            floor=floor,
            step=step,
            passed=True,
            kinks=list(kinks),
            note="no entry could be compared: every step crossed a ReLU kink",
            labels=labels,
        )
    worst = np.unravel_index(int(np.argmax(np.where(mask, errors, -1.0))), a.shape)
    worst = tuple(int(i) for i in worst)
    rel = float(errors[worst])
    return GradCheckReport(
        name=name,
        shape=tuple(a.shape),
        dtype=str(np.dtype(dtype)),
        worst_index=worst,
        analytic=float(a[worst]),
        numerical=float(numerical[worst]),
        rel_error=rel,
        tolerance=tolerance,
        floor=floor,
        step=step,
        passed=rel <= tolerance,
        kinks=list(kinks),
        checked=checked,
        labels=labels,
    )


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
        return _mismatch_report(name, x, analytic, rtol, h)
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


# ---------------------------------------------------------------------------
# Adam against its formula


def adam_reference(
    params: dict[str, Any],
    grads_sequence: Sequence[dict[str, Any]],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    mode: str,
) -> dict[str, np.ndarray]:
    """Parameters after Adam steps, from the formulas, in float64 on the host.

    For t = 1, 2, ...: ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``;
    then ``"algorithm1"`` (Kingma & Ba) steps by
    ``lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1^t)`` and
    ``v_hat = v / (1 - b2^t)``, and ``"keras"`` by
    ``lr_t * m / (sqrt(v) + eps)`` with ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``,
    where Keras holds lr, b1 and b2 as float32 numbers.

    Args:
        params: name -> starting values, any shape, any device.
        grads_sequence: one dict of gradients per step, shapes of ``params``.
        lr: learning rate.
        beta1: decay of the first moment.
        beta2: decay of the second moment.
        eps: epsilon.
        mode: ``"keras"`` or ``"algorithm1"``.

    Returns:
        name -> float64 NumPy array after ``len(grads_sequence)`` steps.
    """
    if mode not in ADAM_MODES:
        raise ConfigError(f"unknown Adam mode {mode!r}")
    p = {k: to_numpy(v).astype(np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(val) for k, val in p.items()}
    for t, grads in enumerate(grads_sequence, start=1):
        for name in p:
            g = to_numpy(grads[name]).astype(np.float64)  # shape of the parameter
            m[name] = beta1 * m[name] + (1 - beta1) * g
            v[name] = beta2 * v[name] + (1 - beta2) * g * g
            if mode == "algorithm1":
                m_hat = m[name] / (1 - beta1**t)
                v_hat = v[name] / (1 - beta2**t)
                p[name] = p[name] - lr * m_hat / (np.sqrt(v_hat) + eps)
            else:
                lr32, b1_32, b2_32 = (float(np.float32(c)) for c in (lr, beta1, beta2))
                lr_t = lr32 * math.sqrt(1 - b2_32**t) / (1 - b1_32**t)
                p[name] = p[name] - lr_t * m[name] / (np.sqrt(v[name]) + eps)
    return p


def check_adam(
    optimizer: Adam,
    params: dict[str, Array],
    grads_sequence: Sequence[dict[str, Array]],
    *,
    rtol: float | None = None,
) -> list[GradCheckReport]:
    """Check Adam's updates against ``adam_reference``, parameter by parameter.

    The optimizer (which must not have stepped yet) is copied and run on
    copies of ``params``; neither is changed. What is compared is each
    parameter's displacement ``p_T - p_0`` after all the steps, not ``p_T``
    itself, since a step is small next to the parameter.

    Args:
        optimizer: an ``Adam`` (or a variant with the same attributes) at t = 0.
        params: name -> array, NumPy or CuPy.
        grads_sequence: one dict of gradients per step, shapes of ``params``.
        rtol: tolerance; None picks ``policy_for(dtype).rtol``.

    Returns:
        One report per parameter, labelled ``optimizer`` vs ``reference``.
    """
    if optimizer.t != 0:
        raise ConfigError("check_adam needs an optimizer that has not stepped yet")
    opt = copy.deepcopy(optimizer)
    moved = {name: p.copy() for name, p in params.items()}
    for grads in grads_sequence:
        opt.step(moved, grads)
    expected = adam_reference(
        params,
        grads_sequence,
        lr=optimizer.lr,
        beta1=optimizer.beta1,
        beta2=optimizer.beta2,
        eps=optimizer.eps,
        mode=optimizer.mode,
    )
    reports = []
    for name, p0 in params.items():
        start = to_numpy(p0).astype(np.float64)  # shape of the parameter
        tolerance = policy_for(p0.dtype).rtol if rtol is None else float(rtol)
        if tuple(moved[name].shape) != start.shape:
            reports.append(_mismatch_report(name, p0, moved[name], tolerance, 0.0))
            continue
        # each step rounds p to its dtype: an absolute error of eps * |p|
        eps = float(np.finfo(p0.dtype).eps)
        size = max(1.0, float(np.abs(start).max(initial=0.0)))
        floor = NOISE_FACTOR * eps * size * len(grads_sequence) / tolerance
        reports.append(
            compare(
                name,
                to_numpy(moved[name]).astype(np.float64) - start,
                expected[name] - start,
                dtype=p0.dtype,
                tolerance=tolerance,
                floor=floor,
                labels=("optimizer", "reference"),
            )
        )
    return reports


# ---------------------------------------------------------------------------
# the class-room table


def format_table(reports: Sequence[GradCheckReport]) -> str:
    """A table with one row per report: shape, entries, kinks, error, verdict.

    Args:
        reports: from ``check_model`` (or any of the checks).

    Returns:
        The table as text, with a header line and a closing summary line.
    """
    headers = ("parameter", "shape", "checked", "kinks", "max rel error", "result")
    rows = [
        (
            r.name,
            "x".join(str(d) for d in r.shape) or "scalar",
            str(r.checked),
            str(len(r.kinks)),
            "-" if r.worst_index is None and r.passed else f"{r.rel_error:.2e}",
            r.verdict,
        )
        for r in reports
    ]
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(6)]
    left = (True, False, False, False, False, True)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if is_left else c.rjust(w)
            for c, w, is_left in zip(cells, widths, left)
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(row) for row in rows]
    failed = [r.name for r in reports if not r.passed]
    if failed:
        out.append(f"FAILED: {', '.join(failed)}")
    else:
        out.append(f"all {len(reports)} parameters pass")
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; every default is shown in ``--help``."""
    p = argparse.ArgumentParser(
        prog="python -m backprop.gradcheck",
        description=(
            "Check the MLP's backward pass against central differences on a "
            "small random batch and print one row per parameter."
        ),
        epilog="Exit status: 0 when every parameter passes, 1 otherwise.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--inputs", type=int, default=784, help="input width D")
    p.add_argument(
        "--hidden", type=parse_hidden, default="128", help="hidden widths, e.g. 32,16"
    )
    p.add_argument("--classes", type=int, default=10, help="number of classes C")
    p.add_argument("--batch-size", type=int, default=4, help="examples in the batch")
    p.add_argument(
        "--dtype", choices=DTYPES, default="float64", help="floating-point precision"
    )
    p.add_argument(
        "--init",
        choices=tuple(INITIALIZERS),
        default="paper",
        help="weight initialiser",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the weights, batch and sample"
    )
    p.add_argument(
        "--max-entries",
        type=int,
        default=2000,
        help="check this many random entries per parameter (0: every entry)",
    )
    p.add_argument("--device", choices=DEVICES, default="cpu", help="where to run")
    p.add_argument(
        "--verbose", action="store_true", help="print each parameter's full report"
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Build the model and batch the flags describe, check it, print the table."""
    for flag, value in (
        ("--inputs", args.inputs),
        ("--classes", args.classes),
        ("--batch-size", args.batch_size),
    ):
        if value < 1:
            raise ConfigError(f"{flag} must be >= 1, got {value}")
    if args.max_entries < 0:
        raise ConfigError(f"--max-entries must be >= 0, got {args.max_entries}")
    xp = get_xp(args.device)
    device = "cpu" if xp is np else "gpu"
    sizes = [args.inputs, *args.hidden, args.classes]
    model = MLP(sizes, seed=args.seed, dtype=args.dtype, device=device, init=args.init)
    rng = np.random.default_rng(args.seed + 1)
    # pixels in [0, 1] like MNIST, and non-zero biases so every path is exercised
    x = to_device(rng.uniform(0, 1, (args.batch_size, args.inputs)), xp)  # (N, D)
    x = x.astype(args.dtype)
    y = to_device(rng.integers(0, args.classes, args.batch_size), xp)  # (N,)
    for name, param in model.params.items():
        if name.endswith(".b"):
            bias = rng.normal(0, 0.1, param.shape).astype(args.dtype)  # (H,)
            model.params[name] = to_device(bias, xp)
    policy = policy_for(args.dtype)
    print(
        f"gradient check of MLP {sizes} ({args.init} init, {args.dtype}, "
        f"{device}) on a random batch of {args.batch_size}, seed {args.seed}"
    )
    print(
        f"central differences with h = {policy.step:.0e}; "
        f"pass: max relative error <= {policy.rtol:.0e}"
    )
    if args.max_entries:
        print(f"up to {args.max_entries} random entries per parameter")
    print(
        f"loss {model_loss(model, x, y):.6f} at the start "
        f"(chance level: ln {args.classes} = {math.log(args.classes):.6f})"
    )
    print()
    reports = check_model(model, x, y, max_entries=args.max_entries, seed=args.seed)
    print(format_table(reports))
    if args.verbose:
        for report in reports:
            print()
            print(report)
    return 0 if all(r.passed for r in reports) else 1


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ConfigError as exc:
        parser.error(str(exc))
    except BackpropError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 1


if __name__ == "__main__":
    sys.exit(main())
