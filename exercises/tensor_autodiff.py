"""Lecture 7a, exercise 1: reverse-mode automatic differentiation of arrays.

Lecture 7's ``Value`` held one number; a ``Tensor`` holds a whole array, so the
paper's network is a graph of twelve nodes instead of millions. The algorithm is
the same: each Tensor remembers the Tensors it came from (``parents``) and a
function ``_backward`` that, once its ``grad`` (dL/dtensor, the shape of
``data``) is complete, *adds* its contribution to each parent's ``grad``.
``backward()`` sorts the graph topologically (every Tensor after its parents),
sets the output's ``grad`` to ones and calls ``_backward`` in reverse order.

The gradient of each operation is one of Lecture 4's formulas, for an upstream
gradient ``out.grad`` of the output's shape:

    matmul       out = A @ B          dA = dout @ B.T,  dB = A.T @ dout
    add          out = A + B          dA = dout, dB = dout, each summed back to its
                                      input's shape (``unbroadcast``): a bias (H,)
                                      added to every row of (N, H) gets the sum
                                      over the batch axis
    relu         out = max(A, 0)      dA = dout * [A > 0]   (0 at exactly 0)
    log_softmax  out = Z - lse(Z)     dZ = dout - softmax(Z) * (row sums of dout)
    nll          out = -mean_i A[i, y_i]   dA = -dout / N at (i, y_i), 0 elsewhere

Every ``_backward`` uses ``+=``: a Tensor used twice gets the sum of both
gradients. The grader tests each operation alone: it sets ``out.grad`` and calls
``out._backward()``, so read the upstream gradient from ``out.grad``.

About 70 lines in all; fill in everything marked TODO. Grade with

    python -m exercises.grade tensor_autodiff

The last check builds the paper's kind of network from your Tensors and compares
its loss and gradients with the engine's ``MLP.loss_and_grads`` within 1e-12 in
float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The gradient of an input that broadcasting stretched to ``grad.shape``.

    Broadcasting lines shapes up from the right; an input of ``shape`` is copied
    along the leading axes it lacks and along its axes of length 1. Every copy
    passes its gradient back, so the input's gradient is the sum over those axes.

    Args:
        grad: the gradient of the broadcast result, e.g. (N, H).
        shape: the input's own shape, e.g. (H,) for a bias, or (N, 1).

    Returns:
        ``grad`` summed over the axes that broadcasting added or stretched,
        shape ``shape``; e.g. (N, H) -> (H,) sums over the batch axis 0, and
        (N, H) -> (N, 1) sums over axis 1 and keeps it.
    """
    # TODO: sum over the grad.ndim - len(shape) leading axes, then over each
    # axis k where shape[k] == 1 (keepdims=True)
    raise NotImplementedError("unbroadcast is not written yet")


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
        # TODO: out = Tensor(self.data @ other.data, (self, other), "matmul");
        # a _backward that adds out.grad @ other.data.T to self.grad and
        # self.data.T @ out.grad to other.grad; return out
        raise NotImplementedError("Tensor.__matmul__ is not written yet")

    def __add__(self, other: Tensor) -> Tensor:
        """``self + other`` with NumPy's broadcasting, e.g. (N, H) + (H,)."""
        # TODO: each input gets out.grad, summed back to its shape (unbroadcast)
        raise NotImplementedError("Tensor.__add__ is not written yet")

    def relu(self) -> Tensor:
        """``max(self, 0)``; its derivative at exactly 0 is 0, as in the engine."""
        # TODO: the mask comes from the input, self.data > 0
        raise NotImplementedError("Tensor.relu is not written yet")

    def log_softmax(self) -> Tensor:
        """Log-probabilities of (N, C) logits, row by row, computed stably."""
        # TODO: subtract each row's maximum before exp (then nothing overflows);
        # backward: dout - softmax * dout.sum(axis=1, keepdims=True)
        raise NotImplementedError("Tensor.log_softmax is not written yet")

    def nll(self, labels: np.ndarray) -> Tensor:
        """Mean of ``-self[i, labels[i]]`` over the rows of (N, C) log-probabilities."""
        # TODO: a 0-d output; backward puts -out.grad / N at each (i, labels[i])
        raise NotImplementedError("Tensor.nll is not written yet")

    def topological_order(self) -> list[Tensor]:
        """Every Tensor this one depends on, each once, after all its parents."""
        # TODO: a depth-first search from self that appends a Tensor after
        # visiting all its parents, and skips Tensors it has seen (by id)
        raise NotImplementedError("Tensor.topological_order is not written yet")

    def backward(self) -> None:
        """Fill in ``grad`` of every Tensor this one depends on."""
        # TODO: self.grad = ones of self's shape, then _backward() of every
        # Tensor of topological_order(), from the last to the first
        raise NotImplementedError("Tensor.backward is not written yet")


def cross_entropy(logits: Tensor, labels: np.ndarray) -> Tensor:
    """The mean cross-entropy of (N, C) logits and (N,) integer labels."""
    return logits.log_softmax().nll(labels)


def mlp_loss(params: dict[str, Tensor], x: np.ndarray, y: np.ndarray) -> Tensor:
    """The engine's MLP and its mean cross-entropy, built from Tensors.

    Args:
        params: ``dense1.w`` (D, H1), ``dense1.b`` (H1,), ..., ``denseL.w``
            (H_{L-1}, C), ``denseL.b`` (C,), as Tensors.
        x: inputs, (N, D).
        y: integer labels, (N,).

    Returns:
        the loss, a 0-d Tensor.
    """
    # TODO: out = Tensor(x); for each layer out = out @ w + b, then relu on
    # every layer but the last; return cross_entropy(out, y)
    raise NotImplementedError("mlp_loss is not written yet")


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
