"""A checkpoint's fields, checked one by one before anything uses them.

A ``model.npz`` may have been edited, truncated or written by something else.
Each check here names the file and the field, and raises ``CheckpointError``
with one line, so a tampered checkpoint never reaches the model or the
optimizer as a wrong type, shape, dtype or a NaN.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from backprop.errors import CheckpointError

HISTORY_KEYS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
META_TYPES = {
    "rng_state": (dict, type(None)),
    "config": dict,
    "history": list,
    "versions": dict,
}
FLOAT_DTYPES = ("float32", "float64")


def describe(array: np.ndarray) -> str:
    """``float64 (3, 4)``: an array's dtype and shape, for messages."""
    return f"{array.dtype} {tuple(array.shape)}"


def check_meta(path: Path, meta: Any) -> dict:
    """The metadata's object, with the types ``Checkpoint`` needs.

    Raises:
        CheckpointError: not a JSON object, a field of the wrong type, or a
            history that is not a list of epoch records 1, 2, ... whose losses
            and accuracies (those it has) are finite numbers.
    """
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{path}: its metadata is a {type(meta).__name__}, not an object"
        )
    for key, types in META_TYPES.items():
        if key in meta and not isinstance(meta[key], types):
            raise CheckpointError(
                f"{path}: metadata field {key!r} is a {type(meta[key]).__name__}"
            )
    for i, record in enumerate(meta.get("history", []), start=1):
        bad = not isinstance(record, dict) or record.get("epoch") != i
        for key in () if bad else set(HISTORY_KEYS[1:]) & set(record):
            value = record[key]
            number = isinstance(value, int | float) and not isinstance(value, bool)
            bad = bad or not (number and math.isfinite(value))
        if bad:
            raise CheckpointError(
                f"{path}: history entry {i} is not epoch {i} with finite "
                f"{', '.join(HISTORY_KEYS[1:])}"
            )
    return meta


def check_params(path: Path, params: dict[str, np.ndarray]) -> None:
    """Weights: float32 or float64 (one dtype), 1, 2 or 4 dimensions, finite.

    Whether they form an MLP or a CNN (names, matching shapes) is
    ``MLP.from_params``'s or ``CNN.from_params``'s check; 4 dimensions are a
    convolution's kernel (KH, KW, C, F).
    """
    if not params:
        raise CheckpointError(f"{path}: holds no parameters")
    dtypes = {str(p.dtype) for p in params.values()}
    for name, p in params.items():
        if str(p.dtype) not in FLOAT_DTYPES or p.ndim not in (1, 2, 4) or p.size == 0:
            raise CheckpointError(
                f"{path}: parameter {name} is {describe(p)}; expected float32 or "
                "float64 with 1, 2 or 4 non-empty dimensions"
            )
        if not np.isfinite(p).all():
            raise CheckpointError(f"{path}: parameter {name} holds NaN or infinity")
    if len(dtypes) > 1:
        raise CheckpointError(f"{path}: parameters mix dtypes {sorted(dtypes)}")


def check_optimizer(
    path: Path, optimizer: dict[str, np.ndarray], params: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Adam's state: a step count ``t``, and ``m.``/``v.`` moments like ``params``.

    An empty state (a checkpoint of weights only) is allowed. A run with
    ``--ema`` also keeps the weights Adam steps, ``w.<name>`` (its ``params``
    are their average).

    Returns:
        the state with ``t`` as an int, as ``Adam.load_state_dict`` takes it.

    Raises:
        CheckpointError: a field is missing, unexpected, or of the wrong type,
            shape or dtype, a moment is not finite, or ``v`` is negative.
    """
    if not optimizer:
        return {}
    t = optimizer.get("t")
    if t is None or t.shape != () or t.dtype.kind not in "iu" or int(t) < 0:
        shown = "missing" if t is None else describe(t)
        raise CheckpointError(
            f"{path}: optimizer step count t is {shown}; expected an integer >= 0"
        )
    expected = {f"{k}.{name}" for name in params for k in "mv"} if int(t) else set()
    fields = set(optimizer) - {"t"}
    if expected and any(key.startswith("w.") for key in fields):
        expected |= {f"w.{name}" for name in params}
    if fields != expected:
        odd = sorted(fields - expected) or sorted(expected - fields)
        what = "unexpected" if fields - expected else "missing"
        raise CheckpointError(f"{path}: optimizer fields {what}: {', '.join(odd)}")
    for key in sorted(fields):
        value, like = optimizer[key], params[key[2:]]
        if value.shape != like.shape or value.dtype != like.dtype:
            raise CheckpointError(
                f"{path}: optimizer {key} is {describe(value)}, but its "
                f"parameter is {describe(like)}"
            )
        if not np.isfinite(value).all() or (key[0] == "v" and (value < 0).any()):
            raise CheckpointError(f"{path}: optimizer {key} holds invalid values")
    return {**optimizer, "t": int(t)}


def restore_rng(rng: np.random.Generator, state: Any, path: Path) -> None:
    """Set a generator to a checkpoint's state.

    Raises:
        CheckpointError: the state is missing or not one NumPy can restore.
    """
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise CheckpointError(
            f"{path}: its random generator state cannot be restored ({exc})"
        ) from None
