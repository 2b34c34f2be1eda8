"""The exercise checks pass every solution, fail every unedited stub, and name
each known mistake planted in a solution.

These run the checks in this process (``exercises.runner.run_in_process``),
with the same round trip through ``exercises.wire`` as the child process
makes; ``tests/course/test_grader.py`` runs the command itself against hostile files.
"""

from __future__ import annotations

import importlib
import io
import sys
import types
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from exercises import grade  # noqa: E402
from exercises.registry import EXERCISES  # noqa: E402
from exercises.runner import run_in_process  # noqa: E402


def params():
    for name, exercise in EXERCISES.items():
        marks = [pytest.mark.tf] if "tensorflow" in exercise.needs else []
        yield pytest.param(name, id=name, marks=marks)


def load(name: str, solution: bool) -> types.ModuleType:
    package = "exercises.solutions" if solution else "exercises"
    return importlib.import_module(f"{package}.{name}")


def run_grade(name: str, module: types.ModuleType) -> tuple[int, int, str]:
    """Grade a module in this process: ``(passed, total, printed text)``."""
    checks = EXERCISES[name].checks()
    out, passed = io.StringIO(), 0
    for j, outcome in run_in_process(checks, module):
        word, text = grade.judged(checks[j], outcome)
        grade.report(word, checks[j].description, text, out)
        passed += word == "PASS"
    return passed, len(checks), out.getvalue()


@pytest.mark.parametrize("name", list(params()))
def test_solution_passes_every_check(name):
    for package in EXERCISES[name].needs:
        pytest.importorskip(package)
    passed, total, text = run_grade(name, load(name, solution=True))
    assert passed == total > 0, text


@pytest.mark.parametrize("name", list(params()))
def test_unedited_stub_is_todo_in_every_check(name):
    for package in EXERCISES[name].needs:
        pytest.importorskip(package)
    passed, total, text = run_grade(name, load(name, solution=False))
    assert passed == 0, text
    assert text.count("  TODO  ") == total, text


def test_every_lecture_has_a_graded_exercise_with_its_files():
    assert set(range(1, 13)) <= {e.lecture for e in EXERCISES.values()}
    for name in EXERCISES:
        assert (ROOT / "exercises" / f"{name}.py").is_file()
        assert (ROOT / "exercises" / "solutions" / f"{name}.py").is_file()
        assert (ROOT / "exercises" / "checks" / f"{name}.py").is_file()


def test_grader_modules_stay_small():
    for path in sorted((ROOT / "exercises").rglob("*.py")):
        lines = len(path.read_text().splitlines())
        assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines"


def planted(name, **overrides):
    """The solution module with some functions replaced by wrong ones."""
    module = types.ModuleType(f"planted_{name}")
    module.__dict__.update(vars(load(name, solution=True)))
    module.__dict__.update(overrides)
    return module


def grads_changed(change):
    """mlp_backward of the solution, with ``change(name, grad, x)`` applied."""
    solution = load("backward_recursion", solution=True)

    def mlp_backward(params, x, labels):
        loss, grads = solution.mlp_backward(params, x, labels)
        changed = {k: change(k, g, x) for k, g in grads.items()}
        return loss, {k: g for k, g in changed.items() if g is not None}

    return planted("backward_recursion", mlp_backward=mlp_backward)


@pytest.mark.parametrize(
    "change, hint",
    [
        (
            lambda k, g, x: g.T if k.endswith(".w") else g,
            "dense1.w: shape (3, 6), expected (6, 3): the transpose's shape",
        ),
        (lambda k, g, x: g * len(x), "exactly N = 7 times the expected values"),
        (lambda k, g, x: g / len(x), "exactly 1/N = 1/7 of the expected values"),
        (lambda k, g, x: -g, "with the sign flipped"),
        (
            lambda k, g, x: None if k.endswith(".b") else g,
            "no gradient for dense1.b: a bias gradient is dZ summed over the batch",
        ),
        (
            lambda k, g, x: np.tile(g / len(x), (len(x), 1)) if k.endswith(".b") else g,
            "dense1.b: shape (7, 3), expected (3,): one row per example; sum over",
        ),
        (
            lambda k, g, x: np.zeros_like(g) if k.endswith(".b") else g,
            "dense1.b: it is all zeros: was this gradient left out?",
        ),
    ],
    ids=["transposed", "times-N", "over-N", "sign", "no-bias", "bias-unsummed", "zero"],
)
def test_known_mistakes_in_backward_recursion_are_named(change, hint):
    passed, _, text = run_grade("backward_recursion", grads_changed(change))
    assert passed < 3
    assert "FAIL  equal to the engine for 1 to 4 layers" in text
    assert hint in text, text
    assert "could not be checked" not in text and "raised" not in text, text


