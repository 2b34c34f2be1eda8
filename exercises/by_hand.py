"""Lecture 4, exercise 2: a forward and backward pass by hand.

The network of the worked example, with other numbers: one example ``x`` of two
inputs, a dense layer of two hidden units, a ReLU, a dense layer of two classes,
then the softmax and the cross-entropy with the label ``y``::

    x  = [[2, 1]]                y  = 1
    W1 = [[1, -2], [0, 1]]       b1 = [0, 1]
    W2 = [[1, 0], [2, 1]]        b2 = [-1, 1]

Work out every entry with pencil and paper, as the lecture does, and write it into
``TABLE`` below in the engine's shapes: a row vector such as ``a1`` is a list of one
list, ``[[a, b]]``; a bias or its gradient is a plain list, ``[a, b]``; a weight
matrix is a list of rows, one row per input. Every value is an integer or a half,
apart from the loss (write it as a number, ``math.log(2)`` is fine). The gradients
are those of the loss, ``dL/d(.)``.

Grade with ``python -m exercises.grade by_hand``; the grader names each wrong entry.
"""

from __future__ import annotations

import math  # noqa: F401  (for the loss, if you like)

TABLE = {
    # forward
    "a1": None,  # x W1 + b1, shape (1, 2)
    "h": None,  # max(a1, 0), shape (1, 2)
    "z": None,  # h W2 + b2, the logits, shape (1, 2)
    "p": None,  # softmax(z), shape (1, 2)
    "loss": None,  # -log p[y], a number
    # backward
    "dz": None,  # (1, 2)
    "dW2": None,  # (2, 2)
    "db2": None,  # (2,)
    "dh": None,  # (1, 2)
    "da1": None,  # (1, 2)
    "dW1": None,  # (2, 2)
    "db1": None,  # (2,)
}
