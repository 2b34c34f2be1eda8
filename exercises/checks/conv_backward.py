"""Checks of lecture 12's exercise: a convolution's backward pass.

The student's ``conv2d_backward`` runs on the cache of the exercise's own
``conv2d_forward``; the grader compares its ``dx``, ``dw`` and ``db`` with the
engine's (``backprop.conv``) on shapes that catch the usual slips: one channel
and several, an even kernel (whose "same" padding is asymmetric), stride 2. A
wrong answer names its first wrong entry, and says so when the mistake is a
flipped kernel or a padding off by one. Last, the engine's gradient checker
judges the student's gradients against central differences of the forward
pass.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from backprop import gradcheck
from backprop.conv import conv2d_backward, conv2d_forward, output_size, pad_input
from exercises.checks.core import Check, Wrong, array_of, parts
from exercises.checks.mistakes import checked_array, diagnose, expect_reports

# (x shape (N, H, W, C), kernel shape (KH, KW, C, F), stride, padding)
CASES = (
    ((2, 5, 5, 1), (3, 3, 1, 2), 1, "valid"),
    ((2, 6, 7, 3), (4, 4, 3, 2), 1, "same"),
    ((1, 7, 6, 2), (3, 2, 2, 3), 2, "same"),
    ((2, 8, 8, 2), (5, 5, 2, 4), 2, "valid"),
)
GRADCHECK = ((CASES[1], 10, 0), (CASES[2], 11, 1))  # case, seed of x w b, of dout
NAMES = ("dx", "dw", "db")


def describe(case: tuple) -> str:
    """One case in words."""
    x_shape, w_shape, stride, padding = case
    return f"input {x_shape}, kernel {w_shape}, stride {stride}, padding {padding!r}"


def case_arrays(case: tuple, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The inputs of a case in float64: x (N, H, W, C), w (KH, KW, C, F), b (F,)."""
    x_shape, w_shape, _, _ = case
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal(x_shape),
        rng.standard_normal(w_shape),
        rng.standard_normal(w_shape[3]),
    )


def student_grads(mod: ModuleType, case: tuple, seed: int, dout_seed: int) -> list[Any]:
    """``[dx, dw, db]`` of the student's backward pass on its forward's cache."""
    x, w, b = case_arrays(case, seed)
    _, _, stride, padding = case
    result = mod.conv2d_forward(x, w, b, stride, padding)
    out, cache = parts(result, 2, "conv2d_forward's result")
    dout = np.random.default_rng(dout_seed).standard_normal(np.shape(out))
    grads = mod.conv2d_backward(dout, cache)
    return list(parts(grads, 3, "conv2d_backward's result"))  # dx, dw, db


def engine(case: tuple, seed: int, dout_seed: int) -> dict[str, Any]:
    """The engine's gradients of a case, and what the hints compare with.

    Returns:
        ``dout``; ``dx``, ``dw``, ``db``; ``flipped_dx`` (the engine's dx with
        the kernel flipped in both directions); ``dxpad`` (the gradient of the
        padded input, uncropped); ``top`` and ``left`` (the zeros the forward
        pass added before the rows and the columns).
    """
    x, w, b = case_arrays(case, seed)
    x_shape, w_shape, stride, padding = case
    out, cache = conv2d_forward(x, w, b, stride, padding)  # out (N, OH, OW, F)
    dout = np.random.default_rng(dout_seed).standard_normal(out.shape)
    found = dict(zip(NAMES, conv2d_backward(dout, cache)))
    _, flipped_cache = conv2d_forward(x, w[::-1, ::-1], b, stride, padding)
    found["flipped_dx"] = conv2d_backward(dout, flipped_cache)[0]  # (N, H, W, C)
    xpad = pad_input(x, w_shape[0], w_shape[1], stride, padding)  # (N, Hp, Wp, C)
    _, pad_cache = conv2d_forward(xpad, w, b, stride, "valid")
    found["dxpad"] = conv2d_backward(dout, pad_cache)[0]  # (N, Hp, Wp, C)
    found["top"] = output_size(x_shape[1], w_shape[0], stride, padding)[1]
    found["left"] = output_size(x_shape[2], w_shape[1], stride, padding)[1]
    return found | {"dout": dout}


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to float64 rounding (relative to the largest entry of b)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(float(np.abs(b).max(initial=0.0)), 1e-300)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= 1e-9 * scale))


def first_wrong(name: str, got: np.ndarray, want: np.ndarray, case: tuple) -> str:
    """One line: the first entry (row-major) that differs, or the shape."""
    if got.shape != want.shape:
        return f"{name} has shape {got.shape}, expected {want.shape} ({describe(case)})"
    if got.dtype.kind not in "biuf":
        return f"{name} holds {got.dtype} entries, expected real numbers"
    g, w = got.astype(np.float64), want.astype(np.float64)
    scale = max(float(np.abs(w).max(initial=0.0)), 1e-300)
    wrong = np.argwhere(~(np.abs(g - w) <= 1e-9 * scale))  # NaN counts as wrong
    index = tuple(int(i) for i in wrong[0])
    message = (
        f"{name}{list(index)} is {g[index]:.6g}, the engine's is "
        f"{w[index]:.6g}; {len(wrong)} of {w.size} entries differ "
        f"({describe(case)})"
    )
    mistake = diagnose(g, w)
    return message + (f"; {mistake}" if mistake else "")


