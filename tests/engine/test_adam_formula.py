"""Adam against its formula: the optimizer's steps, written out again in float64.

An optimizer step has no derivative to check, but it has a formula.
``check_adam`` runs the engine's Adam for a few steps and compares the
displacement of every parameter with Adam written out again here, on the host
in float64 (``adam_reference``), through the gradient checker's report. The
TensorFlow parity tests pin Keras's Adam itself (tests/engine/test_tf_parity.py).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from backprop import gradcheck as gc
from backprop.device import to_numpy, xp_of
from backprop.errors import ConfigError
from backprop.gradcheck.report import GradCheckReport, mismatch_report
from backprop.model import MLP
from backprop.optim import ADAM_MODES, Adam

Array = Any  # a numpy.ndarray or cupy.ndarray


def small_params(xp, dtype, seed):
    model = MLP([5, 6, 6, 3], seed=seed, dtype=dtype)
    return {name: xp.asarray(to_numpy(p)) for name, p in model.params.items()}


def failing(reports):
    return {r.name for r in reports if not r.passed}


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
        rtol: tolerance; None picks ``gc.policy_for(dtype).rtol``.

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
        tolerance = gc.policy_for(p0.dtype).rtol if rtol is None else float(rtol)
        if tuple(moved[name].shape) != start.shape:
            reports.append(mismatch_report(name, p0, moved[name], tolerance, 0.0))
            continue
        # each step rounds p to its dtype: an absolute error of eps * |p|
        eps = float(np.finfo(p0.dtype).eps)
        size = max(1.0, float(np.abs(start).max(initial=0.0)))
        floor = gc.NOISE_FACTOR * eps * size * len(grads_sequence) / tolerance
        reports.append(
            gc.compare(
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


class AdamWithoutBiasCorrection(Adam):
    def step(self, params, grads):
        if not self.m:
            for name, p in params.items():
                xp = xp_of(p)
                self.m[name] = xp.zeros_like(p)
                self.v[name] = xp.zeros_like(p)
        self.t += 1
        for name, p in params.items():
            xp = xp_of(p)
            g, m, v = grads[name], self.m[name], self.v[name]
            m += (1 - self.beta1) * (g - m)
            v += (1 - self.beta2) * (g * g - v)
            # BUG: no 1 - beta^t corrections, in either convention
            p -= self.lr * m / (xp.sqrt(v) + self.eps)


def adam_case(xp, dtype, steps=3, seed=4):
    params = small_params(xp, dtype, seed)
    rng = np.random.default_rng(seed)
    grads_sequence = [
        {
            name: xp.asarray(rng.normal(0, 0.05, p.shape).astype(dtype))
            for name, p in params.items()
        }
        for _ in range(steps)
    ]
    return params, grads_sequence


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mode", ["keras", "algorithm1"])
def test_adam_matches_its_formula(xp, dtype, mode):
    params, grads_sequence = adam_case(xp, dtype)
    before = {k: to_numpy(v).copy() for k, v in params.items()}
    reports = check_adam(Adam(mode=mode), params, grads_sequence)
    assert [r.name for r in reports] == list(params)
    for r in reports:
        assert r.passed, str(r)
        assert r.labels == ("optimizer", "reference")
    for name, value in params.items():  # the check works on copies
        np.testing.assert_array_equal(to_numpy(value), before[name])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mode", ["keras", "algorithm1"])
def test_checker_catches_adam_without_bias_correction(xp, dtype, mode):
    params, grads_sequence = adam_case(xp, dtype)
    reports = check_adam(AdamWithoutBiasCorrection(mode=mode), params, grads_sequence)
    assert failing(reports) == set(params)
    text = str(reports[0])
    assert "FAIL" in text and "optimizer" in text and "reference" in text


def test_check_adam_wants_a_fresh_optimizer():
    params, grads_sequence = adam_case(np, "float64")
    opt = Adam()
    opt.step({k: v.copy() for k, v in params.items()}, grads_sequence[0])
    with pytest.raises(ConfigError, match="not stepped"):
        check_adam(opt, params, grads_sequence)
