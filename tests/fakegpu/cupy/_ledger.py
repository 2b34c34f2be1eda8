"""What crossed between host and "device", and where in the code it happened.

Every host-to-device copy, device-to-host read and synchronisation of the
stand-in is recorded here as an ``Event``: its kind, the bytes it moved, and the
first line of code outside this stand-in that asked for it (``site``, as
``path/to/file.py:LINE function``). ``ledger.reset()`` starts a count afresh.

With ``FAKEGPU_REPORT=/some/file.json`` in the environment, the whole ledger is
written there as JSON when the process exits, so a test can count what a
command run in a subprocess did.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

_HERE = str(Path(__file__).resolve().parents[1])  # tests/fakegpu
TO_DEVICE, TO_HOST, SYNC = "to_device", "to_host", "sync"
_PASSING_ON = str(Path("backprop", "device.py"))


@dataclass
class Event:
    """One transfer or synchronisation."""

    kind: str  # TO_DEVICE, TO_HOST or SYNC
    how: str  # e.g. "asarray", "get", "float", "index", "stream.synchronize"
    nbytes: int
    site: str  # the first frame outside the stand-in: "file.py:LINE function"


@dataclass
class Ledger:
    """Every event since the last ``reset``."""

    events: list[Event] = field(default_factory=list)

    def record(self, kind: str, how: str, nbytes: int = 0) -> None:
        """Add one event, with the site of the code that caused it."""
        self.events.append(Event(kind, how, int(nbytes), _caller()))

    def reset(self) -> None:
        """Forget every event so far."""
        self.events.clear()

    def of(self, kind: str) -> list[Event]:
        """The events of one kind, in order."""
        return [e for e in self.events if e.kind == kind]

    @property
    def to_device(self) -> int:
        """Host-to-device copies."""
        return len(self.of(TO_DEVICE))

    @property
    def to_host(self) -> int:
        """Device-to-host reads."""
        return len(self.of(TO_HOST))

    @property
    def syncs(self) -> int:
        """Synchronisations."""
        return len(self.of(SYNC))

    def as_json(self) -> dict:
        """The events as plain data."""
        return {"events": [asdict(e) for e in self.events]}


def _caller() -> str:
    """``file:line function`` of the innermost frame that is neither the
    stand-in nor ``backprop/device.py`` (whose ``to_device``/``to_numpy`` only
    pass a request on)."""
    frame = sys._getframe(1)
    while frame is not None and (
        frame.f_code.co_filename.startswith(_HERE)
        or frame.f_code.co_filename.endswith(_PASSING_ON)
    ):
        frame = frame.f_back
    if frame is None:
        return "?"
    code = frame.f_code
    return f"{_short(code.co_filename)}:{frame.f_lineno} {code.co_name}"


def _short(path: str) -> str:
    """A path from its package folder on (``backprop/training.py``)."""
    parts = Path(path).parts
    for root in ("backprop", "tf_reference", "tests", "benchmarks"):
        if root in parts:
            return "/".join(parts[len(parts) - parts[::-1].index(root) - 1 :])
    return path


ledger = Ledger()


def _write_report() -> None:
    target = os.environ.get("FAKEGPU_REPORT")
    if target:
        Path(target).write_text(json.dumps(ledger.as_json()))


atexit.register(_write_report)