def test_transposed_square_gradient_is_named_by_hand():
    table = dict(load("by_hand", solution=True).TABLE)
    table["dW2"] = [[1, 0], [-1, 0]]  # dz^T h, not h^T dz
    _, _, text = run_grade("by_hand", planted("by_hand", TABLE=table))
    assert "dW2: [[1.0, 0.0], [-1.0, 0.0]] is not right (dW2 = h^T dz)" in text
    assert "the transpose of the expected values" in text


def test_cross_entropy_summed_instead_of_averaged_is_named():
    solution = load("logsumexp", solution=True)

    def summed(logits, labels):
        return solution.cross_entropy(logits, labels) * len(labels)

    _, _, text = run_grade("logsumexp", planted("logsumexp", cross_entropy=summed))
    assert "is N = 4 times the expected" in text
    assert "the mean over the batch, not the sum" in text


def test_planted_leaky_relu_bug_is_caught_by_the_gradient_checker():
    def backward_without_alpha(dout, cache):
        positive, _ = cache
        return np.where(positive, dout, 0.0)  # the ReLU's gradient, not leaky

    module = planted("leaky_relu", leaky_relu_backward=backward_without_alpha)
    passed, total, text = run_grade("leaky_relu", module)
    assert passed < total
    assert "FAIL  backward passes the gradient checker" in text
    assert "max relative error" in text and "x (4x6, float64): FAIL" in text


def test_nan_in_an_answer_is_named_with_its_place():
    def forward_with_nan(x, alpha=0.01):
        out = np.where(x > 0, x, alpha * x)
        out[0, 1] = np.nan
        return out, (x > 0, alpha)

    _, _, text = run_grade(
        "leaky_relu", planted("leaky_relu", leaky_relu_forward=forward_with_nan)
    )
    assert "FAIL  forward values and dtype: alpha=0.01: out contains NaN at [0, 1]" in (
        text
    )


