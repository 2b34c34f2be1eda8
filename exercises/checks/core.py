"""A check in two halves: ``run`` calls the student's code, ``judge`` decides.

``run(module)`` executes in the child process with the student's module, and
returns what the student's functions gave back (arrays, numbers, lists and
dicts of them; see ``exercises.wire``). ``judge(outputs)`` executes in the
grader's process, which the student's code never touches: it computes the
expected values itself and returns (the check passed; it may return a short
detail to print) or raises ``Wrong`` with what is wrong. Both halves make
their inputs with the same seeded generators, so they agree on them without
sending them.

The functions below turn what came back into the types a judge needs, with a
message in the student's terms when it is something else (a tuple where an
array belongs, a ``Value`` object where a number belongs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from exercises.wire import Opaque


class Wrong(AssertionError):
    """A check found a wrong answer; the message says what and where."""


def expect(condition: bool, message: str) -> None:
    """Raise ``Wrong(message)`` unless ``condition`` holds."""
    if not condition:
        raise Wrong(message)


@dataclass(frozen=True)
class Check:
    """One check of an exercise.

    Attributes:
        description: the line the grader prints.
        run: ``run(module)`` returns the student's outputs (child process).
        judge: ``judge(outputs)`` returns an optional detail or raises
            ``Wrong`` (grader process).
    """

    description: str
    run: Callable[[ModuleType], Any]
    judge: Callable[[Any], str | None]


def kind(value: Any) -> str:
    """What a value is, in a few words: ``a tuple of 2``, ``None``, ``a float``."""
    if value is None:
        return "None"
    if isinstance(value, Opaque):
        return repr(value)
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}" if value.ndim else "a number"
    if isinstance(value, list | tuple):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


def parts(value: Any, count: int, what: str) -> tuple[Any, ...]:
    """The ``count`` items of a returned tuple (or list), else ``Wrong``.

    Used in the child process too, where a function must return a pair
    before the next step of the check can use it.

    Args:
        value: what the student's function returned.
        count: how many items it must have.
        what: how to describe it, e.g. ``"leaky_relu_forward's result"``.
    """
    if not (isinstance(value, list | tuple) and len(value) == count):
        raise Wrong(f"{what} is {kind(value)}, expected a tuple of {count}")
    return tuple(value)


def array_of(value: Any, what: str) -> np.ndarray:
    """A returned array (or number, or list of numbers) as a NumPy array.

    Raises:
        Wrong: it is None, an object, or a ragged list.
    """
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, bool | int | float):
        return np.asarray(value)
    if isinstance(value, list | tuple) and not _holds_objects(value):
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            pass
    raise Wrong(f"{what} is {kind(value)}, expected an array of numbers")


def _holds_objects(value: Any) -> bool:
    """True when a nested list holds anything but numbers and arrays."""
    if isinstance(value, list | tuple):
        return any(_holds_objects(v) for v in value)
    return not isinstance(value, bool | int | float | np.ndarray)


def number_of(value: Any, what: str) -> float:
    """A returned number (a float, an int, a 0-d or 1-entry array) as a float."""
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind != "c":
        return float(value.reshape(()))
    raise Wrong(f"{what} is {kind(value)}, expected a number")


def dict_of(value: Any, what: str) -> dict[str, Any]:
    """A returned dict, else ``Wrong``."""
    if not isinstance(value, dict):
        raise Wrong(f"{what} is {kind(value)}, expected a dict")
    return value


def plain(value: Any) -> Any:
    """Numbers and sequences as Python values, for exact comparisons.

    A 0-d array becomes its number and a list or tuple becomes a tuple, so
    ``(np.int64(8), [28, 28])`` compares equal to ``(8, (28, 28))``.
    """
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else tuple(plain(v) for v in value)
    if isinstance(value, list | tuple):
        return tuple(plain(v) for v in value)
    return value
