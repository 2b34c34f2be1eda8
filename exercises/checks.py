"""What each exercise must do: a list of named checks per exercise.

A check takes the student's module and either returns (it passed; it may
return a short detail to print) or raises ``Wrong`` with what is wrong. The
gradients are judged by ``backprop.gradcheck``, the same checker the engine's
tests use, so a failing check prints the checker's report: the worst entry,
its index, the analytic and numerical values and their relative error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from backprop import gradcheck
from backprop.data import write_idx
from backprop.layers import dense_backward, dense_forward, relu_backward, relu_forward
from backprop.losses import softmax, softmax_cross_entropy
from backprop.model import MLP
from backprop.optim import SGD

Check = Callable[[ModuleType], str | None]


class Wrong(AssertionError):
    """A check found a wrong answer; the message says what and where."""


class Skipped(Exception):
    """A check cannot run here (e.g. TensorFlow is not installed)."""


def expect(condition: bool, message: str) -> None:
    """Raise ``Wrong(message)`` unless ``condition`` holds."""
    if not condition:
        raise Wrong(message)


def expect_reports(reports: list[gradcheck.GradCheckReport]) -> str:
    """Fail with the first failing gradient-check report; else summarise."""
    for report in reports:
        if not report.passed:
            raise Wrong("the gradient checker disagrees:\n" + str(report))
    worst = max(r.rel_error for r in reports)
    return f"max relative error {worst:.1e}"


@dataclass(frozen=True)
class Exercise:
    """One graded exercise.

    Attributes:
        name: module name under ``exercises/`` (and ``exercises/solutions/``).
        lecture: the lecture it belongs to.
        title: what it is about.
        checks: ``(description, check)`` pairs, run in order.
        needs: optional packages the checks import (they skip without them).
    """

    name: str
    lecture: int
    title: str
    checks: tuple[tuple[str, Check], ...]
    needs: tuple[str, ...] = ()  # packages beyond the core, e.g. ("tensorflow",)


# --- lecture 1 ----------------------------------------------------------------


def _idx_bytes(array: np.ndarray, tmp: str) -> bytes:
    """The IDX bytes of an array, written by the engine's own writer."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / tmp
        write_idx(path, array)
        return path.read_bytes()


def idx_shapes(mod: ModuleType) -> str:
    """parse_header reads type code and shape of engine-written IDX bytes."""
    for shape in [(60000, 28, 28), (10000,), (2, 3, 4, 5), (300, 8, 8)]:
        data = _idx_bytes(np.zeros(shape, np.uint8), "a.idx")
        got = mod.parse_header(data)
        expect(
            tuple(got) == (8, shape),
            f"parse_header of an array of shape {shape} returned {got}, "
            f"expected (8, {shape})",
        )
    return "4 shapes"


def idx_bad_magic(mod: ModuleType) -> None:
    """parse_header raises ValueError on a bad magic number."""
    good = _idx_bytes(np.zeros((3, 2), np.uint8), "b.idx")
    for bad in (b"\x01" + good[1:], good[:3] + b"\x00" + good[4:]):
        try:
            mod.parse_header(bad)
        except ValueError:
            continue
        raise Wrong(f"parse_header accepted bytes starting {bad[:4].hex(' ')}")


def idx_scale(mod: ModuleType) -> None:
    """flatten_and_scale gives (N, 784) float32 rows in [0, 1], row-major."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28)).astype(np.uint8)
    images[0, 0, 0], images[0, 1, 2] = 255, 0
    out = mod.flatten_and_scale(images)
    expect(out.shape == (5, 784), f"shape {out.shape}, expected (5, 784)")
    expect(out.dtype == np.float32, f"dtype {out.dtype}, expected float32")
    expect(out[0, 0] == 1.0, "pixel value 255 should become 1.0")
    expect(
        np.array_equal(out[:, 28 * 3 + 5], images[:, 3, 5] / np.float32(255)),
        "pixel (3, 5) should be column 3 * 28 + 5 = 89 (row-major), divided by 255",
    )


# --- lecture 2 ----------------------------------------------------------------


def forward_matches_model(mod: ModuleType) -> str:
    """mlp_forward equals MLP.forward for 1, 2 and 3 dense layers."""
    rng = np.random.default_rng(1)
    for sizes in ([6, 3], [6, 5, 3], [6, 4, 4, 3]):
        model = MLP(sizes, seed=2, dtype="float64")
        for name in model.params:
            if name.endswith(".b"):
                model.params[name] = rng.normal(0, 0.5, model.params[name].shape)
        x = rng.normal(size=(7, sizes[0]))  # (7, D)
        want, _ = model.forward(x)
        got = mod.mlp_forward(x, model.params)
        expect(
            np.shape(got) == want.shape,
            f"sizes {sizes}: shape {np.shape(got)}, expected {want.shape}",
        )
        expect(
            np.allclose(got, want, rtol=1e-12, atol=1e-12),
            f"sizes {sizes}: logits differ from MLP.forward by up to "
            f"{np.abs(got - want).max():.3g}",
        )
    return "sizes [6, 3], [6, 5, 3], [6, 4, 4, 3]"


def forward_no_relu_on_logits(mod: ModuleType) -> None:
    """mlp_forward leaves negative logits alone (no ReLU after the last layer)."""
    params = {"dense1.w": -np.eye(3), "dense1.b": np.zeros(3)}
    got = mod.mlp_forward(np.ones((2, 3)), params)
    expect(np.all(np.asarray(got) < 0), "the last layer's output was clipped at 0")


# --- lecture 3 ----------------------------------------------------------------


def lse_values(mod: ModuleType) -> None:
    """The logsumexp equals log(sum(exp(z))) on moderate logits, one value per row."""
    z = np.random.default_rng(3).normal(0, 3, size=(6, 10))
    got = mod.logsumexp(z)
    want = np.log(np.exp(z).sum(axis=1))
    expect(np.shape(got) == (6,), f"shape {np.shape(got)}, expected (6,)")
    expect(np.allclose(got, want, rtol=1e-12), "values differ from log(sum(exp(z)))")


def lse_stable(mod: ModuleType) -> None:
    """The logsumexp is finite and right for logits of +-1e4, and shift-invariant."""
    z = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]])
    with np.errstate(over="raise", invalid="raise"):
        try:
            got = np.asarray(mod.logsumexp(z))
        except FloatingPointError as exc:
            raise Wrong(f"{exc} on logits of 1e4: subtract the row maximum") from None
    want = np.array([1e4, -1e4 + math.log(3)])
    expect(np.allclose(got, want, rtol=1e-12), f"got {got}, expected {want}")
    z = np.random.default_rng(4).normal(size=(3, 5))
    expect(
        np.allclose(mod.logsumexp(z + 100.0), mod.logsumexp(z) + 100.0),
        "logsumexp(z + c) should be logsumexp(z) + c",
    )


def ce_gradient(mod: ModuleType) -> str:
    """cross_entropy is the engine's loss: its numerical gradient is (p - y) / N."""
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 2, size=(4, 5))  # (4, 5)
    labels = rng.integers(0, 5, size=4)  # (4,)
    want, dlogits = softmax_cross_entropy(logits, labels)
    got = mod.cross_entropy(logits, labels)
    expect(
        math.isclose(float(got), float(want), rel_tol=1e-12),
        f"cross_entropy {float(got):.6f}, expected {float(want):.6f}",
    )
    report = gradcheck.check_gradient(
        lambda z: mod.cross_entropy(z, labels), logits, dlogits, name="logits"
    )
    return expect_reports([report])


