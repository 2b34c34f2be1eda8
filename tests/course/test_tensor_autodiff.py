"""The tensor autodiff lab (lab 7a): the reference solution passes its grader,
each planted mistake is named by the hint, its gradients equal the engine's
within 1e-12 in float64 on random shapes, and training with it lowers the loss.

The checks run in this process (``exercises.runner.run_in_process``), with the
same round trip through ``exercises.wire`` as from the grader's child process.
A planted mistake is the reference solution with one line changed, as a student
would write it, loaded from a temporary file.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import load_file_as_module

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from backprop.model import MLP  # noqa: E402
from backprop.optim import Adam  # noqa: E402
from exercises import grade  # noqa: E402
from exercises.registry import EXERCISES  # noqa: E402
from exercises.runner import run_in_process  # noqa: E402

SOLUTION = ROOT / "exercises" / "solutions" / "tensor_autodiff.py"
CHECKS = EXERCISES["tensor_autodiff"].checks()


def load(solution: bool) -> types.ModuleType:
    package = "exercises.solutions" if solution else "exercises"
    return importlib.import_module(f"{package}.tensor_autodiff")


def run(module: types.ModuleType) -> tuple[int, int, str]:
    """Grade a module in this process: ``(passed, total, printed text)``."""
    out, passed = io.StringIO(), 0
    for j, outcome in run_in_process(CHECKS, module):
        word, text = grade.judged(CHECKS[j], outcome)
        grade.report(word, CHECKS[j].description, text, out)
        passed += word == "PASS"
    return passed, len(CHECKS), out.getvalue()


def planted(tmp_path: Path, *edits: tuple[str, str]) -> types.ModuleType:
    """The solution with each ``old`` line replaced by ``new`` (each found once)."""
    source = SOLUTION.read_text()
    for old, new in edits:
        assert source.count(old) == 1, f"{old!r} is not a line of the solution"
        source = source.replace(old, new)
    path = tmp_path / "exercises" / "tensor_autodiff.py"  # where a student's is
    path.parent.mkdir()
    path.write_text(source)
    return load_file_as_module(path, "planted_tensor_autodiff")


def failing(text: str) -> list[str]:
    """The descriptions of the checks that failed."""
    return [c.description for c in CHECKS if f"FAIL  {c.description}" in text]


def test_the_solution_passes_and_the_stub_is_all_todo():
    passed, total, text = run(load(solution=True))
    assert passed == total == 9, text
    passed, total, text = run(load(solution=False))
    assert passed == 0 and text.count("  TODO  ") == total, text


def test_it_is_registered_as_lab_7a_after_lecture_7(capsys):
    exercise = EXERCISES["tensor_autodiff"]
    assert (exercise.lecture, exercise.chapter) == (7, "7a")
    names = list(EXERCISES)
    assert names.index("tape_gradients") < names.index("tensor_autodiff")
    assert names.index("tensor_autodiff") < names.index("minibatches")
    orders = [e.order for e in EXERCISES.values()]
    assert orders == sorted(orders)  # the registry in the order of the notes
    assert grade.main(["--list"]) == 0
    assert "lecture 7a  tensor_autodiff" in capsys.readouterr().out
    assert grade.main(["tensor_autodiff", "--solution"]) == 0  # in a child process
    out = capsys.readouterr().out
    assert "(lecture 7a: reverse-mode autodiff of arrays" in out
    assert "9 of 9 checks pass: all checks pass" in out


# Each mistake: the lines changed, the check that must fail, words of its hint.
MISTAKES = {
    "bias gradient not summed (+= fails)": (
        [
            (
                "other.grad += unbroadcast(out.grad, other.shape)",
                "other.grad += out.grad",
            )
        ],
        "add broadcasts, and its backward sums over those axes",
        [
            "the bias gradient must have the input's shape (10,), not (4, 10)",
            "sum over the broadcast batch axis (axis 0)",
        ],
    ),
    "bias gradient not summed (assigned)": (
        [
            (
                "other.grad += unbroadcast(out.grad, other.shape)",
                "other.grad = other.grad + out.grad",
            )
        ],
        "add broadcasts, and its backward sums over those axes",
        [
            "the bias gradient has shape (4, 10), expected (10,)",
            "sum over the broadcast batch axis (axis 0)",
        ],
    ),
    "unbroadcast keeps the batch axis": (
        [
            (
                "grad = grad.sum(axis=tuple(range(extra)))  # the leading axes "
                "the input lacks",
                "pass",
            )
        ],
        "unbroadcast sums over the broadcast axes",
        ["has shape (4, 10), expected (10,)", "sum over the broadcast batch axis"],
    ),
    "unbroadcast averages": (
        [
            (
                "grad = grad.sum(axis=tuple(range(extra)))",
                "grad = grad.mean(axis=tuple(range(extra)))",
            )
        ],
        "unbroadcast sums over the broadcast axes",
        ["the mean over the broadcast axes, not the sum"],
    ),
    "matmul without the transpose": (
        [
            (
                "self.grad += out.grad @ other.data.T  # (N, D)",
                "self.grad += out.grad @ other.data",
            )
        ],
        "matmul: the product and both gradients",
        ["raised ValueError", "dA = dout @ B.T"],
    ),
    "matmul with a flipped sign": (
        [
            (
                "other.grad += self.data.T @ out.grad",
                "other.grad -= self.data.T @ out.grad",
            )
        ],
        "matmul: the product and both gradients",
        ["dB = A.T @ dout: a flipped sign"],
    ),
    "add overwrites": (
        [
            (
                "self.grad += unbroadcast(out.grad, self.shape)",
                "self.grad = unbroadcast(out.grad, self.shape)",
            )
        ],
        "add broadcasts, and its backward sums over those axes",
        ["A.grad holds one gradient", "overwritten instead of accumulated", "+="],
    ),
    "relu mask at zero": (
        [
            (
                "self.grad += (self.data > 0) * out.grad",
                "self.grad += (self.data >= 0) * out.grad",
            )
        ],
        "relu: the values and the mask x > 0",
        ["relu mask wrong", "exactly 0", "x > 0, not >="],
    ),
    "relu mask from the upstream gradient": (
        [
            (
                "self.grad += (self.data > 0) * out.grad",
                "self.grad += (out.grad > 0) * out.grad",
            )
        ],
        "relu: the values and the mask x > 0",
        ["relu mask wrong", "the mask comes from the input x, not from dout"],
    ),
    "relu overwrites": (
        [
            (
                "self.grad += (self.data > 0) * out.grad",
                "self.grad = (self.data > 0) * out.grad",
            )
        ],
        "relu: the values and the mask x > 0",
        ["overwritten instead of accumulated"],
    ),
    "log_softmax without the max shift": (
        [
            (
                "shifted = self.data - self.data.max(axis=1, keepdims=True)  # (N, C)",
                "shifted = self.data",
            )
        ],
        "log_softmax: values, gradient, stable",
        ["log_softmax not stable", "subtract each row's maximum"],
    ),
    "log_softmax gradient without the row sums": (
        [
            (
                "self.grad += out.grad - probs * total",
                "self.grad += out.grad - probs * out.grad",
            )
        ],
        "log_softmax: values, gradient, stable",
        ["row SUMS of dout"],
    ),
    "nll without 1/N": (
        [("grad[rows, labels] = -out.grad / n", "grad[rows, labels] = -out.grad")],
        "nll: the mean over the batch, and its gradient",
        ["N = 4 times too large", "mean over the batch"],
    ),
    "nll sums": (
        [
            (
                'out = Tensor(-self.data[rows, labels].mean(), (self,), "nll")',
                'out = Tensor(-self.data[rows, labels].sum(), (self,), "nll")',
            )
        ],
        "nll: the mean over the batch, and its gradient",
        ["the sum over the batch, not the mean"],
    ),
    "topological order: appended before the parents": (
        [
            (
                "            for parent in t.parents:\n                visit(parent)\n"
                "            order.append(t)",
                "            order.append(t)\n            for parent in t.parents:\n"
                "                visit(parent)",
            ),
        ],
        "topological order: each Tensor once, after its parents",
        ["starts at the output", "the output comes last"],
    ),
    "topological order: no visited set": (
        [("            if id(t) in seen:\n                return\n", "")],
        "topological order: each Tensor once, after its parents",
        ["x appears 3 times", "visited (by id)"],
    ),
    "backward not seeded": (
        [("self.grad = np.ones_like(self.data)  # dL/dL = 1", "pass")],
        "backward: ones at the output; forks add up",
        ["set the output's grad to ones"],
    ),
    "backward in forward order": (
        [
            (
                "for t in reversed(self.topological_order()):",
                "for t in self.topological_order():",
            )
        ],
        "backward: ones at the output; forks add up",
        ["reverse topological order"],
    ),
    "nll ignores the upstream gradient": (
        [("grad[rows, labels] = -out.grad / n", "grad[rows, labels] = -1.0 / n")],
        "nll: the mean over the batch, and its gradient",
        ["ignores the upstream gradient: multiply by out.grad (2.5)"],
    ),
    "relu unmasked": (
        [
            (
                "self.grad += (self.data > 0) * out.grad",
                "self.grad += out.grad",
            )
        ],
        "relu: the values and the mask x > 0",
        ["the gradient passes unmasked"],
    ),
    "log_softmax over columns": (
        [
            (
                "shifted = self.data - self.data.max(axis=1, keepdims=True)  # (N, C)",
                "shifted = self.data - self.data.max(axis=0, keepdims=True)  # (N, C)",
            ),
            (
                "lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, 1)",
                "lse = np.log(np.exp(shifted).sum(axis=0, keepdims=True))  # (N, 1)",
            ),
        ],
        "log_softmax: values, gradient, stable",
        ["normalise each row (axis 1), not column"],
    ),
    "relu after the last layer": (
        [
            (
                "        if i < layers:\n            out = out.relu()",
                "        out = out.relu()",
            )
        ],
        "an MLP of Tensors has the engine's loss and gradients",
        ["ReLU after the last layer"],
    ),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_planted_mistake_is_named(mistake, tmp_path):
    edits, check, words = MISTAKES[mistake]
    with np.errstate(all="ignore"):
        passed, total, text = run(planted(tmp_path, *edits))
    assert passed < total
    assert check in failing(text), text
    report = re.split(r"\n  (?=\S)", text[text.index(f"FAIL  {check}") :])[0]
    for word in words:
        assert word in report, f"{word!r} not in:\n{report}"
    assert "could not be checked" not in text, text  # never an error in the checks
    assert "raised" not in report.replace("backward raised ValueError", ""), report


def random_case(seed: int):
    """A random float64 MLP (1 to 4 layers, random widths, biases) and a batch."""
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(2, 40, size=rng.integers(2, 6))]
    model = MLP(sizes, seed=seed, dtype="float64")
    for name, p in model.params.items():
        if name.endswith(".b"):
            p[...] = rng.normal(0, 0.3, p.shape)
    n = int(rng.integers(1, 50))
    x = rng.normal(size=(n, sizes[0]))  # (n, D)
    return model, x, rng.integers(0, sizes[-1], size=n)


@pytest.mark.parametrize("seed", range(20))
def test_gradients_equal_the_engines_within_1e_12(seed):
    solution = load(solution=True)
    model, x, y = random_case(seed)
    want_loss, want = model.loss_and_grads(x, y)
    loss, grads = solution.loss_and_grads(model.params, x, y)
    assert abs(loss - float(want_loss)) <= 1e-12 * abs(float(want_loss))
    assert list(grads) == list(want)
    for name, w in want.items():
        assert grads[name].shape == w.shape and grads[name].dtype == np.float64
        assert np.abs(grads[name] - w).max() <= 1e-12 * np.abs(w).max(), name


def test_a_tensor_used_twice_gets_both_gradients():
    solution = load(solution=True)
    w = solution.Tensor(np.eye(3) * 2.0)  # (3, 3)
    x = solution.Tensor(np.ones((2, 3)))  # (2, 3)
    out = (x @ w) @ w  # w used twice: d/dw sum(x w w) = x^T 1 w^T + (x w)^T 1
    out.backward()
    ones = np.ones((2, 3))
    want = x.data.T @ ones @ w.data.T + (x.data @ w.data).T @ ones
    assert np.allclose(w.grad, want)
    assert [t.op for t in out.topological_order()] == ["", "", "matmul", "matmul"]


def test_a_short_training_run_lowers_the_loss():
    """Adam on a synthetic ten-class problem, gradients from the Tensor graph."""
    solution = load(solution=True)
    rng = np.random.default_rng(3)
    teacher = rng.normal(size=(20, 10))  # (20, 10)
    x = rng.normal(size=(512, 20))  # (512, 20)
    y = (x @ teacher).argmax(axis=1)  # (512,)
    model = MLP([20, 32, 10], seed=4, dtype="float64")
    adam = Adam(lr=1e-2)
    first, _ = solution.loss_and_grads(model.params, x, y)
    for step in range(60):
        batch = np.arange(step * 64, (step + 1) * 64) % 512  # (64,)
        _, grads = solution.loss_and_grads(model.params, x[batch], y[batch])
        adam.step(model.params, grads)
    last, _ = solution.loss_and_grads(model.params, x, y)
    assert last < 0.5 * first, (first, last)