def padding_hint(dx: np.ndarray, found: dict[str, Any], case: tuple) -> str | None:
    """A hint when dx is the right gradient cropped one row or column off."""
    dxpad, top, left = found["dxpad"], found["top"], found["left"]
    _, h, w, _ = case[0]
    for dy in (-1, 0, 1):
        for dz in (-1, 0, 1):
            t, c = top + dy, left + dz
            if (dy, dz) == (0, 0) or min(t, c) < 0:
                continue
            crop = dxpad[:, t : t + h, c : c + w]
            if crop.shape == dx.shape and close(dx, crop):
                return (
                    f"hint: dx is the right gradient cropped {dy:+d} row(s) and "
                    f"{dz:+d} column(s) off: the padding is off by one. The forward "
                    f"pass added {top} row(s) on top and {left} column(s) on the "
                    "left ('same' puts pad_total // 2 before and the rest after); "
                    "crop dxpad[:, top : top + H, left : left + W]"
                )
    return None


def flipped_dw_hint(dw: np.ndarray, found: dict[str, Any], case: tuple) -> str | None:
    """A hint when dw is the engine's flipped in both directions."""
    if close(dw, found["dw"][::-1, ::-1]):
        return (
            "hint: your dw is the engine's flipped in both directions: "
            "dw[i, j] pairs dout[y, x] with xpad[y*s + i, x*s + j], the entry "
            "kernel offset (i, j) multiplied in the forward pass"
        )
    return None


def flipped_dx_hint(dx: np.ndarray, found: dict[str, Any], case: tuple) -> str | None:
    """A hint when dx is what the engine gives for the flipped kernel."""
    if close(dx, found["flipped_dx"]):
        return (
            "hint: the kernel is flipped. The forward pass does not flip it "
            "(out = sum xpad[y*s + i, x*s + j] w[i, j]), so entry (y*s + i, "
            "x*s + j) of dxpad receives w[i, j] . dout[y, x]; the flip "
            "appears only when dx is written as a convolution of dout"
        )
    return None


Hint = Callable[[np.ndarray, dict[str, Any], tuple], str | None]


def grads_run(name: str) -> Callable[[ModuleType], list[Any]]:
    """The ``run`` half that returns one gradient of every case."""
    index = NAMES.index(name)

    def run(mod: ModuleType) -> list[Any]:
        return [student_grads(mod, case, 0, 1)[index] for case in CASES]

    run.__doc__ = f"{name} of the student's backward pass, case by case."
    return run


def grads_judge(name: str, hints: tuple[Hint, ...]) -> Callable[[Any], str]:
    """The ``judge`` half: each case's ``name`` equals the engine's, else hints."""

    def judge(values: Any) -> str:
        for case, value in zip(CASES, parts(values, len(CASES), f"the {name}s")):
            got = array_of(value, f"{name} ({describe(case)})")
            found = engine(case, 0, 1)
            if close(got, found[name]):
                continue
            message = first_wrong(name, got, found[name], case)
            if got.shape == found[name].shape:
                message += "".join(
                    "\n" + text
                    for hint in hints
                    if (text := hint(got.astype(np.float64), found, case))
                )
            raise Wrong(message)
        return f"{len(CASES)} cases"

    judge.__doc__ = f"{name} equals the engine's on every case, up to rounding."
    return judge


def gradcheck_run(mod: ModuleType) -> list[list[Any]]:
    """``[dx, dw, db]`` of the student's backward pass for two cases."""
    return [student_grads(mod, case, seed, dout) for case, seed, dout in GRADCHECK]


def gradcheck_judge(values: Any) -> str:
    """The gradients agree with central differences of the engine's forward pass."""
    reports = []
    for (case, seed, dout_seed), grads in zip(
        GRADCHECK, parts(values, len(GRADCHECK), "the results")
    ):
        x, w, b = case_arrays(case, seed)
        _, _, stride, padding = case
        found = engine(case, seed, dout_seed)
        inputs = {"x": x, "w": w, "b": b}
        got = {
            key: checked_array(value, inputs[key], f"d{key} ({describe(case)})")
            for key, value in zip(inputs, parts(grads, 3, "conv2d_backward's result"))
        }
        reports += gradcheck.check_layer(
            lambda x, w, b, stride=stride, padding=padding: conv2d_forward(
                x, w, b, stride, padding
            )[0],
            inputs,
            found["dout"],
            {key: value.astype(np.float64) for key, value in got.items()},
        )
        want = {key: found[f"d{key}"] for key in inputs}
        try:
            expect_reports(reports, got, want)
        except Wrong as exc:
            raise Wrong(f"{describe(case)}: {exc}") from None
    return expect_reports(reports)


CHECKS = (
    Check(
        "db: dout summed over every position", grads_run("db"), grads_judge("db", ())
    ),
    Check(
        "dw: the input correlated with dout",
        grads_run("dw"),
        grads_judge("dw", (flipped_dw_hint,)),
    ),
    Check(
        "dx: dout through the kernel, padding cropped",
        grads_run("dx"),
        grads_judge("dx", (flipped_dx_hint, padding_hint)),
    ),
    Check("passes the gradient checker", gradcheck_run, gradcheck_judge),
)
