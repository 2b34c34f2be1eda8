"""Solution of lecture 4, exercise 2: a forward and backward pass by hand.

Forward: a1 = (2 + 0 + 0, -4 + 1 + 1) = (2, -2); h = (2, 0);
z = (2 + 0 - 1, 0 + 0 + 1) = (1, 1), so p = (1/2, 1/2) and the loss is ln 2.
Backward (label 1, N = 1): dz = p - y = (1/2, -1/2); dW2 = h^T dz has the row
(1, -1) for the live unit and zeros for the other; db2 = dz;
dh = dz W2^T = (1/2 - 0, 1 - 1/2) = (1/2, 1/2); the ReLU stops the second:
da1 = (1/2, 0); dW1 = x^T da1 = [[1, 0], [1/2, 0]]; db1 = da1.
"""

from __future__ import annotations

import math

TABLE = {
    "a1": [[2, -2]],
    "h": [[2, 0]],
    "z": [[1, 1]],
    "p": [[0.5, 0.5]],
    "loss": math.log(2),
    "dz": [[0.5, -0.5]],
    "dW2": [[1, -1], [0, 0]],
    "db2": [0.5, -0.5],
    "dh": [[0.5, 0.5]],
    "da1": [[0.5, 0]],
    "dW1": [[1, 0], [0.5, 0]],
    "db1": [0.5, 0],
}