# --- lecture 4 ----------------------------------------------------------------


def leaky_forward(mod: ModuleType) -> None:
    """leaky_relu_forward is x where x > 0 and alpha * x elsewhere, dtype kept."""
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]], dtype=np.float32)
    for alpha in (0.01, 0.2):
        out, _ = mod.leaky_relu_forward(x, alpha)
        want = np.where(x > 0, x, alpha * x)
        expect(out.dtype == x.dtype, f"dtype {out.dtype}, expected {x.dtype}")
        expect(np.allclose(out, want), f"alpha={alpha}: got {out}, expected {want}")


def leaky_backward(mod: ModuleType) -> str:
    """leaky_relu_backward passes the gradient checker (float64, kinks excluded)."""
    rng = np.random.default_rng(6)
    reports = []
    for alpha in (0.01, 0.2):
        x = rng.normal(size=(4, 6))  # (4, 6)
        dout = rng.normal(size=(4, 6))  # (4, 6)
        _, cache = mod.leaky_relu_forward(x, alpha)
        dx = mod.leaky_relu_backward(dout, cache)
        reports += gradcheck.check_layer(
            lambda x, alpha=alpha: mod.leaky_relu_forward(x, alpha)[0],
            {"x": x},
            dout,
            {"x": dx},
            pre_activations=lambda x: [x],
        )
    return expect_reports(reports)


def leaky_at_zero(mod: ModuleType) -> None:
    """At exactly 0 the derivative is alpha, and backward keeps dout's dtype."""
    x = np.zeros((1, 3), dtype=np.float32)
    _, cache = mod.leaky_relu_forward(x, 0.1)
    dx = mod.leaky_relu_backward(np.ones((1, 3), dtype=np.float32), cache)
    expect(dx.dtype == np.float32, f"dtype {dx.dtype}, expected float32")
    expect(np.allclose(dx, 0.1), f"at x = 0 got {dx}, expected alpha = 0.1")


# The second 2-2-2 network of exercises/by_hand.py (the lecture's worked
# example has other numbers).
BY_HAND = {
    "x": [[2.0, 1.0]],
    "y": [1],
    "dense1.w": [[1.0, -2.0], [0.0, 1.0]],
    "dense1.b": [0.0, 1.0],
    "dense2.w": [[1.0, 0.0], [2.0, 1.0]],
    "dense2.b": [-1.0, 1.0],
}
BY_HAND_FORWARD = ("a1", "h", "z", "p", "loss")
BY_HAND_BACKWARD = ("dz", "dW2", "db2", "dh", "da1", "dW1", "db1")


def _by_hand_truth() -> dict[str, np.ndarray]:
    """Every entry of the by-hand table, computed by the engine's layers."""
    x, y = np.array(BY_HAND["x"]), np.array(BY_HAND["y"])
    w1, b1 = np.array(BY_HAND["dense1.w"]), np.array(BY_HAND["dense1.b"])
    w2, b2 = np.array(BY_HAND["dense2.w"]), np.array(BY_HAND["dense2.b"])
    a1, dense1 = dense_forward(x, w1, b1)  # (1, 2)
    h, relu = relu_forward(a1)  # (1, 2)
    z, dense2 = dense_forward(h, w2, b2)  # (1, 2)
    loss, dz = softmax_cross_entropy(z, y)  # (), (1, 2)
    dh, dw2, db2 = dense_backward(dz, dense2)
    da1 = relu_backward(dh, relu)
    _, dw1, db1 = dense_backward(da1, dense1, input_grad=False)
    values = {"a1": a1, "h": h, "z": z, "p": softmax(z), "loss": loss, "dz": dz}
    values |= {"dW2": dw2, "db2": db2, "dh": dh, "da1": da1, "dW1": dw1, "db1": db1}
    return {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}


