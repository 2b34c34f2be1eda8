"""Solution of lecture 7, exercise 1: reverse-mode autodiff of scalars."""

from __future__ import annotations

import math
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
        other = self.wrap(other)
        out = Value(self.data + other.data, (self, other))

        def backward() -> None:
            self.grad += out.grad
            other.grad += out.grad

        out._backward = backward
        return out

    def __mul__(self, other: Value | float) -> Value:
        """``self * other``: multiply swaps its inputs."""
        other = self.wrap(other)
        out = Value(self.data * other.data, (self, other))

        def backward() -> None:
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = backward
        return out

    def relu(self) -> Value:
        """``max(self, 0)``; its derivative at exactly 0 is 0, as in the engine."""
        out = Value(max(self.data, 0.0), (self,))

        def backward() -> None:
            self.grad += (self.data > 0) * out.grad

        out._backward = backward
        return out

    def exp(self) -> Value:
        """``e ** self``."""
        out = Value(math.exp(self.data), (self,))

        def backward() -> None:
            self.grad += out.data * out.grad

        out._backward = backward
        return out

    def log(self) -> Value:
        """The natural logarithm of ``self`` (a positive Value)."""
        out = Value(math.log(self.data), (self,))

        def backward() -> None:
            self.grad += out.grad / self.data

        out._backward = backward
        return out

    def backward(self) -> None:
        """Fill in ``grad`` of every Value this one depends on (dself/dvalue)."""
        order: list[Value] = []
        seen: set[int] = set()

        def visit(v: Value) -> None:  # depth first: a Value after its parents
            if id(v) in seen:
                return
            seen.add(id(v))
            for parent in v.parents:
                visit(parent)
            order.append(v)

        visit(self)
        self.grad = 1.0
        for v in reversed(order):
            v._backward()

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
