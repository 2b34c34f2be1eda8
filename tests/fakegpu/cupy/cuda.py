"""``cupy.cuda`` of the stand-in: one device, a fixed memory size, counted syncs.

``FAKEGPU_DEVICES`` (default 1) sets how many devices ``runtime`` reports, so
the "no device" path can be tested too; ``FAKEGPU_MEMORY`` (bytes, default
16 GiB) is the free and the total memory ``memGetInfo`` reports.
"""

from __future__ import annotations

import os
import time
import types
from typing import Any

from cupy._ledger import SYNC, ledger

NAME = "NumPy stand-in (tests/fakegpu)"


class CUDARuntimeError(RuntimeError):
    """What CuPy raises when the CUDA runtime fails."""


def _count() -> int:
    return int(os.environ.get("FAKEGPU_DEVICES", "1"))


def _memory() -> int:
    return int(os.environ.get("FAKEGPU_MEMORY", str(16 * 2**30)))


def _check(device: int) -> None:
    if not 0 <= device < _count():
        raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")


def _get_device_count() -> int:
    if _count() < 1:
        raise CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
    return _count()


def _mem_get_info() -> tuple[int, int]:
    _check(0)
    return _memory(), _memory()


def _device_properties(device: int) -> dict[str, Any]:
    _check(device)
    return {"name": NAME.encode(), "totalGlobalMem": _memory(), "major": 0, "minor": 0}


def _device_synchronize() -> None:
    ledger.record(SYNC, "runtime.deviceSynchronize")


runtime = types.SimpleNamespace(
    getDeviceCount=_get_device_count,
    memGetInfo=_mem_get_info,
    getDeviceProperties=_device_properties,
    deviceSynchronize=_device_synchronize,
    CUDARuntimeError=CUDARuntimeError,
)


class Device:
    """A CUDA device (only device 0 exists)."""

    def __init__(self, device: int = 0) -> None:
        _check(device)
        self.id = device

    def synchronize(self) -> None:
        """Wait for the device (recorded)."""
        ledger.record(SYNC, "device.synchronize")

    @property
    def mem_info(self) -> tuple[int, int]:
        """``(free, total)`` bytes."""
        return _mem_get_info()

    @property
    def compute_capability(self) -> str:
        """A made-up compute capability."""
        return "00"

    def use(self) -> None:
        """Make this the current device (there is only one)."""

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


class Stream:
    """A CUDA stream: work on it is already done; ``synchronize`` is recorded."""

    def __init__(self, non_blocking: bool = False) -> None:
        self.non_blocking = non_blocking

    def synchronize(self) -> None:
        """Wait for the stream (recorded)."""
        ledger.record(SYNC, "stream.synchronize")

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


Stream.null = Stream()


def get_current_stream() -> Stream:
    """The stream work is queued on."""
    return Stream.null


class Event:
    """A CUDA event, timed with the host clock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.time = None

    def record(self, stream: Stream | None = None) -> None:
        """Mark the time."""
        self.time = time.perf_counter()

    def synchronize(self) -> None:
        """Wait for the event (recorded)."""
        ledger.record(SYNC, "event.synchronize")


def get_elapsed_time(start: Event, end: Event) -> float:
    """Milliseconds between two recorded events."""
    return (end.time - start.time) * 1e3
