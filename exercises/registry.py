"""The graded exercises: one entry each, in the order of the lectures.

An entry names the exercise; its file is ``exercises/NAME.py`` (the stub a
student edits), its reference solution ``exercises/solutions/NAME.py``, and
its checks the tuple ``CHECKS`` of the module ``exercises/checks/NAME.py``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Exercise:
    """One graded exercise.

    Attributes:
        name: module name under ``exercises/``, ``exercises/solutions/`` and
            ``exercises/checks/``.
        lecture: the lecture it belongs to (the number, for sorting).
        title: what it is about.
        needs: packages beyond the core that grading it needs, e.g.
            ``("tensorflow",)``; without them it is not graded.
        lab: the letter of a lab that follows the lecture: ``"a"`` for lab
            7a, which comes after lecture 7 and before lecture 8.
    """

    name: str
    lecture: int
    title: str
    needs: tuple[str, ...] = ()
    lab: str = ""

    @property
    def chapter(self) -> str:
        """The lecture or lab as the notes number it: ``"7"``, ``"7a"``."""
        return f"{self.lecture}{self.lab}"

    @property
    def order(self) -> tuple[int, str]:
        """Where it comes in the notes: lecture 7, then lab 7a, then lecture 8."""
        return self.lecture, self.lab

    @property
    def checks_module(self) -> str:
        """The module whose ``CHECKS`` grade this exercise."""
        return f"exercises.checks.{self.name}"

    def checks(self) -> tuple:
        """The exercise's checks (``exercises.checks.core.Check`` objects)."""
        return importlib.import_module(self.checks_module).CHECKS


EXERCISES: dict[str, Exercise] = {
    e.name: e
    for e in (
        Exercise("idx_header", 1, "read an IDX header; flatten and scale images"),
        Exercise("forward", 2, "the forward pass of an MLP of any depth"),
        Exercise("logsumexp", 3, "a stable log-sum-exp and cross-entropy"),
        Exercise("leaky_relu", 4, "leaky ReLU forward and backward"),
        Exercise("by_hand", 4, "a forward and backward pass by hand"),
        Exercise(
            "backward_recursion", 4, "the backward recursion (BP1-BP4) for any depth"
        ),
        Exercise(
            "gradient_cost",
            4,
            "the cost of a gradient: backpropagation and finite differences",
        ),
        Exercise("numerical_gradient", 5, "central differences and relative error"),
        Exercise("momentum", 6, "SGD with momentum"),
        Exercise("weight_decay", 6, "an L2 weight-decay term"),
        Exercise("autodiff", 7, "reverse-mode autodiff of scalars, in about 60 lines"),
        Exercise(
            "tape_gradients",
            7,
            "the engine's gradients from tf.GradientTape",
            needs=("tensorflow",),
        ),
        Exercise(
            "tensor_autodiff",
            7,
            "reverse-mode autodiff of arrays, checked against the engine",
            lab="a",
        ),
        Exercise("minibatches", 8, "mini-batches without replacement"),
        Exercise("flops", 9, "counting the FLOPs of training"),
        Exercise(
            "sparse_forward",
            9,
            "the first layer's product on the non-zero pixels only",
        ),
        Exercise(
            "sanity_checks",
            10,
            "update ratios, dead units and the scale of initial weights",
        ),
        Exercise(
            "augmentation",
            11,
            "bilinear reads, and a rotation about the centre",
            needs=("scipy",),
        ),
        Exercise("conv_backward", 12, "the backward pass of a convolution"),
    )
}
