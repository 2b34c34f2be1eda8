"""Lecture 7, exercise 1: reverse-mode automatic differentiation of scalars.

A ``Value`` holds one number and remembers how it was computed: the Values it
came from (``parents``) and a function ``_backward`` that, once this Value's
``grad`` (dL/dvalue) is known, adds its contribution to each parent's ``grad``.
``backward()`` then does what ``tf.GradientTape`` does, for scalars:

1. sort the graph topologically, so every Value comes after all its parents;
2. set the output's ``grad`` to 1;
3. walk the sorted list backwards, calling each Value's ``_backward``.

Gradients are *accumulated* with ``+=``: a Value used twice (``x * x``) gets the
sum of the gradients of both uses (Lecture 4's rule for forks).

About 60 lines in all; fill in every method marked TODO. Grade with

    python -m exercises.grade autodiff

The grader checks each operation, a graph with forks, and finally builds the
paper's kind of network out of Values and compares your gradients with the
engine's ``MLP.loss_and_grads``.
"""

from __future__ import annotations

from collections.abc import Callable


class Value:
    """A scalar in a computational graph.

    Args:
        data: the number.
        parents: the Values this one was computed from.
    """

    def __init__(self, data: float, parents: tuple[Value, ...] = ()) -> None:
        self.data = float(data)
        self.grad = 0.0  # dL/d(self), filled in by backward()
        self.parents = parents
        self._backward: Callable[[], None] = lambda: None  # a leaf passes nothing on

    def __repr__(self) -> str:
        return f"Value(data={self.data:g}, grad={self.grad:g})"

    @staticmethod
    def wrap(other: Value | float) -> Value:
        """A number as a constant Value (a leaf); a Value unchanged."""
        return other if isinstance(other, Value) else Value(other)

    def __add__(self, other: Value | float) -> Value:
        """``self + other``: add distributes the gradient to both inputs."""
        # TODO: out = Value(self.data + other.data, (self, other)); give it a
        # _backward that adds out.grad to self.grad and to other.grad
        raise NotImplementedError("Value.__add__ is not written yet")

    def __mul__(self, other: Value | float) -> Value:
        """``self * other``: multiply swaps its inputs."""
        # TODO
        raise NotImplementedError("Value.__mul__ is not written yet")

    def relu(self) -> Value:
        """``max(self, 0)``; its derivative at exactly 0 is 0, as in the engine."""
        # TODO
        raise NotImplementedError("Value.relu is not written yet")

    def exp(self) -> Value:
        """``e ** self``."""
        # TODO
        raise NotImplementedError("Value.exp is not written yet")

    def log(self) -> Value:
        """The natural logarithm of ``self`` (a positive Value)."""
        # TODO
        raise NotImplementedError("Value.log is not written yet")

    def backward(self) -> None:
        """Fill in ``grad`` of every Value this one depends on (dself/dvalue)."""
        # TODO: a topological order (a depth-first search that appends a Value
        # after all its parents), self.grad = 1, then _backward in reverse order
        raise NotImplementedError("Value.backward is not written yet")

    # The rest follows from the operations above.
    def __radd__(self, other: float) -> Value:
        return self + other

    def __rmul__(self, other: float) -> Value:
        return self * other

    def __neg__(self) -> Value:
        return self * -1.0

    def __sub__(self, other: Value | float) -> Value:
        return self + (-self.wrap(other))

    def __rsub__(self, other: float) -> Value:
        return self.wrap(other) + (-self)
