"""The checks of ``tensor_autodiff`` (lecture 7a): autodiff of arrays.

Each check takes the student's module and returns, or raises ``Wrong`` naming the
mistake. Each operation is tested alone: set ``out.grad``, call ``out._backward()``
(twice: gradients must accumulate), compare with Lecture 4's formula, and name
the known mistakes. Shapes are checked before any arithmetic, so a wrong shape is
reported with both shapes, never as an error in these checks.
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np

from backprop.model import MLP
from exercises.checks import Exercise, Wrong, expect

RTOL, ATOL = 1e-9, 1e-12  # one operation, two ways of writing it: rounding only
ENGINE_TOLERANCE = 1e-12  # the largest difference / the largest gradient entry
ENGINE_CASES = (([6, 3], 7), ([6, 5, 3], 5), ([6, 5, 4, 3], 3), ([784, 128, 10], 12))
ACCUMULATE = "gradients overwritten instead of accumulated: add to it with += (a "
ACCUMULATE += "Tensor used twice gets the sum of both gradients)"


def _close(got: np.ndarray, want: np.ndarray) -> bool:
    return got.shape == want.shape and bool(np.allclose(got, want, RTOL, ATOL))


def _shaped(value: object, shape: tuple[int, ...], what: str, hint: str) -> np.ndarray:
    """``value`` as a float64 array of ``shape``, or ``Wrong`` naming both shapes."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise Wrong(f"{what} is not an array of numbers ({exc})") from None
    expect(
        array.shape == tuple(shape),
        f"{what} has shape {array.shape}, expected {tuple(shape)}: {hint}",
    )
    return array


def _judge(got: np.ndarray, want: np.ndarray, what: str, known=()) -> None:
    """``got`` must be ``want``; else name a ``known`` mistake, a sign, or how far."""
    if _close(got, want):
        return
    for wrong, message in known:
        if _close(got, np.asarray(wrong, dtype=np.float64)):
            raise Wrong(f"{what}: {message}")
    if _close(got, -want):
        raise Wrong(f"{what}: a flipped sign")
    raise Wrong(f"{what}: off by up to {float(np.abs(got - want).max()):.3g}")


def _run_backward(out: object, upstream: np.ndarray, what: str, hint: str) -> None:
    """Set ``out.grad`` and call ``out._backward()``; a shape error named as such."""
    out.grad = upstream.copy()
    try:
        out._backward()
    except ValueError as exc:  # NumPy refused to add arrays of different shapes
        raise Wrong(f"{what}: backward raised ValueError ({exc}): {hint}") from None


def _accumulates(out: object, upstream: np.ndarray, inputs: dict, op: str) -> None:
    """A second ``_backward`` call must add the same gradients again (``+=``)."""
    once = {name: np.array(t.grad, dtype=np.float64) for name, t in inputs.items()}
    _run_backward(out, upstream, f"{op}, called again", "the shapes changed")
    for name, t in inputs.items():
        twice = np.asarray(t.grad, dtype=np.float64)
        one = f"{op}: after _backward ran twice, {name}.grad holds one gradient"
        expect(_close(twice, 2 * once[name]), f"{one}: {ACCUMULATE}")


# --- the operations, one at a time ------------------------------------------------

_UNBROADCAST_CASES = (  # the gradient's shape, the input's, how to get there
    ((4, 10), (10,), "sum over the broadcast batch axis (axis 0)"),
    ((4, 10), (1, 10), "sum over axis 0, where the input has length 1, keepdims=True"),
    ((4, 10), (4, 1), "sum over axis 1, where the input has length 1, keepdims=True"),
    ((2, 3, 4), (4,), "sum over the two leading axes the input lacks"),
    ((2, 3, 4), (3, 1), "sum over the leading axis, then over the last (keepdims)"),
    ((4, 10), (4, 10), "nothing was broadcast: return the gradient as it is"),
    ((4, 10), (), "a 0-d input was copied everywhere: sum every entry"),
)


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    stretched = tuple(k for k, n in enumerate(shape) if n == 1)
    return grad.sum(axis=stretched, keepdims=True).reshape(shape)


def _mean_for_sum(grad: np.ndarray, shape: tuple[int, ...], hint: str) -> list:
    """The mistake of averaging over the broadcast axes, as a ``known`` pair."""
    copies = grad.size // max(math.prod(shape), 1)
    message = f"the mean over the broadcast axes, not the sum ({hint})"
    return [(_unbroadcast(grad, shape) / copies, message)] if copies > 1 else []


