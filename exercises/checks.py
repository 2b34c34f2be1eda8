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
from backprop.losses import softmax_cross_entropy
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
    """

    name: str
    lecture: int
    title: str
    checks: tuple[tuple[str, Check], ...]


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


def tape_matches_engine(mod: ModuleType) -> str:
    """tape_gradients equals the engine's backward pass within 1e-10 (float64)."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        raise Skipped("TensorFlow is not installed (pip install -e '.[tf]')") from None
    rng = np.random.default_rng(12)
    worst = 0.0
    for sizes in ([7, 5, 3], [7, 6, 4, 3]):
        model = MLP(sizes, seed=13, dtype="float64")
        x, y = rng.uniform(size=(5, sizes[0])), rng.integers(0, sizes[-1], size=5)
        want_loss, want = model.loss_and_grads(x, y)
        loss, grads = mod.tape_gradients(model.params, x, y)
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
                labels=("tape", "engine"),
            )
            if not report.passed:
                raise Wrong(f"sizes {sizes}:\n{report}")
            worst = max(worst, report.rel_error)
    return f"max relative error {worst:.1e}"


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
    """The batches are those backprop.train.train_epoch draws for the same seed.

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
            "tape_gradients",
            7,
            "the engine's gradients from tf.GradientTape",
            (("tape gradients equal the engine's", tape_matches_engine),),
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
    )
}
