"""What a training run will allocate, worked out before it allocates anything.

``--hidden 1000000000`` or a huge ``--batch-size`` would otherwise fail deep
inside NumPy with a ``MemoryError``, or be killed by the system after
minutes of swapping. ``check_fits`` multiplies the sizes out (an estimate:
the large arrays, not every temporary) and refuses a run that needs more
than the free memory of its device, with the numbers in the message.
"""

from __future__ import annotations

import types
from collections.abc import Sequence

import numpy as np

from backprop.device import available_memory
from backprop.errors import ConfigError

UNKNOWN_LIMIT = 1 << 50  # 1 PiB: the bound when the free memory is unknown
TEST_BATCH = 4096  # rows per forward pass when scoring (training.loss_and_accuracy)


def training_bytes(
    sizes: Sequence[int],
    batch_size: int,
    n_train: int,
    n_test: int,
    dtype: str,
) -> dict[str, int]:
    """The bytes of the large arrays a run allocates, by what they hold.

    Args:
        sizes: layer widths, inputs to classes, e.g. ``[784, 128, 10]``.
        batch_size: ``--batch-size`` (a batch never exceeds ``n_train``).
        n_train: training examples.
        n_test: test examples.
        dtype: ``float32`` or ``float64``.

    Returns:
        what -> bytes.
    """
    item = np.dtype(dtype).itemsize
    layers = list(zip(sizes[:-1], sizes[1:]))
    params = sum((fan_in + 1) * fan_out for fan_in, fan_out in layers)
    batch = min(batch_size, n_train)
    widths = sum(sizes)
    return {
        # weights, gradients, Adam's m and v, and the float64 draw of the init
        "the parameters, their gradients and Adam's moments": 4 * params * item
        + 8 * max(a * b for a, b in layers),
        "one batch's activations and their gradients": 3 * batch * widths * item,
        # the training set stays uint8 pixels (each step scales its batch)
        "the pixels, and the test inputs as floats": (n_train + n_test * item)
        * sizes[0],
        "scoring the test set": 2 * min(n_test, TEST_BATCH) * widths * item,
    }


def human(count: int) -> str:
    """Bytes as ``1.5 GB`` (powers of 1000), for messages."""
    value = float(count)
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def check_fits(
    sizes: Sequence[int],
    batch_size: int,
    n_train: int,
    n_test: int,
    dtype: str,
    xp: types.ModuleType = np,
) -> None:
    """Refuse a run whose arrays do not fit in the free memory of ``xp``'s device.

    Args:
        sizes: layer widths, as for ``training_bytes``.
        batch_size: ``--batch-size``.
        n_train: training examples.
        n_test: test examples.
        dtype: ``float32`` or ``float64``.
        xp: numpy or cupy, the device the run trains on.

    Raises:
        ConfigError: the estimate exceeds the free memory (or 1 PiB when it
            is unknown); the message gives the numbers.
    """
    needs = training_bytes(sizes, batch_size, n_train, n_test, dtype)
    total = sum(needs.values())
    free = available_memory(xp)
    limit = UNKNOWN_LIMIT if free is None else free
    if total > limit:
        largest = max(needs, key=needs.__getitem__)
        raise ConfigError(
            f"the model {list(sizes)} with --batch-size {batch_size} ({dtype}) needs "
            f"about {human(total)} of memory ({largest}: {human(needs[largest])}), "
            f"more than the {human(limit)} {'free' if free is not None else 'allowed'}"
        )