def unbroadcast_sums(mod: ModuleType) -> str:
    """The gradient of broadcasting: sums over leading axes and axes of length 1."""
    rng = np.random.default_rng(70)
    for grad_shape, shape, hint in _UNBROADCAST_CASES:
        grad = rng.normal(size=grad_shape)
        what = f"unbroadcast(grad of shape {grad_shape}, {shape})"
        got = _shaped(mod.unbroadcast(grad.copy(), shape), shape, what, hint)
        known = _mean_for_sum(grad, shape, hint)
        _judge(got, _unbroadcast(grad, shape), f"{what} ({hint})", known)
    return f"{len(_UNBROADCAST_CASES)} shapes"


def matmul_gradients(mod: ModuleType) -> None:
    """A @ B for (4, 3) @ (3, 5): the value, dA = dout B^T, dB = A^T dout."""
    rng = np.random.default_rng(71)
    a_data, b_data = rng.normal(size=(4, 3)), rng.normal(size=(3, 5))  # (4, 3), (3, 5)
    upstream = rng.normal(size=(4, 5))  # (4, 5)
    a, b = mod.Tensor(a_data), mod.Tensor(b_data)
    out = a @ b
    value = _shaped(out.data, (4, 5), "A @ B", "(4, 3) @ (3, 5) is (4, 5)")
    _judge(value, a_data @ b_data, "A @ B")
    hint = "each gradient has its input's shape: dA = dout @ B.T, dB = A.T @ dout"
    _run_backward(out, upstream, "matmul", hint)
    for name, t, want, formula in (
        ("dA", a, upstream @ b_data.T, "dout @ B.T"),
        ("dB", b, a_data.T @ upstream, "A.T @ dout"),
    ):
        got = _shaped(t.grad, want.shape, f"{name} of A @ B", f"{name} = {formula}")
        _judge(got, want, f"{name} = {formula}")
    _accumulates(out, upstream, {"A": a, "B": b}, "matmul")


_ADD_CASES = (  # the two shapes, the gradient that broadcasting changes, the hint
    ((4, 10), (10,), "the bias gradient", "sum over the broadcast batch axis (axis 0)"),
    ((10,), (4, 10), "the bias gradient", "sum over the broadcast batch axis (axis 0)"),
    ((4, 10), (4, 1), "the column's gradient", "sum over axis 1, keepdims=True"),
    ((4, 10), (4, 10), "the gradient", "same shapes: each input gets dout itself"),
)


def add_gradients(mod: ModuleType) -> str:
    """(4, 10) + (10,), (10,) + (4, 10), (4, 10) + (4, 1), (4, 10) + (4, 10)."""
    rng = np.random.default_rng(72)
    for left, right, who, hint in _ADD_CASES:
        a_data, b_data = rng.normal(size=left), rng.normal(size=right)
        upstream = rng.normal(size=(4, 10))  # (4, 10)
        a, b = mod.Tensor(a_data), mod.Tensor(b_data)
        case = f"{left} + {right}"
        out = a + b
        value = _shaped(out.data, (4, 10), case, "NumPy broadcasts it to (4, 10)")
        _judge(value, a_data + b_data, case)
        small = left if math.prod(left) < 40 else right
        must = f"{who} must have the input's shape {small}, not (4, 10): {hint}"
        _run_backward(out, upstream, case, must)
        for t, shape in ((a, left), (b, right)):
            got = _shaped(t.grad, shape, f"{case}: {who}", hint)
            known = _mean_for_sum(upstream, shape, hint)
            _judge(got, _unbroadcast(upstream, shape), f"{case}: {who}", known)
        _accumulates(out, upstream, {"A": a, "B": b}, f"add {case}")
    return "a bias, a column and equal shapes"