def _table_entries(mod: ModuleType, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The student's entries ``names`` of ``TABLE``, as float arrays."""
    table = getattr(mod, "TABLE", None)
    expect(isinstance(table, dict), "exercises/by_hand.py must define TABLE, a dict")
    missing = [name for name in names if table.get(name) is None]
    if missing:
        raise NotImplementedError(f"TABLE entries not filled in: {', '.join(missing)}")
    entries = {}
    for name in names:
        try:
            entries[name] = np.asarray(table[name], dtype=np.float64)
        except (TypeError, ValueError):
            raise Wrong(
                f"TABLE[{name!r}] is not a number or a list of numbers"
            ) from None
    return entries


def _wrong_entries(mod: ModuleType, names: tuple[str, ...]) -> list[str]:
    """What is wrong with each of the student's entries ``names``."""
    truth, mine = _by_hand_truth(), _table_entries(mod, names)
    problems = []
    for name in names:
        if mine[name].shape != truth[name].shape:
            problems.append(
                f"{name}: shape {mine[name].shape}, expected {truth[name].shape}"
            )
        elif not np.allclose(mine[name], truth[name], rtol=1e-6, atol=1e-9):
            problems.append(f"{name}: {mine[name].tolist()} is not right")
    return problems


def by_hand_shapes(mod: ModuleType) -> str:
    """Every entry of TABLE is filled in, in the engine's shapes."""
    names = BY_HAND_FORWARD + BY_HAND_BACKWARD
    truth, mine = _by_hand_truth(), _table_entries(mod, names)
    wrong = [
        f"{n}: shape {mine[n].shape}, expected {truth[n].shape}"
        for n in names
        if mine[n].shape != truth[n].shape
    ]
    expect(not wrong, "; ".join(wrong))
    return f"{len(names)} entries"


def by_hand_forward(mod: ModuleType) -> None:
    """The forward values: a1, h, z, p and the loss."""
    problems = _wrong_entries(mod, BY_HAND_FORWARD)
    expect(not problems, "; ".join(problems))


def by_hand_backward(mod: ModuleType) -> None:
    """The gradients: dz, dW2, db2, dh, da1, dW1, db1."""
    problems = _wrong_entries(mod, BY_HAND_BACKWARD)
    hint = " (start from dz = p - y, then work back one node at a time)"
    expect(not problems, "; ".join(problems) + (hint if problems else ""))


def _model_with_biases(sizes: list[int], seed: int) -> MLP:
    """A float64 MLP with non-zero biases, so bias gradients are tested."""
    model = MLP(sizes, seed=seed, dtype="float64")
    rng = np.random.default_rng(seed + 100)
    for name, p in model.params.items():
        if name.endswith(".b"):
            p[...] = rng.normal(0, 0.3, p.shape)
    return model


def recursion_matches_engine(mod: ModuleType) -> str:
    """mlp_backward equals the engine's loss and gradients for 1 to 4 layers."""
    rng = np.random.default_rng(14)
    cases = []
    for sizes in ([6, 3], [6, 5, 3], [6, 5, 4, 3], [6, 5, 4, 4, 3]):
        x, y = rng.uniform(size=(7, 6)), rng.integers(0, 3, size=7)  # (7, 6), (7,)
        cases.append((_model_with_biases(sizes, seed=15), x, y))
    return _gradients_match_engine(mod.mlp_backward, cases, "yours")


def _gradients_match_engine(compute, cases, label: str) -> str:
    """``compute(params, x, y) -> (loss, grads)`` equals ``model.loss_and_grads``.

    Args:
        compute: the student's function.
        cases: ``(model, x, y)`` triples to compare on.
        label: what the student's values are called in a report.

    Returns:
        the largest relative error, for the grader's line.
    """
    worst = 0.0
    for model, x, y in cases:
        sizes = model.sizes
        want_loss, want = model.loss_and_grads(x, y)
        loss, grads = compute(model.params, x, y)
        expect(
            math.isclose(float(loss), float(want_loss), rel_tol=1e-12),
            f"sizes {sizes}: loss {float(loss):.8f}, engine {float(want_loss):.8f}",
        )
        expect(
            set(grads) == set(want), f"names {sorted(grads)}, expected {sorted(want)}"
        )
        for name in want:
            report = gradcheck.compare(
                name,
                np.asarray(grads[name]),
                want[name],
                dtype=np.float64,
                tolerance=1e-10,
                floor=1e-12,
                labels=(label, "engine"),
            )
            if not report.passed:
                raise Wrong(f"sizes {sizes}:\n{report}")
            worst = max(worst, report.rel_error)
    return f"max relative error {worst:.1e}"


def recursion_stable(mod: ModuleType) -> None:
    """mlp_backward stays finite for logits in the thousands (a stable softmax)."""
    model = _model_with_biases([4, 3, 3], seed=16)
    model.params["dense2.w"] *= 1000.0
    x, y = np.ones((2, 4)), np.array([0, 2])
    with np.errstate(over="raise", invalid="raise"):
        try:
            loss, grads = mod.mlp_backward(model.params, x, y)
        except FloatingPointError as exc:
            raise Wrong(f"{exc}: subtract each row's maximum logit first") from None
    want_loss, want = model.loss_and_grads(x, y)
    expect(
        math.isclose(float(loss), float(want_loss), rel_tol=1e-9),
        f"loss {float(loss)}, engine {float(want_loss)}",
    )
    expect(
        all(np.allclose(grads[k], want[k], rtol=1e-9, atol=1e-12) for k in want),
        "gradients differ from the engine's for large logits",
    )


def recursion_gradcheck(mod: ModuleType) -> str:
    """The gradient checker agrees with mlp_backward on a three-layer network."""
    model = _model_with_biases([5, 4, 4, 3], seed=17)
    rng = np.random.default_rng(18)
    x, y = rng.uniform(size=(4, 5)), rng.integers(0, 3, size=4)  # (4, 5), (4,)
    _, grads = mod.mlp_backward(model.params, x, y)

    def relu_inputs(_: np.ndarray) -> list[np.ndarray]:
        """The pre-activations A_1 .. A_{L-1}, the inputs of the ReLUs."""
        out, inputs = x, []
        for i in range(1, model.num_layers):
            out = out @ model.params[f"dense{i}.w"] + model.params[f"dense{i}.b"]
            inputs.append(out)
            out = np.maximum(out, 0)
        return inputs

    reports = [
        gradcheck.check_gradient(
            lambda _: mod.mlp_backward(model.params, x, y)[0],
            p,
            np.asarray(grads[name]),
            name=name,
            pre_activations=relu_inputs,
        )
        for name, p in model.params.items()
    ]
    return expect_reports(reports)


def cost_products(mod: ModuleType) -> str:
    """forward_flops and backward_flops count 2 M K P per product; no dX in layer 1."""
    cases = [([784, 128, 10], 256), ([10, 5], 4), ([8, 6, 4, 2], 3)]
    for sizes, n in cases:
        pairs = list(zip(sizes[:-1], sizes[1:]))
        forward = sum(2 * n * d * h for d, h in pairs)
        backward = sum(4 * n * d * h for d, h in pairs) - 2 * n * sizes[0] * sizes[1]
        got = mod.forward_flops(list(sizes), n)
        expect(got == forward, f"forward_flops({sizes}, {n}) = {got}, not {forward}")
        got = mod.backward_flops(list(sizes), n)
        expect(
            got == backward,
            f"backward_flops({sizes}, {n}) = {got}, expected {backward} "
            "(dW everywhere, dX everywhere but layer 1)",
        )
    return "3 networks"


def cost_numerical(mod: ModuleType) -> str:
    """numerical_forwards is two forward passes per weight and bias."""
    for sizes, want in (([784, 128, 10], 203540), ([10, 5], 110), ([3, 2, 2], 28)):
        got = mod.numerical_forwards(list(sizes))
        expect(got == want, f"numerical_forwards({sizes}) = {got}, expected {want}")
    return "203,540 for the paper's network"


# --- lecture 5 ----------------------------------------------------------------


def numgrad_cubic(mod: ModuleType) -> str:
    """numerical_gradient of sum(x ** 3) is 3 x ** 2, and x is left unchanged."""
    x = np.random.default_rng(7).normal(size=(3, 4))
    before = x.copy()
    got = mod.numerical_gradient(lambda x: float((x**3).sum()), x)
    expect(np.shape(got) == x.shape, f"shape {np.shape(got)}, expected {x.shape}")
    expect(np.array_equal(x, before), "x was changed; put every entry back")
    # entries below 1 are judged on their absolute error (a floor of 1)
    err = float(gradcheck.relative_error(3 * before**2, got, floor=1.0).max())
    expect(err < 1e-7, f"relative error {err:.2e} against 3 x^2 (expected < 1e-7)")
    return f"relative error {err:.1e}"


def numgrad_central(mod: ModuleType) -> None:
    """It is a central difference: second-order accurate, not forward."""
    x = np.array([0.3, -1.2])
    got = mod.numerical_gradient(lambda x: float(np.exp(x).sum()), x, h=1e-3)
    err = float(gradcheck.relative_error(np.exp(x), got).max())
    expect(
        err < 1e-5,
        f"with h = 1e-3 the error is {err:.1e}: a one-sided difference errs by "
        "about h / 2 = 5e-4, a central one by about h^2 / 6 = 2e-7",
    )


def relerr_behaves(mod: ModuleType) -> None:
    """rel_error: 0 for zeros (no NaN), scale-free, symmetric, a max over entries."""
    zero = mod.rel_error(np.zeros(3), np.zeros(3))
    expect(zero == 0, f"rel_error of two zero arrays is {zero}, expected 0")
    a, b = np.array([1e-10, 2.0]), np.array([2e-10, 2.0])
    expect(math.isclose(mod.rel_error(a, b), 0.5), "rel_error(1e-10, 2e-10) is 0.5")
    expect(
        math.isclose(mod.rel_error(a * 1e6, b * 1e6), mod.rel_error(a, b)),
        "rel_error must not depend on the scale",
    )
    expect(math.isclose(mod.rel_error(a, b), mod.rel_error(b, a)), "not symmetric")


# --- lecture 6 ----------------------------------------------------------------


def _momentum_reference(params, grads_list, lr, beta):
    """Heavy-ball momentum written out, for the checks."""
    p = {k: v.copy() for k, v in params.items()}
    vel = {k: np.zeros_like(v) for k, v in params.items()}
    for grads in grads_list:
        for k in p:
            vel[k] = beta * vel[k] + grads[k]
            p[k] = p[k] - lr * vel[k]
    return p


def momentum_steps(mod: ModuleType) -> str:
    """Three steps of Momentum equal v <- beta v + g, p <- p - lr v, in place."""
    rng = np.random.default_rng(8)
    params = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    grads_list = [
        {k: rng.normal(size=v.shape) for k, v in params.items()} for _ in "abc"
    ]
    want = _momentum_reference(params, grads_list, lr=0.1, beta=0.9)
    opt = mod.Momentum(lr=0.1, beta=0.9)
    moved = {k: v.copy() for k, v in params.items()}
    arrays = dict(moved)
    for t, grads in enumerate(grads_list, start=1):
        opt.step(moved, grads)
        if t == 1:
            first = {k: params[k] - 0.1 * grads[k] for k in params}
            for k in params:
                expect(
                    np.allclose(moved[k], first[k]),
                    f"step 1 of {k} should be p - lr g (v starts at zeros)",
                )
    for k in params:
        expect(moved[k] is arrays[k], f"{k} was replaced, not updated in place")
        expect(
            np.allclose(moved[k], want[k], rtol=1e-12),
            f"{k} after 3 steps differs from the formula by "
            f"{np.abs(moved[k] - want[k]).max():.3g}",
        )
    return "3 steps, 2 parameters"


def momentum_beats_sgd(mod: ModuleType) -> str:
    """On a long narrow valley, momentum gets lower than plain SGD in 100 steps."""

    def run(opt) -> float:
        p = {"w": np.array([1.0, 1.0])}
        scales = np.array([1.0, 0.01])  # curvatures of f = sum(scales * w^2) / 2
        for _ in range(100):
            opt.step(p, {"w": scales * p["w"]})
        return float((scales * p["w"] ** 2).sum() / 2)

    sgd, mom = run(SGD(lr=0.5)), run(mod.Momentum(lr=0.5, beta=0.9))
    expect(mom < sgd, f"momentum reached f = {mom:.3g}, SGD {sgd:.3g}")
    return f"f after 100 steps: SGD {sgd:.2e}, momentum {mom:.2e}"


def decay_penalty(mod: ModuleType) -> str:
    """l2_penalty: lam/2 sum w^2 over weights only; its gradient passes the checker."""
    model = MLP([5, 4, 3], seed=9, dtype="float64")
    model.params["dense1.b"] += 0.3
    lam = 0.1
    penalty, grads = mod.l2_penalty(model.params, lam)
    want = sum(
        0.5 * lam * float((p**2).sum())
        for n, p in model.params.items()
        if n.endswith(".w")
    )
    expect(
        math.isclose(float(penalty), want, rel_tol=1e-12),
        f"penalty {float(penalty):.6g}, expected {want:.6g} (biases are not decayed)",
    )
    expect(set(grads) == set(model.params), "grads must have every parameter's name")
    reports = [
        gradcheck.check_gradient(
            lambda _: mod.l2_penalty(model.params, lam)[0], p, grads[name], name=name
        )
        for name, p in model.params.items()
    ]
    return expect_reports(reports)


def decay_total(mod: ModuleType) -> str:
    """loss_and_grads_with_decay: the whole model's gradient passes the checker."""
    model = MLP([6, 5, 3], seed=10, dtype="float64")
    rng = np.random.default_rng(11)
    x, y = rng.uniform(size=(4, 6)), rng.integers(0, 3, size=4)
    loss, grads = mod.loss_and_grads_with_decay(model, x, y, 0.05)
    plain, _ = model.loss_and_grads(x, y)
    expect(
        float(loss) > float(plain), "the loss with decay should exceed the plain loss"
    )
    reports = [
        gradcheck.check_gradient(
            lambda _: mod.loss_and_grads_with_decay(model, x, y, 0.05)[0],
            p,
            grads[name],
            name=name,
            pre_activations=lambda _: [model.forward(x)[1][0][1]],
        )
        for name, p in model.params.items()
    ]
    return expect_reports(reports)


# --- lecture 7 ----------------------------------------------------------------


def _close(got: float, want: float, what: str) -> None:
    """Fail unless a number matches to 1e-9 relative."""
    expect(
        math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-12),
        f"{what} is {float(got):.10g}, expected {float(want):.10g}",
    )


