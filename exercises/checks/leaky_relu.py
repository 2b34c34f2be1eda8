"""Checks of lecture 4's first exercise: leaky ReLU, forward and backward."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from backprop import gradcheck
from exercises.checks.core import Check, Wrong, array_of, expect, parts
from exercises.checks.mistakes import checked_array, expect_close, expect_reports

ALPHAS = (0.01, 0.2)
ROW = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]], dtype=np.float32)


def leaky(x: np.ndarray, alpha: float) -> np.ndarray:
    """The leaky ReLU itself, for the expected values."""
    return np.where(x > 0, x, alpha * x)


def forward_run(mod: ModuleType) -> list[Any]:
    """The forward pass's output for each alpha (the cache stays behind)."""
    outs = []
    for alpha in ALPHAS:
        out, _ = parts(mod.leaky_relu_forward(ROW.copy(), alpha), 2, "the result")
        outs.append(out)
    return outs


def forward_judge(outs: Any) -> None:
    """X where x > 0 and alpha * x elsewhere, dtype kept."""
    for alpha, out in zip(ALPHAS, parts(outs, len(ALPHAS), "the outputs")):
        got = array_of(out, "out")
        expect(got.dtype == ROW.dtype, f"dtype {got.dtype}, expected {ROW.dtype}")
        expect_close(got, leaky(ROW, alpha), f"alpha={alpha}: out", rtol=1e-6)


def _backward_inputs() -> list[tuple[float, np.ndarray, np.ndarray]]:
    """``(alpha, x, dout)`` in float64, x and dout (4, 6)."""
    rng = np.random.default_rng(6)
    return [(a, rng.normal(size=(4, 6)), rng.normal(size=(4, 6))) for a in ALPHAS]


def backward_run(mod: ModuleType) -> list[Any]:
    """Dx of the student's backward pass, for each alpha."""
    grads = []
    for alpha, x, dout in _backward_inputs():
        _, cache = parts(mod.leaky_relu_forward(x, alpha), 2, "the result")
        grads.append(mod.leaky_relu_backward(dout, cache))
    return grads


def backward_judge(grads: Any) -> str:
    """Dx agrees with central differences of the leaky ReLU (kinks excluded)."""
    cases = _backward_inputs()
    reports = []
    for (alpha, x, dout), dx in zip(cases, parts(grads, len(cases), "the results")):
        got = checked_array(dx, x, "dx")
        reports += gradcheck.check_layer(
            lambda x, alpha=alpha: leaky(x, alpha),
            {"x": x},
            dout,
            {"x": got.astype(np.float64)},
            pre_activations=lambda x: [x],
        )
        want = np.where(x > 0, dout, alpha * dout)  # (4, 6)
        try:
            expect_reports(reports, {"x": got}, {"x": want})
        except Wrong as exc:
            raise Wrong(f"alpha={alpha}: {exc}") from None
    return expect_reports(reports)


def zero_run(mod: ModuleType) -> Any:
    """Dx at x = 0 in float32."""
    x = np.zeros((1, 3), dtype=np.float32)
    _, cache = parts(mod.leaky_relu_forward(x, 0.1), 2, "the result")
    return mod.leaky_relu_backward(np.ones((1, 3), dtype=np.float32), cache)


def zero_judge(value: Any) -> None:
    """At exactly 0 the derivative is alpha, and backward keeps dout's dtype."""
    dx = checked_array(value, np.zeros((1, 3)), "dx")
    expect(dx.dtype == np.float32, f"dtype {dx.dtype}, expected float32")
    expect(np.allclose(dx, 0.1), f"at x = 0 got {dx.tolist()}, expected alpha = 0.1")


CHECKS = (
    Check("forward values and dtype", forward_run, forward_judge),
    Check("backward passes the gradient checker", backward_run, backward_judge),
    Check("derivative alpha at exactly 0", zero_run, zero_judge),
)