def relu_gradient(mod: ModuleType) -> None:
    """relu: max(x, 0), and dx = dout * [x > 0], 0 at exactly 0."""
    x_data = np.array(
        [[1.5, -0.5, 0.0, 2.0], [0.0, 0.7, -0.1, -2.0], [3.0, 0.0, -1.0, 0.2]]
    )  # (3, 4), with exact zeros
    upstream = np.array(
        [[-1.0, 2.0, 0.5, 0.3], [-0.4, -0.6, 1.2, 0.9], [0.8, -1.1, 0.7, -0.2]]
    )  # (3, 4): signs unlike x's, so a mask taken from it shows
    x = mod.Tensor(x_data)
    out = x.relu()
    _judge(_shaped(out.data, (3, 4), "relu(x)", "x's"), np.maximum(x_data, 0), "relu")
    _run_backward(out, upstream, "relu", "dx has x's shape")
    got = _shaped(x.grad, (3, 4), "relu's dx", "dx has x's shape")
    known = (
        (upstream * (x_data >= 0), "0 at exactly 0, as in the engine: x > 0, not >="),
        (upstream, "the gradient passes unmasked: multiply dout by the mask x > 0"),
        (upstream * (upstream > 0), "the mask comes from the input x, not from dout"),
        (x_data > 0, "the mask alone is not the gradient: multiply it by dout"),
        (upstream * np.maximum(x_data, 0), "the mask is [x > 0], not relu(x)"),
    )
    _judge(got, upstream * (x_data > 0), "relu mask wrong (dout * [x > 0])", known)
    _accumulates(out, upstream, {"x": x}, "relu")


def _log_softmax(z: np.ndarray, axis: int = 1) -> np.ndarray:
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _stable(mod: ModuleType) -> None:
    """Logits near +-1000: nothing may overflow, nothing may be log(0)."""
    z = np.array([[1000.0, 1001.0, 999.0], [-1000.0, 0.0, 1000.0]])  # (2, 3)
    upstream = np.array([[0.3, -0.2, 0.5], [-0.5, 0.1, 0.4]])  # (2, 3)
    t = mod.Tensor(z)
    what = "log_softmax not stable for logits near 1000"
    hint = (
        "subtract each row's maximum before exp (log-softmax does not change), "
        "and compute shifted - log(sum(exp(shifted))) rather than log(softmax)"
    )
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            out = t.log_softmax()
            value = _shaped(out.data, (2, 3), "log_softmax", "z's shape")
            _run_backward(out, upstream, "log_softmax", "dz has z's shape")
    except FloatingPointError as exc:
        raise Wrong(f"{what} ({exc}): {hint}") from None
    _judge(value, _log_softmax(z), f"{what}: {hint}")
    probs = np.exp(_log_softmax(z))  # (2, 3)
    want = upstream - probs * upstream.sum(axis=1, keepdims=True)  # (2, 3)
    _judge(_shaped(t.grad, (2, 3), "dz", "z's shape"), want, f"{what}: its gradient")


def log_softmax_gradient(mod: ModuleType) -> str:
    """Row-wise log-softmax; dz = dout - softmax(z) * row sums; stable at 1000."""
    rng = np.random.default_rng(73)
    z_data, upstream = rng.normal(0, 3, size=(4, 5)), rng.normal(size=(4, 5))
    z = mod.Tensor(z_data)
    out = z.log_softmax()
    value = _shaped(out.data, (4, 5), "log_softmax(z)", "one log-probability per logit")
    columns = (_log_softmax(z_data, axis=0), "normalise each row (axis 1), not column")
    _judge(value, _log_softmax(z_data), "log_softmax(z)", [columns])
    _run_backward(out, upstream, "log_softmax", "dz has z's shape (4, 5)")
    got = _shaped(z.grad, (4, 5), "log_softmax's dz", "dz has z's shape")
    probs = np.exp(_log_softmax(z_data))  # (4, 5)
    known = (
        (upstream - probs, "the row sums of dout are missing"),
        (upstream - probs * upstream, "softmax(z) times the row SUMS of dout"),
        (upstream - probs * upstream.sum(), "sum dout over each row, not the batch"),
    )
    want = upstream - probs * upstream.sum(axis=1, keepdims=True)
    _judge(got, want, "log_softmax's gradient (dout - softmax(z) * row sums)", known)
    _accumulates(out, upstream, {"z": z}, "log_softmax")
    _stable(mod)
    return "values, gradient, and logits near 1000"


