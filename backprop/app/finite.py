"""A good epoch is a finite one: finding NaN and infinity in a run's numbers.

The training loss is checked step by step (``training.epoch_summary``), but
it is measured before each update, so the last steps of an epoch can still
leave the weights infinite, or finite yet so large that the test loss is NaN.
``check_finite`` looks at everything an epoch leaves (the weights, the
optimizer's moments, every number of its history record) before the epoch
is saved; ``first_non_finite`` finds the number that JSON could not hold.
"""

from __future__ import annotations

import math
from typing import Any

from backprop.device import xp_of
from backprop.errors import NonFiniteLossError

Array = Any  # a numpy.ndarray or cupy.ndarray


def first_non_finite(value: Any, where: str = "") -> str | None:
    """Where a NaN or infinite float hides in nested lists and dicts, or None.

    Returns:
        e.g. ``"['test_loss'] = nan"``, or None when every float is finite.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where or 'the value'} = {value}"
    if not isinstance(value, dict | list | tuple):
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        found = first_non_finite(item, f"{where}[{key!r}]")
        if found:
            return found
    return None


def check_finite(epoch: int, record: dict, arrays: dict[str, Array]) -> None:
    """Stop at an epoch whose state or numbers are not all finite.

    Args:
        epoch: the epoch number, for the message.
        record: its history record (``training.epoch_record``).
        arrays: what -> array, e.g. ``{"the weights": model.flat}``; None
            and int entries (moments before the first step, Adam's step
            count in its ``state_dict``) are skipped.

    Raises:
        NonFiniteLossError: naming the epoch and what is not finite.
    """
    for what, array in arrays.items():
        if isinstance(array, int | None):
            continue
        if not bool(xp_of(array).isfinite(array).all()):
            raise NonFiniteLossError(
                f"epoch {epoch}: NaN or infinite values in {what}; training stopped"
            )
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        if not math.isfinite(record[key]):
            raise NonFiniteLossError(
                f"epoch {epoch}: {key.replace('_', ' ')} is {record[key]}; "
                "training stopped"
            )
    found = first_non_finite(record)
    if found:
        raise NonFiniteLossError(f"epoch {epoch}: {found}; training stopped")