def autodiff_gates(mod: ModuleType) -> str:
    """(x + y) z at (-2, 5, -4): f = -12, df/dx = df/dy = -4, df/dz = 3."""
    x, y, z = mod.Value(-2.0), mod.Value(5.0), mod.Value(-4.0)
    f = (x + y) * z
    _close(f.data, -12.0, "f = (x + y) z")
    f.backward()
    for name, v, want in (("x", x, -4.0), ("y", y, -4.0), ("z", z, 3.0)):
        _close(v.grad, want, f"df/d{name}")
    return "CS231n's example"


def autodiff_unary(mod: ModuleType) -> None:
    """relu, exp and log: values and derivatives (relu'(0) = 0, like the engine)."""
    for a, want in ((1.5, 1.0), (-0.5, 0.0), (0.0, 0.0)):
        v = mod.Value(a)
        out = v.relu()
        _close(out.data, max(a, 0.0), f"relu({a})")
        out.backward()
        _close(v.grad, want, f"d relu / dx at {a}")
    v = mod.Value(0.7)
    out = v.exp()
    out.backward()
    _close(out.data, math.exp(0.7), "exp(0.7)")
    _close(v.grad, math.exp(0.7), "d exp / dx at 0.7")
    v = mod.Value(2.5)
    out = v.log()
    out.backward()
    _close(out.data, math.log(2.5), "log(2.5)")
    _close(v.grad, 0.4, "d log / dx at 2.5")