def nll_gradient(mod: ModuleType) -> None:
    """The mean of -logp[i, y_i]; its gradient -dout / N at each label."""
    rng = np.random.default_rng(74)
    logp_data, labels = _log_softmax(rng.normal(size=(4, 5))), np.array([2, 0, 4, 2])
    n, rows = 4, np.arange(4)
    logp = mod.Tensor(logp_data)
    out = logp.nll(labels)
    value = _shaped(out.data, (), "nll", "the loss is one number (a 0-d array)")
    picked = logp_data[rows, labels]  # (4,)
    known = (
        (-picked.sum(), f"the sum over the batch, not the mean: divide by N = {n}"),
        (-logp_data.mean(), "pick each row's label entry, logp[rows, labels]"),
    )
    _judge(value, np.asarray(-picked.mean()), "nll's value", known)
    want = np.zeros((4, 5))  # (4, 5)
    want[rows, labels] = -1.0 / n
    for upstream in (1.0, 2.5):
        logp = mod.Tensor(logp_data)
        out = logp.nll(labels)
        _run_backward(out, np.array(upstream), "nll", "d logp has logp's shape")
        got = _shaped(logp.grad, (4, 5), "nll's gradient", "the shape of logp")
        mean = f"N = {n} times too large: the loss is a mean over the batch"
        ignored = f"ignores the upstream gradient: multiply by out.grad ({upstream})"
        known = ((n * upstream * want, mean), (want, ignored))
        _judge(got, upstream * want, "nll's gradient (-dout / N at each label)", known)
    _accumulates(out, np.array(2.5), {"logp": logp}, "nll")


# --- the graph ---------------------------------------------------------------------


VISITED = "remember the Tensors you have visited (by id): each is listed once"
PARENTS = "append a Tensor only after visiting all its parents (depth first)"


def topological(mod: ModuleType) -> str:
    """Each Tensor once, every one after all its parents, the output last."""
    t = mod.Tensor
    x, w = t(1.0, (), "x"), t(2.0, (), "w")
    a = t(0.0, (x, w), "a")  # a = x @ w
    b = t(0.0, (a,), "b")  # b = relu(a)
    c = t(0.0, (a, b), "c")  # a is used twice
    d = t(0.0, (c, x), "d")  # so is x
    names = {id(v): n for v, n in zip((x, w, a, b, c, d), "xwabcd")}
    order = d.topological_order()
    expect(isinstance(order, list | tuple), "topological_order must return a list")
    listed = [names.get(id(v), "a Tensor not in the graph") for v in order]
    for name in "xwabcd":
        count = listed.count(name)
        expect(count <= 1, f"{name} appears {count} times in {listed}: {VISITED}")
        expect(count, f"{name} is missing from {listed}: visit every parent")
    expect(len(listed) == 6, f"{listed} lists Tensors outside the graph")
    first = "the output comes last; backward() walks the list from the end"
    expect(listed[0] != "d", f"the order {listed} starts at the output: {first}")
    for child, parents in (("a", "xw"), ("b", "a"), ("c", "ab"), ("d", "cx")):
        for p in parents:
            wrong = f"wrong topological order {listed}: {child} before its parent {p}"
            expect(listed.index(p) < listed.index(child), f"{wrong}; {PARENTS}")
    return " -> ".join(listed)


def backward_forks(mod: ModuleType) -> str:
    """Ones at the output; forks add up; _backward runs in reverse order."""
    x = mod.Tensor(np.arange(12.0).reshape(3, 4))  # (3, 4)
    out = x + x
    out.backward()
    seed = _shaped(out.grad, (3, 4), "the output's grad", "ones of the output's shape")
    ones = "backward() must first set the output's grad to ones (dL/dL = 1)"
    expect(_close(seed, np.ones((3, 4))), ones)
    got = _shaped(x.grad, (3, 4), "x.grad", "the shape of x")
    overwritten = "x.grad is 1, expected 2: gradients overwritten instead of "
    overwritten += "accumulated; each _backward must add (+=) to its parents' grad"
    _judge(got, np.full((3, 4), 2.0), "x + x", [(np.ones((3, 4)), overwritten)])
    # h = relu(x) feeds a matmul and an add: its gradient has two parts
    rng = np.random.default_rng(75)
    x_data, w_data = rng.normal(size=(3, 4)), rng.normal(size=(4, 4))
    labels = np.array([1, 3, 0])
    x, w = mod.Tensor(x_data), mod.Tensor(w_data)
    h = x.relu()
    (h @ w + h).log_softmax().nll(labels).backward()
    h_data = np.maximum(x_data, 0)  # (3, 4)
    dz = np.exp(_log_softmax(h_data @ w_data + h_data))  # (3, 4), the softmax
    dz[np.arange(3), labels] -= 1
    dx = (dz @ w_data.T + dz) / 3 * (x_data > 0)  # (3, 4): both uses of h
    got = _shaped(x.grad, (3, 4), "dL/dx", "the shape of x")
    order = "relu(x) @ w + relu(x): dL/dx is wrong; if each operation above passed, "
    order += "a _backward ran before its Tensor's grad was complete (all consumers "
    _judge(got, dx, order + "done): call them in reverse topological order")
    return "x + x, and relu(x) @ w + relu(x)"


