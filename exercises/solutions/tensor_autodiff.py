"""Solution of lecture 7a, exercise 1: reverse-mode autodiff of arrays."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The gradient of an input that broadcasting stretched to ``grad.shape``.

    Args:
        grad: the gradient of the broadcast result, e.g. (N, H).
        shape: the input's own shape, e.g. (H,) for a bias.

    Returns:
        ``grad`` summed over the axes that broadcasting added or stretched,
        shape ``shape``.
    """
    extra = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(extra)))  # the leading axes the input lacks
    stretched = tuple(k for k, n in enumerate(shape) if n == 1 and grad.shape[k] != 1)
    return grad.sum(axis=stretched, keepdims=True)  # its axes of length 1


class Tensor:
    """An array in a computational graph.

    Args:
        data: the array (any shape), kept in float64.
        parents: the Tensors this one was computed from.
        op: the operation that made it ("" for a leaf), for reading graphs.
    """

    def __init__(
        self, data: np.ndarray | float, parents: tuple[Tensor, ...] = (), op: str = ""
    ) -> None:
        self.data = np.asarray(data, dtype=np.float64)
        self.grad = np.zeros_like(self.data)  # dL/d(self), same shape as data
        self.parents = parents
        self.op = op
        self._backward: Callable[[], None] = lambda: None  # a leaf passes nothing on

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``data`` (and of ``grad``)."""
        return self.data.shape

    def __repr__(self) -> str:
        return f"Tensor(shape={self.shape}, op={self.op or 'leaf'!r})"

    def __matmul__(self, other: Tensor) -> Tensor:
        """``self @ other`` for (N, D) @ (D, H): Lecture 4's dense gradients."""
        out = Tensor(self.data @ other.data, (self, other), "matmul")  # (N, H)

        def backward() -> None:
            self.grad += out.grad @ other.data.T  # (N, D)
            other.grad += self.data.T @ out.grad  # (D, H)

        out._backward = backward
        return out

    def __add__(self, other: Tensor) -> Tensor:
        """``self + other`` with NumPy's broadcasting, e.g. (N, H) + (H,)."""
        out = Tensor(self.data + other.data, (self, other), "add")

        def backward() -> None:
            self.grad += unbroadcast(out.grad, self.shape)
            other.grad += unbroadcast(out.grad, other.shape)

        out._backward = backward
        return out

    def relu(self) -> Tensor:
        """``max(self, 0)``; its derivative at exactly 0 is 0, as in the engine."""
        out = Tensor(np.maximum(self.data, 0.0), (self,), "relu")

        def backward() -> None:
            self.grad += (self.data > 0) * out.grad

        out._backward = backward
        return out

    def log_softmax(self) -> Tensor:
        """Log-probabilities of (N, C) logits, row by row, computed stably."""
        shifted = self.data - self.data.max(axis=1, keepdims=True)  # (N, C)
        lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, 1)
        out = Tensor(shifted - lse, (self,), "log_softmax")  # (N, C)

        def backward() -> None:
            probs = np.exp(out.data)  # (N, C)
            total = out.grad.sum(axis=1, keepdims=True)  # (N, 1)
            self.grad += out.grad - probs * total

        out._backward = backward
        return out

    def nll(self, labels: np.ndarray) -> Tensor:
        """Mean of ``-self[i, labels[i]]`` over the rows of (N, C) log-probabilities."""
        n = self.shape[0]
        rows = np.arange(n)  # (N,)
        out = Tensor(-self.data[rows, labels].mean(), (self,), "nll")  # ()

        def backward() -> None:
            grad = np.zeros_like(self.data)  # (N, C)
            grad[rows, labels] = -out.grad / n
            self.grad += grad

        out._backward = backward
        return out

    def topological_order(self) -> list[Tensor]:
        """Every Tensor this one depends on, each once, after all its parents."""
        order: list[Tensor] = []
        seen: set[int] = set()

        def visit(t: Tensor) -> None:  # depth first: a Tensor after its parents
            if id(t) in seen:
                return
            seen.add(id(t))
            for parent in t.parents:
                visit(parent)
            order.append(t)

        visit(self)
        return order

    def backward(self) -> None:
        """Fill in ``grad`` of every Tensor this one depends on."""
        self.grad = np.ones_like(self.data)  # dL/dL = 1
        for t in reversed(self.topological_order()):
            t._backward()


def cross_entropy(logits: Tensor, labels: np.ndarray) -> Tensor:
    """The mean cross-entropy of (N, C) logits and (N,) integer labels."""
    return logits.log_softmax().nll(labels)


def mlp_loss(params: dict[str, Tensor], x: np.ndarray, y: np.ndarray) -> Tensor:
    """The engine's MLP and its mean cross-entropy, built from Tensors.

    Args:
        params: ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ..., as Tensors.
        x: inputs, (N, D).
        y: integer labels, (N,).

    Returns:
        the loss, a 0-d Tensor.
    """
    layers = len(params) // 2
    out = Tensor(x)  # (N, D)
    for i in range(1, layers + 1):
        out = out @ params[f"dense{i}.w"] + params[f"dense{i}.b"]  # (N, H_i)
        if i < layers:
            out = out.relu()
    return cross_entropy(out, y)


def loss_and_grads(
    params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
) -> tuple[float, dict[str, np.ndarray]]:
    """``MLP.loss_and_grads``, by automatic differentiation.

    Args:
        params: the engine's parameters, name -> array.
        x: inputs, (N, D).
        y: integer labels, (N,).

    Returns:
        the loss and the gradient of every parameter, under the same names.
    """
    tensors = {name: Tensor(p) for name, p in params.items()}
    loss = mlp_loss(tensors, x, y)
    loss.backward()
    return float(loss.data), {name: t.grad for name, t in tensors.items()}
