"""The checks of lecture 12's exercise: a convolution's backward pass.

The student's ``conv2d_backward`` is run on the cache of the exercise's own
``conv2d_forward`` and compared with the engine's ``backprop.layers``
gradients on shapes that catch the usual slips: one channel and several, an
even kernel (whose "same" padding is asymmetric), stride 2. A wrong answer
names its first wrong entry, and says so when the mistake is a flipped kernel
or a padding off by one.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from backprop import gradcheck
from backprop.layers import conv2d_backward, conv2d_forward
from exercises.checks import Exercise, Wrong, expect_reports

# (x shape (N, H, W, C), kernel shape (KH, KW, C, F), stride, padding)
CASES = (
    ((2, 5, 5, 1), (3, 3, 1, 2), 1, "valid"),
    ((2, 6, 7, 3), (4, 4, 3, 2), 1, "same"),
    ((1, 7, 6, 2), (3, 2, 2, 3), 2, "same"),
    ((2, 8, 8, 2), (5, 5, 2, 4), 2, "valid"),
)


def describe(case: tuple) -> str:
    """One case in words."""
    x_shape, w_shape, stride, padding = case
    return f"input {x_shape}, kernel {w_shape}, stride {stride}, padding {padding!r}"


def case_arrays(case: tuple, seed: int) -> tuple[np.ndarray, ...]:
    """x, w, b of a case, in float64."""
    x_shape, w_shape, _, _ = case
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal(x_shape),
        rng.standard_normal(w_shape),
        rng.standard_normal(w_shape[3]),
    )


def run_case(mod: ModuleType, case: tuple, seed: int = 0) -> dict:
    """The student's gradients, the engine's, and what the hints need."""
    x, w, b = case_arrays(case, seed)
    _, _, stride, padding = case
    out, cache = mod.conv2d_forward(x, w, b, stride, padding)
    dout = np.random.default_rng(seed + 1).standard_normal(out.shape)
    got = dict(zip(("dx", "dw", "db"), mod.conv2d_backward(dout, cache)))
    _, engine_cache = conv2d_forward(x, w, b, stride, padding)
    want = dict(zip(("dx", "dw", "db"), conv2d_backward(dout, engine_cache)))
    # what a flipped kernel gives: the engine with w[::-1, ::-1]
    _, flipped_cache = conv2d_forward(x, w[::-1, ::-1], b, stride, padding)
    flipped_dx = conv2d_backward(dout, flipped_cache)[0]
    # the gradient of the padded input, to try crops one row or column off
    xpad, top, left = cache[0], cache[3], cache[4]
    _, pad_cache = conv2d_forward(xpad, w, b, stride, "valid")
    dxpad = conv2d_backward(dout, pad_cache)[0]
    return {
        "got": got,
        "want": want,
        "flipped_dx": flipped_dx,
        "dxpad": dxpad,
        "top": top,
        "left": left,
    }


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to float64 rounding (relative to the largest entry of b)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(float(np.abs(b).max(initial=0.0)), 1e-300)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= 1e-9 * scale))


def first_wrong(name: str, got: np.ndarray, want: np.ndarray, case: tuple) -> str:
    """One line: the first entry (row-major) that differs, or the shape."""
    got = np.asarray(got)
    if got.shape != want.shape:
        return f"{name} has shape {got.shape}, expected {want.shape} ({describe(case)})"
    scale = max(float(np.abs(want).max(initial=0.0)), 1e-300)
    wrong = np.argwhere(np.abs(got - want) > 1e-9 * scale)
    index = tuple(int(i) for i in wrong[0])
    return (
        f"{name}{list(index)} is {got[index]:.6g}, the engine's is "
        f"{want[index]:.6g}; {len(wrong)} of {want.size} entries differ "
        f"({describe(case)})"
    )


def padding_hint(found: dict, case: tuple) -> str | None:
    """A hint when dx is the right gradient cropped one row or column off."""
    dx, dxpad = np.asarray(found["got"]["dx"]), found["dxpad"]
    _, h, w, _ = case[0]
    top, left = found["top"], found["left"]
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


def check_db(mod: ModuleType) -> str:
    """The bias gradient sums dout over the images and every position."""
    for case in CASES:
        found = run_case(mod, case)
        got, want = found["got"]["db"], found["want"]["db"]
        if not close(got, want):
            raise Wrong(first_wrong("db", got, want, case))
    return f"{len(CASES)} cases"


def check_dw(mod: ModuleType) -> str:
    """The kernel gradient correlates the padded input with dout."""
    for case in CASES:
        found = run_case(mod, case)
        got, want = np.asarray(found["got"]["dw"]), found["want"]["dw"]
        if close(got, want):
            continue
        message = first_wrong("dw", got, want, case)
        if got.shape == want.shape and close(got, want[::-1, ::-1]):
            message += (
                "\nhint: your dw is the engine's flipped in both directions: "
                "dw[i, j] pairs dout[y, x] with xpad[y*s + i, x*s + j], the entry "
                "kernel offset (i, j) multiplied in the forward pass"
            )
        raise Wrong(message)
    return f"{len(CASES)} cases"


def check_dx(mod: ModuleType) -> str:
    """The input gradient: each output's dout, through the kernel, onto its window."""
    for case in CASES:
        found = run_case(mod, case)
        got, want = np.asarray(found["got"]["dx"]), found["want"]["dx"]
        if close(got, want):
            continue
        message = first_wrong("dx", got, want, case)
        if got.shape == want.shape and close(got, found["flipped_dx"]):
            message += (
                "\nhint: the kernel is flipped. The forward pass does not flip it "
                "(out = sum xpad[y*s + i, x*s + j] w[i, j]), so entry (y*s + i, "
                "x*s + j) of dxpad receives w[i, j] . dout[y, x]; the flip "
                "appears only when dx is written as a convolution of dout"
            )
        hint = padding_hint(found, case)
        if hint is not None:
            message += "\n" + hint
        raise Wrong(message)
    return f"{len(CASES)} cases"


def check_gradcheck(mod: ModuleType) -> str:
    """The backward pass agrees with central differences of the forward pass."""
    reports = []
    for seed, case in enumerate(CASES[1:3]):
        x, w, b = case_arrays(case, seed + 10)
        _, _, stride, padding = case
        out, cache = mod.conv2d_forward(x, w, b, stride, padding)
        dout = np.random.default_rng(seed).standard_normal(out.shape)
        dx, dw, db = mod.conv2d_backward(dout, cache)

        def forward(x, w, b, stride=stride, padding=padding):
            return mod.conv2d_forward(x, w, b, stride, padding)[0]

        reports += gradcheck.check_layer(
            forward,
            {"x": x, "w": w, "b": b},
            dout,
            {"x": dx, "w": dw, "b": db},
        )
    return expect_reports(reports)


CONV_BACKWARD = Exercise(
    "conv_backward",
    12,
    "the backward pass of a convolution",
    (
        ("db: dout summed over every position", check_db),
        ("dw: the input correlated with dout", check_dw),
        ("dx: dout through the kernel, padding cropped", check_dx),
        ("passes the gradient checker", check_gradcheck),
    ),
)