# --- the paper's network -------------------------------------------------------------


def _engine_cases() -> list[tuple]:
    rng = np.random.default_rng(76)
    cases = []
    for sizes, n in ENGINE_CASES:
        model = MLP(sizes, seed=77, dtype="float64")
        for name, p in model.params.items():
            if name.endswith(".b"):  # non-zero biases, so their gradients show
                p[...] = rng.normal(0, 0.3, p.shape)
        x = rng.uniform(size=(n, sizes[0]))  # (n, D)
        cases.append((model, x, rng.integers(0, sizes[-1], size=n)))
    return cases


def _relu_on_logits(model: object, x: np.ndarray, y: np.ndarray) -> float:
    """The loss of a common mistake: a ReLU after the last layer too."""
    for i in range(1, model.num_layers + 1):
        w, b = model.params[f"dense{i}.w"], model.params[f"dense{i}.b"]
        x = np.maximum(x @ w + b, 0)
    return float(-_log_softmax(x)[np.arange(len(y)), y].mean())


def matches_engine(mod: ModuleType) -> str:
    """loss_and_grads equals MLP.loss_and_grads (float64, within 1e-12)."""
    worst = 0.0
    for model, x, y in _engine_cases():
        sizes = model.sizes
        want_loss, want = model.loss_and_grads(x, y)
        try:
            loss, grads = mod.loss_and_grads(model.params, x, y)
        except ValueError as exc:  # NumPy refused two shapes somewhere in the graph
            which = "the checks of each operation above say which shape is wrong"
            raise Wrong(f"sizes {sizes}: ValueError ({exc}); {which}") from None
        if not math.isclose(float(loss), float(want_loss), rel_tol=ENGINE_TOLERANCE):
            last = "a ReLU after the last layer; the logits must be left as they are"
            relu = _relu_on_logits(model, x, y)
            expect(not math.isclose(float(loss), relu), f"sizes {sizes}: {last}")
            engine = f"the engine's {float(want_loss):.12g}"
            raise Wrong(f"sizes {sizes}: loss {float(loss):.12g}, {engine}")
        names = f"gradient names {sorted(grads)}, expected {sorted(want)}"
        expect(set(grads) == set(want), names)
        for name, w in want.items():
            hint = "sum over the broadcast batch axis" if name.endswith(".b") else ""
            what = f"sizes {sizes}: {name}'s gradient"
            got = _shaped(grads[name], w.shape, what, hint or "the weight's shape")
            diff = float(np.abs(got - w).max() / np.abs(w).max())
            most = f"of its largest entry (at most {ENGINE_TOLERANCE:g})"
            expect(diff <= ENGINE_TOLERANCE, f"{what} is off by {diff:.2e} {most}")
            worst = max(worst, diff)
    return f"4 networks, 784-128-10 among them; largest difference {worst:.1e}"


TENSOR_AUTODIFF = Exercise(
    "tensor_autodiff",
    7,
    "reverse-mode autodiff of arrays, checked against the engine",
    (
        ("unbroadcast sums over the broadcast axes", unbroadcast_sums),
        ("matmul: the product and both gradients", matmul_gradients),
        ("add broadcasts, and its backward sums over those axes", add_gradients),
        ("relu: the values and the mask x > 0", relu_gradient),
        ("log_softmax: values, gradient, stable", log_softmax_gradient),
        ("nll: the mean over the batch, and its gradient", nll_gradient),
        ("topological order: each Tensor once, after its parents", topological),
        ("backward: ones at the output; forks add up", backward_forks),
        ("an MLP of Tensors has the engine's loss and gradients", matches_engine),
    ),
)