def forward_difference(f, x, h=1e-5):
    grad = np.zeros(x.shape)
    base = f(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        grad[i] = (f(x) - base) / h
        x[i] = old
    return grad


def forgotten_restore(f, x, h=1e-5):
    grad = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f(x)
        x[i] = old - h
        grad[i] = (up - f(x)) / (2 * h)  # and x[i] is never put back
    return grad


def back_by_h(f, x, h=1e-5):
    grad = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        x[i] += h
        up = f(x)
        x[i] -= h  # back to x, not on to x - h
        grad[i] = (up - f(x)) / (2 * h)
    return grad


@pytest.mark.parametrize(
    "wrong, hint, not_hint",
    [
        (forward_difference, "a one-sided difference (f(x + h) - f(x)) / h", "x was"),
        (forgotten_restore, "x was changed", "one-sided"),
        (back_by_h, "the second point is x itself, not x - h", "one-sided"),
    ],
    ids=["one-sided", "no-restore", "back-by-h"],
)
def test_numerical_gradient_mistakes_are_named(wrong, hint, not_hint):
    module = planted("numerical_gradient", numerical_gradient=wrong)
    _, _, text = run_grade("numerical_gradient", module)
    message = text.split("FAIL  central, not one-sided: ")[1]
    assert hint in message and not_hint not in message, text


def test_unstable_logsumexp_is_caught():
    def naive(z):
        return np.log(np.exp(z).sum(axis=1))

    _, _, text = run_grade("logsumexp", planted("logsumexp", logsumexp=naive))
    assert "FAIL  logsumexp is stable" in text
    assert "subtract the row maximum" in text


def test_planted_momentum_that_forgets_its_velocity_fails():
    class NoMemory:
        def __init__(self, lr=0.01, beta=0.9):
            self.lr = lr

        def step(self, params, grads):
            for name, p in params.items():
                p -= self.lr * grads[name]

    _, _, text = run_grade("momentum", planted("momentum", Momentum=NoMemory))
    assert "FAIL  three steps match the formula" in text
    assert "does the velocity carry over" in text


def test_by_hand_names_only_the_wrong_entries():
    table = dict(load("by_hand", solution=True).TABLE)
    table["dh"] = [[0.5, 0.0]]  # the ReLU's mask applied one node too early
    table["loss"] = 0.5
    passed, total, text = run_grade("by_hand", planted("by_hand", TABLE=table))
    assert passed == 1 and total == 3, text
    assert "loss: 0.5 is not right" in text
    assert "dh: [[0.5, 0.0]] is not right" in text
    assert "da1:" not in text and "dW1:" not in text  # only the wrong ones named


def test_by_hand_judges_each_entry_against_the_students_own_upstream():
    """a1 wrong; everything after it computed correctly from that a1."""
    table = {
        "a1": [[2, 2]],  # x W1 + b1 with the sign of W1[0, 1] lost
        "h": [[2, 2]],
        "z": [[5, 3]],
        "p": [[1 / (1 + np.exp(-2)), 1 / (1 + np.exp(2))]],
        "loss": float(np.log(1 + np.exp(2))),
    }
    p = np.array(table["p"])
    dz = p - np.array([[0, 1]])
    dh = dz @ np.array([[1.0, 0.0], [2.0, 1.0]]).T
    table |= {"dz": dz.tolist(), "dW2": (np.array([[2], [2]]) @ dz).tolist()}
    table |= {"db2": dz[0].tolist(), "dh": dh.tolist(), "da1": dh.tolist()}
    table |= {"dW1": (np.array([[2], [1]]) @ dh).tolist(), "db1": dh[0].tolist()}
    passed, _, text = run_grade("by_hand", planted("by_hand", TABLE=table))
    assert "FAIL  forward values: a1: [[2.0, 2.0]] is not right (a1 = x W1" in text
    assert "right given your earlier entries: h, z, p, loss" in text
    assert "h: " not in text and "z: " not in text
    assert "PASS  gradients (right given your earlier entries: dz, dW2, db2" in text
    assert passed == 2, text


def test_planted_autodiff_that_assigns_instead_of_adding_fails():
    solution = load("autodiff", solution=True)

    class Assigning(solution.Value):
        def __mul__(self, other):
            other = self.wrap(other)
            out = Assigning(self.data * other.data, (self, other))

            def backward():
                self.grad = other.data * out.grad  # = instead of +=
                other.grad = self.data * out.grad

            out._backward = backward
            return out

        def __add__(self, other):
            other = other if isinstance(other, solution.Value) else Assigning(other)
            out = Assigning(self.data + other.data, (self, other))

            def backward():
                self.grad += out.grad
                other.grad += out.grad

            out._backward = backward
            return out

    _, _, text = run_grade("autodiff", planted("autodiff", Value=Assigning))
    assert "FAIL  forks add, in topological order" in text
    assert "both uses must add" in text


def test_planted_backward_recursion_without_the_relu_mask_fails():
    def no_mask(params, x, labels):
        layers = len(params) // 2
        inputs, out = [], x
        for i in range(1, layers + 1):
            inputs.append(out)
            out = out @ params[f"dense{i}.w"] + params[f"dense{i}.b"]
            if i < layers:
                out = np.maximum(out, 0)
        p = np.exp(out - out.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        loss = float(-np.log(p[np.arange(len(x)), labels]).mean())
        da = p.copy()
        da[np.arange(len(x)), labels] -= 1
        da /= len(x)
        grads = {}
        for i in range(layers, 0, -1):
            grads[f"dense{i}.w"] = inputs[i - 1].T @ da
            grads[f"dense{i}.b"] = da.sum(axis=0)
            da = da @ params[f"dense{i}.w"].T  # BP2 without [A > 0]
        return loss, grads

    module = planted("backward_recursion", mlp_backward=no_mask)
    _, _, text = run_grade("backward_recursion", module)
    assert "FAIL  equal to the engine for 1 to 4 layers" in text
    assert "FAIL  passes the gradient checker" in text


def test_an_answer_of_the_wrong_type_is_named_not_a_grader_error():
    class Opaque:
        pass

    def returns_an_object(sizes, batch_size):
        return Opaque()

    _, _, text = run_grade("flops", planted("flops", step_flops=returns_an_object))
    assert "step_flops([784, 128, 10], 256) = an object of type Opaque" in text

    def not_a_pair(x, alpha=0.01):
        return np.where(x > 0, x, alpha * x)

    module = planted("leaky_relu", leaky_relu_forward=not_a_pair)
    _, _, text = run_grade("leaky_relu", module)
    assert "the result is an array of shape (1, 5), expected a tuple of 2" in text