def autodiff_forks(mod: ModuleType) -> str:
    """Gradients add where paths fork, in topological order (a diamond graph)."""
    x = mod.Value(3.0)
    square = x * x
    square.backward()
    _close(x.grad, 6.0, "d(x * x)/dx at 3 (both uses must add, with +=)")
    # a = 2x; b = a + a * a; c = b * a: a feeds b twice and c once
    x = mod.Value(0.5)
    a = x * 2.0
    b = a + a * a
    c = b * a
    c.backward()
    want = 2 * (2 * 2 * 0.5 + 3 * (2 * 0.5) ** 2)  # c = 4x^2 + 8x^3
    expect(
        math.isclose(x.grad, want, rel_tol=1e-12),
        f"dc/dx is {x.grad:g}, expected {want:g}: is every node's gradient complete "
        "(all its consumers done) before its _backward runs? Sort topologically.",
    )
    _close(c.data, 4 * 0.25 + 8 * 0.125, "c")
    return "x * x and a diamond"


def _value_network_loss(mod: ModuleType, params: dict, x: np.ndarray, y: np.ndarray):
    """The mean cross-entropy of an MLP, built from the student's Values."""
    weights = {
        name: [[mod.Value(w) for w in row] for row in p.tolist()]
        if p.ndim == 2
        else [mod.Value(b) for b in p.tolist()]
        for name, p in params.items()
    }
    layers = len(params) // 2
    total = mod.Value(0.0)
    for row, label in zip(x.tolist(), y.tolist()):
        out = [mod.Value(v) for v in row]
        for i in range(1, layers + 1):
            w, b = weights[f"dense{i}.w"], weights[f"dense{i}.b"]
            out = [
                sum((out[k] * w[k][j] for k in range(len(out))), b[j])
                for j in range(len(b))
            ]
            if i < layers:
                out = [v.relu() for v in out]
        log_sum = sum((v.exp() for v in out), mod.Value(0.0)).log()
        total = total + (log_sum - out[label])
    return total * (1.0 / len(x)), weights


