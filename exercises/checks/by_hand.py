"""Checks of lecture 4's second exercise: every value of a 2-2-2 network by hand.

Each entry is judged twice: against the true value, and against what it
should be given the student's own earlier entries (``h = max(a1, 0)`` with the
student's ``a1``). An entry that is right given a wrong earlier entry is not
marked wrong: the message points at the first mistake, not at everything
computed from it.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from backprop.layers import dense_backward, dense_forward, relu_backward, relu_forward
from backprop.losses import softmax, softmax_cross_entropy
from exercises.checks.core import Check, Wrong, array_of, expect, kind
from exercises.checks.mistakes import diagnose, shape_problem

# The second 2-2-2 network of exercises/by_hand.py (the lecture's worked
# example has other numbers).
X, Y = np.array([[2.0, 1.0]]), np.array([1])
W1, B1 = np.array([[1.0, -2.0], [0.0, 1.0]]), np.array([0.0, 1.0])
W2, B2 = np.array([[1.0, 0.0], [2.0, 1.0]]), np.array([-1.0, 1.0])
FORWARD = ("a1", "h", "z", "p", "loss")
BACKWARD = ("dz", "dW2", "db2", "dh", "da1", "dW1", "db1")
ONE_HOT = np.eye(2)[Y]  # (1, 2)


def truth() -> dict[str, np.ndarray]:
    """Every entry of the table, computed by the engine's layers."""
    a1, dense1 = dense_forward(X, W1, B1)  # (1, 2)
    h, relu = relu_forward(a1)  # (1, 2)
    z, dense2 = dense_forward(h, W2, B2)  # (1, 2)
    loss, dz = softmax_cross_entropy(z, Y)  # (), (1, 2)
    dh, dw2, db2 = dense_backward(dz, dense2)
    da1 = relu_backward(dh, relu)
    _, dw1, db1 = dense_backward(da1, dense1, input_grad=False)
    values = {"a1": a1, "h": h, "z": z, "p": softmax(z), "loss": loss, "dz": dz}
    values |= {"dW2": dw2, "db2": db2, "dh": dh, "da1": da1, "dW1": dw1, "db1": db1}
    return {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}


# entry: (the entries it is computed from, how, the formula to show)
Rule = tuple[tuple[str, ...], Callable[..., np.ndarray], str]
RULES: dict[str, Rule] = {
    "a1": ((), lambda: X @ W1 + B1, "a1 = x W1 + b1"),
    "h": (("a1",), lambda a1: np.maximum(a1, 0), "h = max(a1, 0)"),
    "z": (("h",), lambda h: h @ W2 + B2, "z = h W2 + b2"),
    "p": (("z",), softmax, "p = softmax(z)"),
    "loss": (("p",), lambda p: -np.log(p[0, Y[0]]), "loss = -log p[y]"),
    "dz": (("p",), lambda p: (p - ONE_HOT) / len(X), "dz = (p - y) / N"),
    "dW2": (("h", "dz"), lambda h, dz: h.T @ dz, "dW2 = h^T dz"),
    "db2": (("dz",), lambda dz: dz.sum(axis=0), "db2 = dz summed over the batch"),
    "dh": (("dz",), lambda dz: dz @ W2.T, "dh = dz W2^T"),
    "da1": (("dh", "a1"), lambda dh, a1: dh * (a1 > 0), "da1 = dh [a1 > 0]"),
    "dW1": (("da1",), lambda da1: X.T @ da1, "dW1 = x^T da1"),
    "db1": (("da1",), lambda da1: da1.sum(axis=0), "db1 = da1 summed over the batch"),
}


def table_run(mod: ModuleType) -> Any:
    """The student's TABLE, each entry as a float64 array where it converts."""
    table = getattr(mod, "TABLE", None)
    if not isinstance(table, dict):
        return table
    entries = {}
    for name, value in table.items():
        if value is None:
            entries[str(name)] = None
            continue
        try:
            entries[str(name)] = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            entries[str(name)] = value
    return entries


