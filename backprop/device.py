"""Devices: the only module that imports CuPy.

The engine is written once against an array module ``xp``: NumPy on the CPU,
CuPy on an NVIDIA GPU (the Chainer/CuPy "CPU/GPU agnostic" style). Every
function that computes starts with ``xp = xp_of(x)``; arrays cross between host
and device here and nowhere else.
"""

from __future__ import annotations

import functools
import os
import types
from typing import Any

import numpy as np

from backprop.errors import DeviceError

DEVICES = ("auto", "cpu", "gpu")

_INSTALL_HINT = (
    "install the GPU extra: pip install -e '.[gpu]' (CUDA 12) or '.[gpu-cuda13]'"
)


@functools.cache
def _import_cupy() -> types.ModuleType | None:
    """Return the cupy module, or None when it is not installed or broken.

    Cached: a failed import is not retried at every ``xp_of`` call.
    """
    try:
        import cupy
    except Exception:  # ImportError, or a CUDA library that fails to load
        return None
    return cupy


def gpu_status() -> str | None:
    """Say why the GPU cannot be used, or return None when it can.

    Returns:
        None if CuPy imports and sees at least one CUDA device; otherwise a
        short reason suitable for an error message.
    """
    cupy = _import_cupy()
    if cupy is None:
        return f"CuPy is not installed; {_INSTALL_HINT}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"CuPy found no CUDA device ({first_line})"
    if count < 1:
        return "CuPy found no CUDA device"
    return None


def resolve_device(device: str, *, announce: bool = True) -> str:
    """Turn ``auto``/``cpu``/``gpu`` into ``cpu`` or ``gpu``.

    Args:
        device: one of ``DEVICES``.
        announce: print a one-line notice when ``auto`` falls back to the CPU
            although CuPy is installed (without CuPy the CPU is no news).

    Returns:
        ``"cpu"`` or ``"gpu"``.

    Raises:
        DeviceError: ``gpu`` was asked for and is not available, or the name is
            unknown.
    """
    if device not in DEVICES:
        raise DeviceError(
            f"unknown device {device!r}; choose one of {', '.join(DEVICES)}"
        )
    if device == "cpu":
        return "cpu"
    reason = gpu_status()
    if reason is None:
        return "gpu"
    if device == "gpu":
        raise DeviceError(f"--device gpu is not available: {reason}")
    if announce and _import_cupy() is not None:
        print(f"device auto: using the CPU ({reason})")
    return "cpu"


def get_xp(device: str) -> types.ModuleType:
    """Return the array module for a resolved device: numpy or cupy."""
    if resolve_device(device, announce=False) == "gpu":
        return _import_cupy()
    return np


def xp_of(*arrays: Any) -> types.ModuleType:
    """Return the array module (numpy or cupy) that holds ``arrays``."""
    cupy = _import_cupy()
    if cupy is None:
        return np
    return cupy.get_array_module(*arrays)


def to_device(array: Any, xp: types.ModuleType) -> Any:
    """Copy a host array to the device of ``xp`` (no copy when already there)."""
    return xp.asarray(array)


def to_numpy(array: Any) -> np.ndarray:
    """Copy an array from any device to a NumPy array on the host."""
    if isinstance(array, np.ndarray | np.generic):
        return np.asarray(array)
    return array.get()


def available_memory(xp: types.ModuleType = np) -> int | None:
    """Bytes free for new arrays on the device of ``xp``, or None when unknown.

    On the CPU: Linux's ``MemAvailable`` (or the physical memory), lowered to
    what the process's cgroup still allows; on a GPU: CUDA's free memory.
    """
    if xp is not np:
        try:
            return int(xp.cuda.runtime.memGetInfo()[0])
        except Exception:  # no driver, no device
            return None
    found = []
    try:
        with open("/proc/meminfo") as f:
            found += [int(x.split()[1]) * 1024 for x in f if x[:13] == "MemAvailable:"]
    except (OSError, ValueError, IndexError):
        pass
    if not found and hasattr(os, "sysconf"):
        found.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    limit, used = (_read_text(f"/sys/fs/cgroup/memory.{n}") for n in ("max", "current"))
    if limit.isdigit() and used.isdigit():  # a container's limit (cgroup v2)
        found.append(max(0, int(limit) - int(used)))
    return min(found) if found else None


def _read_text(path: str) -> str:
    """A small text file's stripped content, or "" when it cannot be read."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def synchronize(xp: types.ModuleType) -> None:
    """Wait for queued GPU work to finish (a no-op on the CPU); for timing."""
    if xp is not np:
        xp.cuda.get_current_stream().synchronize()