def autodiff_matches_engine(mod: ModuleType) -> str:
    """An MLP built from Values has the engine's loss and gradients (within 1e-9)."""
    rng = np.random.default_rng(19)
    model = MLP([4, 5, 3], seed=20, dtype="float64")
    for name, p in model.params.items():
        if name.endswith(".b"):
            p[...] = rng.normal(0, 0.3, p.shape)
    x, y = rng.uniform(size=(3, 4)), np.array([0, 2, 1])  # (3, 4), (3,)
    want_loss, want = model.loss_and_grads(x, y)
    loss, weights = _value_network_loss(mod, model.params, x, y)
    _close(loss.data, float(want_loss), "the loss")
    loss.backward()
    for name, grad in want.items():
        mine = np.array(
            [[v.grad for v in row] for row in weights[name]]
            if grad.ndim == 2
            else [v.grad for v in weights[name]]
        )
        err = float(gradcheck.relative_error(mine, grad, floor=1e-12).max())
        expect(
            err < 1e-9,
            f"{name}: your gradient differs from the engine's by {err:.2e} "
            f"(relative), e.g. {mine.ravel()[:3]} against {grad.ravel()[:3]}",
        )
    return "a 4-5-3 network on 3 examples"


def tape_matches_engine(mod: ModuleType) -> str:
    """tape_gradients equals the engine's backward pass within 1e-10 (float64)."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        raise Skipped("TensorFlow is not installed (pip install -e '.[tf]')") from None
    rng = np.random.default_rng(12)
    cases = []
    for sizes in ([7, 5, 3], [7, 6, 4, 3]):
        x, y = rng.uniform(size=(5, sizes[0])), rng.integers(0, sizes[-1], size=5)
        cases.append((MLP(sizes, seed=13, dtype="float64"), x, y))
    return _gradients_match_engine(mod.tape_gradients, cases, "tape")


# --- lecture 8 ----------------------------------------------------------------


def batches_partition(mod: ModuleType) -> str:
    """Every index exactly once; full batches, then one smaller last batch."""
    for n, b in ((10, 3), (12, 4), (7, 10)):
        batches = mod.minibatch_indices(n, b, np.random.default_rng(0))
        sizes = [len(batch) for batch in batches]
        want = [b] * (n // b) + ([n % b] if n % b else [])
        expect(sizes == want, f"n={n}, batch {b}: sizes {sizes}, expected {want}")
        flat = np.sort(np.concatenate(batches))
        expect(
            np.array_equal(flat, np.arange(n)), f"n={n}: not a permutation of range(n)"
        )
    return "n = 10, 12, 7"


def batches_seeded(mod: ModuleType) -> None:
    """Same seed, same batches; another seed, another order."""
    a = mod.minibatch_indices(100, 32, np.random.default_rng(1))
    b = mod.minibatch_indices(100, 32, np.random.default_rng(1))
    c = mod.minibatch_indices(100, 32, np.random.default_rng(2))
    expect(
        all(np.array_equal(p, q) for p, q in zip(a, b)), "same seed, different batches"
    )
    expect(not np.array_equal(np.concatenate(a), np.concatenate(c)), "seed ignored")
    expect(
        not np.array_equal(np.concatenate(a), np.arange(100)),
        "the order is not shuffled",
    )


def batches_like_engine(mod: ModuleType) -> None:
    """The batches are those backprop.loop.train_epoch draws for the same seed.

    ``train_epoch`` draws one ``rng.permutation(n)`` per epoch and slices it.
    """
    mine = mod.minibatch_indices(50, 16, np.random.default_rng(5))
    order = np.random.default_rng(5).permutation(50)  # (50,)
    engine = [order[i : i + 16] for i in range(0, 50, 16)]
    expect(
        len(engine) == len(mine)
        and all(np.array_equal(p, q) for p, q in zip(mine, engine)),
        "your batches differ from the engine's: draw one rng.permutation(n) "
        "and slice it",
    )


# --- lecture 9 ----------------------------------------------------------------


def flops_step(mod: ModuleType) -> str:
    """step_flops counts 2 M K P per product; no dx in the first layer."""
    cases = {
        ((784, 128, 10), 256): 2 * 256 * (784 * 128 * 2 + 128 * 10 * 3),
        ((10, 5), 4): 2 * 4 * 10 * 5 * 2,
        ((8, 6, 4, 2), 3): 2 * 3 * (8 * 6 * 2 + 6 * 4 * 3 + 4 * 2 * 3),
    }
    for (sizes, n), want in cases.items():
        got = mod.step_flops(list(sizes), n)
        expect(got == want, f"step_flops({list(sizes)}, {n}) = {got}, expected {want}")
    return "3 networks"


def flops_epoch(mod: ModuleType) -> str:
    """epoch_flops handles the smaller last batch; the paper's epoch is 24.5 GFLOP."""
    got = mod.epoch_flops([784, 128, 10], 60000, 256)
    want = 60000 * 2 * (784 * 128 * 2 + 128 * 10 * 3)
    expect(got == want, f"epoch_flops of the paper's epoch = {got}, expected {want}")
    return f"{got / 1e9:.1f} GFLOP an epoch"