def entries(table: Any, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The student's entries ``names``, as float arrays.

    Raises:
        NotImplementedError: some are not filled in (a TODO, not a failure).
        Wrong: TABLE is not a dict, or an entry is not a number or numbers.
    """
    expect(isinstance(table, dict), "exercises/by_hand.py must define TABLE, a dict")
    missing = [n for n in names if table.get(n) is None]
    if missing:
        raise NotImplementedError(f"TABLE entries not filled in: {', '.join(missing)}")
    out = {}
    for name in names:
        value = table[name]
        if isinstance(value, np.ndarray) and value.dtype.kind not in "biuf":
            raise Wrong(f"TABLE[{name!r}] holds {value.dtype} values, not numbers")
        try:
            out[name] = array_of(value, f"TABLE[{name!r}]").astype(np.float64)
        except Wrong:
            raise Wrong(
                f"TABLE[{name!r}] is {kind(value)}, expected a number or a list "
                "of numbers"
            ) from None
    return out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal to the precision of a hand calculation."""
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-6, atol=1e-9))


def verdicts(table: Any, names: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """What is wrong with each entry, and which follow from an earlier mistake.

    Returns:
        ``(problems, follows)``: a message per wrong entry, and the names of
        the entries that are wrong only because an earlier one is.
    """
    true = truth()
    mine = entries(table, names)
    for name in RULES:  # earlier entries, where filled in
        if name not in mine:
            try:
                mine |= entries(table, (name,))
            except (NotImplementedError, Wrong):
                continue
    problems, follows = [], []
    for name in names:
        got, want = mine[name], true[name]
        shape = shape_problem(got.shape, want.shape)
        if shape:
            problems.append(f"{name}: {shape}")
            continue
        if _same(got, want):
            continue
        sources, rule, formula = RULES[name]
        usable = all(s in mine and mine[s].shape == true[s].shape for s in sources)
        mine_from = None
        if usable:
            with np.errstate(all="ignore"):
                mine_from = np.asarray(rule(*(mine[s] for s in sources)), np.float64)
        if mine_from is not None and _same(got, mine_from):
            follows.append(name)
            continue
        reference = mine_from if mine_from is not None else want
        mistake = diagnose(got, reference)
        text = f"{name}: {got.tolist()} is not right ({formula})"
        problems.append(text + (f": {mistake}" if mistake else ""))
    return problems, follows


def _verdict(table: Any, names: tuple[str, ...], hint: str = "") -> str | None:
    """Fail with the wrong entries; pass, with a note, if only earlier ones are."""
    problems, follows = verdicts(table, names)
    note = f"right given your earlier entries: {', '.join(follows)}" if follows else ""
    if problems:
        hint = hint if any(p.startswith("dz:") for p in problems) else ""
        raise Wrong("; ".join(problems) + (f" ({note})" if note else "") + hint)
    return note or None


def shapes_judge(table: Any) -> str:
    """Every entry of TABLE is filled in, in the engine's shapes."""
    names = FORWARD + BACKWARD
    true, mine = truth(), entries(table, names)
    wrong = [
        f"{n}: {shape_problem(mine[n].shape, true[n].shape)}"
        for n in names
        if mine[n].shape != true[n].shape
    ]
    expect(not wrong, "; ".join(wrong))
    return f"{len(names)} entries"


def forward_judge(table: Any) -> str | None:
    """The forward values: a1, h, z, p and the loss."""
    return _verdict(table, FORWARD)


def backward_judge(table: Any) -> str | None:
    """The gradients: dz, dW2, db2, dh, da1, dW1, db1."""
    hint = " (start from dz = p - y, then work back one node at a time)"
    return _verdict(table, BACKWARD, hint)


CHECKS = (
    Check("every entry filled in, in the engine's shapes", table_run, shapes_judge),
    Check("forward values", table_run, forward_judge),
    Check("gradients", table_run, backward_judge),
)
