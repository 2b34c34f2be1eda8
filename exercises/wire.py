"""What a graded solution's process may send back: plain data, never code.

The student's code runs in a child process (``exercises.worker``); what it
computed comes back to the grader as JSON over a pipe, and nothing else does.
JSON cannot carry code, so unlike a pickle a message cannot run anything in
the grader, and a value the grader cannot read is a failure, not a crash.

A value is encoded as a tree of JSON nodes:

* ``None``, ``true``/``false``, an integer, a float (``NaN`` and ``Infinity``
  included) or a string: itself;
* ``{"array": [dtype, shape, base64 bytes]}``: a NumPy array or scalar of
  booleans or numbers, which keeps its dtype (a float32 answer stays float32);
* ``{"list": [...]}``, ``{"tuple": [...]}``, ``{"dict": [[key, value], ...]}``;
* ``{"opaque": "TypeName"}``: anything else (a student's ``Value`` object
  where a number belongs), so the grader can say what came back.

A frame on the pipe is a 4-byte big-endian length and that many bytes of JSON.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from typing import Any

import numpy as np

MAX_FRAME = 64 * 1024 * 1024  # bytes of one message; more is refused
MAX_DEPTH = 24  # nesting of lists and dicts
_KINDS = "biufc"  # bool, signed, unsigned, float, complex


class WireError(ValueError):
    """A message that is not what the worker is meant to send."""


class Opaque:
    """Stands for a value that cannot travel: an object of some other type.

    Args:
        type_name: the name of its type, for the grader's message.
    """

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"an object of type {self.type_name}"


def _array_node(array: np.ndarray) -> dict[str, Any]:
    """An array of numbers as ``{"array": [dtype, shape, base64]}``."""
    data = base64.b64encode(array.tobytes(order="C")).decode("ascii")
    return {"array": [array.dtype.str, list(array.shape), data]}


def to_tree(value: Any, depth: int = 0) -> Any:
    """A value as JSON nodes (see the module docstring); never raises.

    Args:
        value: what a student's function returned, or a structure of such.
        depth: how deep in the structure this value is.
    """
    if depth > MAX_DEPTH:
        return {"opaque": "structure nested too deeply"}
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else float(value)
    if isinstance(value, float):
        return value
    if isinstance(value, np.ndarray | np.generic):
        if np.dtype(value.dtype).kind in _KINDS:
            return _array_node(np.asarray(value))
        return {"opaque": f"array of dtype {value.dtype}"}
    if isinstance(value, list | tuple):
        key = "list" if isinstance(value, list) else "tuple"
        return {key: [to_tree(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return {"opaque": "dict with keys that are not strings"}
        return {"dict": [[k, to_tree(v, depth + 1)] for k, v in value.items()]}
    if hasattr(value, "__array__"):  # a TensorFlow or PyTorch tensor
        try:
            return to_tree(np.asarray(value), depth)
        except Exception:  # noqa: BLE001 - anything can happen in __array__
            pass
    return {"opaque": type(value).__name__}


def _array_from(node: Any) -> np.ndarray:
    """The array of an ``{"array": ...}`` node, checked entry by entry."""
    if not (isinstance(node, list) and len(node) == 3):
        raise WireError("an array node is not [dtype, shape, data]")
    dtype_text, shape, data = node
    if not isinstance(dtype_text, str) or not isinstance(data, str):
        raise WireError("an array node has a bad dtype or data")
    try:
        dtype = np.dtype(dtype_text)
    except TypeError:
        raise WireError(f"unknown dtype {dtype_text!r}") from None
    if dtype.kind not in _KINDS or dtype.hasobject:
        raise WireError(f"dtype {dtype_text!r} is not a number type")
    if not (
        isinstance(shape, list)
        and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
        )
    ):
        raise WireError("an array node has a bad shape")
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (ValueError, UnicodeError):
        raise WireError("an array's data is not base64") from None
    if len(raw) != math.prod(shape) * dtype.itemsize:
        raise WireError("an array's bytes do not fill its shape")
    try:
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    except (ValueError, OverflowError, MemoryError):
        raise WireError("an array's shape cannot be made") from None


def from_tree(node: Any, depth: int = 0) -> Any:
    """The value a tree of JSON nodes stands for; the inverse of ``to_tree``.

    Args:
        node: a tree from a message.
        depth: how deep in the tree this node is.

    Raises:
        WireError: the tree is not one ``to_tree`` makes.
    """
    if node is None or isinstance(node, bool | int | float | str):
        return node
    if depth > MAX_DEPTH + 1:
        raise WireError("a value is nested too deeply")
    if not (isinstance(node, dict) and len(node) == 1):
        raise WireError("a node is neither a plain value nor a one-key object")
    ((key, body),) = node.items()
    if key == "array":
        return _array_from(body)
    if key in ("list", "tuple") and isinstance(body, list):
        items = [from_tree(v, depth + 1) for v in body]
        return items if key == "list" else tuple(items)
    if key == "dict" and isinstance(body, list):
        out = {}
        for pair in body:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise WireError("a dict entry is not [key, value]")
            if not isinstance(pair[0], str):
                raise WireError("a dict key is not a string")
            out[pair[0]] = from_tree(pair[1], depth + 1)
        return out
    if key == "opaque" and isinstance(body, str):
        return Opaque(body[:80])
    raise WireError(f"unknown node {key!r}")


def frame(message: dict[str, Any]) -> bytes:
    """A message as one frame: its length, then its JSON."""
    data = json.dumps(message).encode("utf-8")
    return struct.pack(">I", len(data)) + data


class FrameReader:
    """Splits bytes read from the pipe into messages (dicts)."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add bytes; return the messages now complete.

        Raises:
            WireError: a frame is too long or not a JSON object.
        """
        self.buffer += data
        messages = []
        while len(self.buffer) >= 4:
            (size,) = struct.unpack(">I", self.buffer[:4])
            if size > MAX_FRAME:
                raise WireError(f"a message of {size / 2**20:.0f} MiB is too large")
            if len(self.buffer) < 4 + size:
                break
            data, self.buffer = self.buffer[4 : 4 + size], self.buffer[4 + size :]
            try:
                message = json.loads(data.decode("utf-8"))
            except (ValueError, RecursionError):
                raise WireError("a message is not JSON") from None
            if not isinstance(message, dict):
                raise WireError("a message is not a JSON object")
            messages.append(message)
        return messages