# --- lecture 10 ---------------------------------------------------------------


def sanity_ratios(mod: ModuleType) -> str:
    """update_ratios is ||after - before|| / ||before|| for every parameter."""
    rng = np.random.default_rng(21)
    before = {"w": rng.normal(size=(4, 3)), "b": rng.normal(size=3)}
    step = {"w": 1e-3 * rng.normal(size=(4, 3)), "b": np.zeros(3)}
    after = {k: before[k] + step[k] for k in before}
    got = mod.update_ratios(before, after)
    expect(set(got) == set(before), f"names {sorted(got)}, expected {sorted(before)}")
    for name in before:
        want = np.linalg.norm(step[name]) / np.linalg.norm(before[name])
        expect(
            math.isclose(float(got[name]), float(want), rel_tol=1e-9, abs_tol=1e-15),
            f"{name}: ratio {float(got[name]):.6g}, expected {float(want):.6g} "
            "(one norm over all entries, not a mean of entrywise ratios)",
        )
    zero = mod.update_ratios({"b": np.zeros(3)}, {"b": np.zeros(3)})
    expect(float(zero["b"]) == 0.0, "a zero parameter that did not move has ratio 0")
    return "2 parameters"


def sanity_dead(mod: ModuleType) -> None:
    """dead_fraction counts the units that are 0 for every example."""
    hidden = np.array([[0.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 3.0], [0.0, 0.5, 0.0, 0]])
    got = float(mod.dead_fraction(hidden))
    expect(
        math.isclose(got, 0.5),
        f"dead_fraction {got}, expected 0.5 (units 0 and 2 are dead)",
    )
    model = MLP([6, 8, 3], seed=22, dtype="float64")
    model.params["dense1.b"][:3] = -100.0  # three units off for every input
    h = model.forward(np.random.default_rng(23).uniform(size=(50, 6)))[1][0][1]
    got = float(mod.dead_fraction(h))
    want = 1.0 - (h > 0).any(axis=0).mean()
    expect(math.isclose(got, want), f"dead_fraction {got} of an MLP layer, not {want}")


def sanity_inits(mod: ModuleType) -> str:
    """he_std and glorot_limit match the formulas and the engine's own draws."""
    for n in (784, 128, 10):
        expect(
            math.isclose(mod.he_std(n), math.sqrt(2 / n), rel_tol=1e-12),
            f"he_std({n}) = {mod.he_std(n)}, expected sqrt(2 / {n})",
        )
    for a, b in ((784, 128), (128, 10)):
        want = math.sqrt(6 / (a + b))
        expect(
            math.isclose(mod.glorot_limit(a, b), want, rel_tol=1e-12),
            f"glorot_limit({a}, {b}) = {mod.glorot_limit(a, b)}, expected {want:.6g}",
        )
    he = MLP([784, 128, 10], seed=24, init="he", dtype="float64").params["dense1.w"]
    glorot = MLP([784, 128, 10], seed=24, init="glorot", dtype="float64")
    g = glorot.params["dense1.w"]
    expect(
        abs(float(he.std()) / mod.he_std(784) - 1) < 0.02,
        f"the engine's He weights have sd {float(he.std()):.4f}, "
        f"your he_std(784) is {mod.he_std(784):.4f}",
    )
    expect(
        float(np.abs(g).max()) <= mod.glorot_limit(784, 128)
        and float(np.abs(g).max()) > 0.99 * mod.glorot_limit(784, 128),
        f"the engine's Glorot weights reach {float(np.abs(g).max()):.4f}, "
        f"your glorot_limit(784, 128) is {mod.glorot_limit(784, 128):.4f}",
    )
    return f"He sd {mod.he_std(784):.4f}, Glorot limit {mod.glorot_limit(784, 128):.4f}"


def augment_bilinear(mod: ModuleType) -> str:
    """``bilinear`` agrees with map_coordinates, in and beyond the image."""
    from scipy import ndimage

    rng = np.random.default_rng(31)
    image = rng.uniform(size=(6, 9))
    rows = rng.uniform(-2.5, 8.5, size=(40,))
    cols = rng.uniform(-2.5, 11.5, size=(40,))
    rows[:4], cols[:4] = [0, 5, 2, -0.5], [0, 8, 3.5, 4]  # corners, a half, an edge
    got = np.asarray(mod.bilinear(image, rows, cols), dtype=np.float64)
    want = ndimage.map_coordinates(
        image, [rows, cols], order=1, mode="grid-constant", prefilter=False
    )
    expect(got.shape == want.shape, f"shape {got.shape}, expected {want.shape}")
    worst = int(np.argmax(np.abs(got - want)))
    expect(
        np.allclose(got, want, atol=1e-12),
        f"at ({rows[worst]:.3f}, {cols[worst]:.3f}): {got[worst]:.6f}, "
        f"expected {want[worst]:.6f} (zeros beyond the edge, not the edge repeated)",
    )
    return "40 positions"


