"""Parameters held in one flat buffer, each name a view into it.

A model's ``params`` dict (``dense1.w`` (D, H), ``dense1.b`` (H,), ...) reads
like separate arrays, but every array is a view into one contiguous 1-D buffer.
Writing through a view changes the buffer, so an optimizer can update each
parameter by name (the reference) or all of them in one pass over the buffer
(a fused kernel), and both see the same numbers.
"""

from __future__ import annotations

import math
import types
from typing import Any

Array = Any  # a numpy.ndarray or cupy.ndarray


def flat_buffer(
    shapes: dict[str, tuple[int, ...]], dtype: Any, xp: types.ModuleType
) -> tuple[Array, dict[str, Array]]:
    """A zeroed 1-D buffer and a view of it for each name, in ``shapes`` order.

    Args:
        shapes: name -> shape, e.g. ``{"dense1.w": (784, 128), ...}``.
        dtype: dtype of the buffer.
        xp: numpy or cupy.

    Returns:
        ``(flat, views)``: flat has one entry per parameter value, (P,);
        ``views[name]`` has ``shapes[name]`` and shares memory with ``flat``.
    """
    total = sum(math.prod(shape) for shape in shapes.values())
    flat = xp.zeros(total, dtype=dtype)  # (P,)
    views, start = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        views[name] = flat[start : start + size].reshape(shape)
        start += size
    return flat, views


def shapes_of(arrays: dict[str, Array]) -> dict[str, tuple[int, ...]]:
    """Name -> shape of each array, in order."""
    return {name: tuple(a.shape) for name, a in arrays.items()}


def is_view_of(views: dict[str, Array], flat: Array, xp: types.ModuleType) -> bool:
    """True when the arrays are still views that together cover ``flat``.

    A parameter replaced by a new array (``params["dense1.w"] = w``) no longer
    shares the buffer, and a kernel updating the buffer would miss it.
    """
    sizes = sum(a.size for a in views.values())
    return sizes == flat.size and all(xp.shares_memory(a, flat) for a in views.values())
