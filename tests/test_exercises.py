"""The exercise grader passes every solution, fails every unedited stub, and
names what is wrong in a planted mistake."""

from __future__ import annotations

import io
import sys
import types
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exercises import grade  # noqa: E402
from exercises.checks import EXERCISES  # noqa: E402


def params():
    for name, exercise in EXERCISES.items():
        marks = [pytest.mark.tf] if "tensorflow" in exercise.needs else []
        yield pytest.param(name, id=name, marks=marks)


def run_grade(exercise, module):
    out = io.StringIO()
    passed, total = grade.grade(exercise, module, out)
    return passed, total, out.getvalue()


@pytest.mark.parametrize("name", list(params()))
def test_solution_passes_every_check(name):
    for package in EXERCISES[name].needs:
        pytest.importorskip(package)
    passed, total, text = run_grade(EXERCISES[name], grade.load(name, solution=True))
    assert total == len(EXERCISES[name].checks)
    assert passed == total, text


@pytest.mark.parametrize("name", list(params()))
def test_unedited_stub_fails_every_check(name):
    for package in EXERCISES[name].needs:
        pytest.importorskip(package)
    passed, total, text = run_grade(EXERCISES[name], grade.load(name, solution=False))
    assert passed == 0 and total == len(EXERCISES[name].checks), text
    assert text.count("TODO") == total


def test_every_lecture_has_a_graded_exercise():
    assert {e.lecture for e in EXERCISES.values()} == set(range(1, 13))
    for name in EXERCISES:
        assert (ROOT / "exercises" / f"{name}.py").is_file()
        assert (ROOT / "exercises" / "solutions" / f"{name}.py").is_file()


def planted(name, **overrides):
    """The solution module with some functions replaced by wrong ones."""
    module = types.ModuleType(f"planted_{name}")
    module.__dict__.update(vars(grade.load(name, solution=True)))
    module.__dict__.update(overrides)
    return module


def test_planted_leaky_relu_bug_is_caught_by_the_gradient_checker():
    def backward_without_alpha(dout, cache):
        positive, _ = cache
        return np.where(positive, dout, 0.0)  # the ReLU's gradient, not leaky

    module = planted("leaky_relu", leaky_relu_backward=backward_without_alpha)
    passed, total, text = run_grade(EXERCISES["leaky_relu"], module)
    assert passed < total
    assert "FAIL  backward passes the gradient checker" in text
    assert "max relative error" in text and "x (4x6, float64): FAIL" in text


def test_planted_one_sided_difference_and_unstable_logsumexp_are_caught():
    def forward_difference(f, x, h=1e-5):
        grad = np.zeros(x.shape)
        base = f(x)
        for i in np.ndindex(x.shape):
            old = x[i]
            x[i] = old + h
            grad[i] = (f(x) - base) / h
            x[i] = old
        return grad

    module = planted("numerical_gradient", numerical_gradient=forward_difference)
    _, _, text = run_grade(EXERCISES["numerical_gradient"], module)
    assert "FAIL  central, not one-sided" in text

    def naive(z):
        return np.log(np.exp(z).sum(axis=1))

    with np.errstate(over="ignore"):
        _, _, text = run_grade(
            EXERCISES["logsumexp"], planted("logsumexp", logsumexp=naive)
        )
    assert "FAIL  logsumexp is stable" in text


def test_planted_momentum_that_forgets_its_velocity_fails():
    class NoMemory:
        def __init__(self, lr=0.01, beta=0.9):
            self.lr = lr

        def step(self, params, grads):
            for name, p in params.items():
                p -= self.lr * grads[name]

    _, _, text = run_grade(
        EXERCISES["momentum"], planted("momentum", Momentum=NoMemory)
    )
    assert "FAIL  three steps match the formula" in text


def test_main_exit_codes_and_list(capsys):
    assert grade.main(["flops", "--solution"]) == 0
    assert "2 of 2 checks pass" in capsys.readouterr().out
    assert grade.main(["flops"]) == 1
    assert "TODO" in capsys.readouterr().out
    assert grade.main(["--list"]) == 0
    assert "leaky_relu" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        grade.main(["no_such_exercise"])
    assert exc.value.code == 2


def test_planted_by_hand_mistakes_are_named():
    table = dict(grade.load("by_hand", solution=True).TABLE)
    table["dh"] = [[0.5, 0.0]]  # the ReLU's mask applied one node too early
    table["loss"] = 0.5
    module = planted("by_hand", TABLE=table)
    passed, total, text = run_grade(EXERCISES["by_hand"], module)
    assert passed == 1 and total == 3, text
    assert "loss: 0.5 is not right" in text
    assert "dh: [[0.5, 0.0]] is not right" in text
    assert "da1:" not in text and "dW1:" not in text  # only the wrong ones named


def test_planted_autodiff_that_assigns_instead_of_adding_fails():
    solution = grade.load("autodiff", solution=True)

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

    _, _, text = run_grade(EXERCISES["autodiff"], planted("autodiff", Value=Assigning))
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
    passed, _, text = run_grade(EXERCISES["backward_recursion"], module)
    assert "FAIL  equal to the engine for 1 to 4 layers" in text
    assert "FAIL  passes the gradient checker" in text