def augment_rotate(mod: ModuleType) -> str:
    """``rotate`` turns about the centre as the engine's warp does."""
    from backprop.app.augment.reference import warp

    image = np.random.default_rng(32).uniform(size=(28, 28)).astype(np.float32)
    for degrees in (0.0, 10.0, -35.0, 90.0):
        t = math.radians(degrees)
        inverse = np.array(
            [[[math.cos(t), -math.sin(t), 0.0], [math.sin(t), math.cos(t), 0.0]]]
        )  # (1, 2, 3)
        want = warp(image[None], inverse, np.zeros((1, 2, 28, 28), np.float32))[0]
        got = np.asarray(mod.rotate(image, degrees), dtype=np.float64)
        expect(
            np.allclose(got, want, atol=1e-5),
            f"{degrees} degrees: max difference {np.abs(got - want).max():.3g} "
            "from the engine's warp",
        )
    return "4 angles"


EXERCISES: dict[str, Exercise] = {
    e.name: e
    for e in (
        Exercise(
            "idx_header",
            1,
            "read an IDX header; flatten and scale images",
            (
                ("parse_header reads type code and shape", idx_shapes),
                ("parse_header rejects a bad magic number", idx_bad_magic),
                ("flatten_and_scale: (N, 784) float32 in [0, 1]", idx_scale),
            ),
        ),
        Exercise(
            "forward",
            2,
            "the forward pass of an MLP of any depth",
            (
                ("mlp_forward equals MLP.forward", forward_matches_model),
                ("no ReLU after the last layer", forward_no_relu_on_logits),
            ),
        ),
        Exercise(
            "logsumexp",
            3,
            "a stable log-sum-exp and cross-entropy",
            (
                ("logsumexp values", lse_values),
                ("logsumexp is stable and shift-invariant", lse_stable),
                ("cross_entropy and its gradient check", ce_gradient),
            ),
        ),
        Exercise(
            "leaky_relu",
            4,
            "leaky ReLU forward and backward",
            (
                ("forward values and dtype", leaky_forward),
                ("backward passes the gradient checker", leaky_backward),
                ("derivative alpha at exactly 0", leaky_at_zero),
            ),
        ),
        Exercise(
            "by_hand",
            4,
            "a forward and backward pass by hand",
            (
                ("every entry filled in, in the engine's shapes", by_hand_shapes),
                ("forward values", by_hand_forward),
                ("gradients", by_hand_backward),
            ),
        ),
        Exercise(
            "backward_recursion",
            4,
            "the backward recursion (BP1-BP4) for any depth",
            (
                ("equal to the engine for 1 to 4 layers", recursion_matches_engine),
                ("stable for large logits", recursion_stable),
                ("passes the gradient checker", recursion_gradcheck),
            ),
        ),
        Exercise(
            "gradient_cost",
            4,
            "the cost of a gradient: backpropagation and finite differences",
            (
                ("FLOPs of the forward and backward products", cost_products),
                ("forward passes of central differences", cost_numerical),
            ),
        ),
        Exercise(
            "numerical_gradient",
            5,
            "central differences and relative error",
            (
                ("numerical gradient of sum(x^3)", numgrad_cubic),
                ("central, not one-sided", numgrad_central),
                ("rel_error behaves", relerr_behaves),
            ),
        ),
        Exercise(
            "momentum",
            6,
            "SGD with momentum",
            (
                ("three steps match the formula, in place", momentum_steps),
                ("faster than SGD on a narrow valley", momentum_beats_sgd),
            ),
        ),
        Exercise(
            "weight_decay",
            6,
            "an L2 weight-decay term",
            (
                ("the penalty and its gradient", decay_penalty),
                ("the whole model with decay", decay_total),
            ),
        ),
        Exercise(
            "autodiff",
            7,
            "reverse-mode autodiff of scalars, in about 60 lines",
            (
                ("add and multiply gates", autodiff_gates),
                ("relu, exp and log", autodiff_unary),
                ("forks add, in topological order", autodiff_forks),
                (
                    "an MLP of Values has the engine's gradients",
                    autodiff_matches_engine,
                ),
            ),
        ),
        Exercise(
            "tape_gradients",
            7,
            "the engine's gradients from tf.GradientTape",
            (("tape gradients equal the engine's", tape_matches_engine),),
            needs=("tensorflow",),
        ),
        Exercise(
            "minibatches",
            8,
            "mini-batches without replacement",
            (
                ("each index once; batch sizes", batches_partition),
                ("seeded and shuffled", batches_seeded),
                ("the same batches as train_epoch", batches_like_engine),
            ),
        ),
        Exercise(
            "flops",
            9,
            "counting the FLOPs of training",
            (
                ("FLOPs of one step", flops_step),
                ("FLOPs of one epoch", flops_epoch),
            ),
        ),
        Exercise(
            "sanity_checks",
            10,
            "update ratios, dead units and the scale of initial weights",
            (
                ("update/weight ratios", sanity_ratios),
                ("the share of dead units", sanity_dead),
                ("He's and Glorot's scales", sanity_inits),
            ),
        ),
        Exercise(
            "augmentation",
            11,
            "bilinear reads, and a rotation about the centre",
            (
                ("bilinear against scipy's map_coordinates", augment_bilinear),
                ("rotate against the engine's warp", augment_rotate),
            ),
            needs=("scipy",),
        ),
    )
}
