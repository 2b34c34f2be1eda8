"""Run a student's file in a child process with a time limit, and collect outputs.

The grader never imports a student's file. ``run_checks`` starts
``exercises.worker`` in a process of its own (its own process group, so Ctrl-C
reaches the grader, which ends it), reads what each check's ``run`` half
returned from a pipe (``exercises.wire``: JSON, no code), and yields one
``Outcome`` per check. A check that runs past the time limit, or a process
that ends (``os._exit``, a crash), costs that one check: the process is
killed and a fresh one goes on with the next check. A file that cannot be
imported (a syntax error, ``sys.exit`` at the top, an endless loop there)
raises ``ImportFailed``; a child that cannot even start, ``StartFailed``.
``run_in_process`` does the same without a process,
for the tests of the checks themselves.
"""

from __future__ import annotations

import linecache
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from exercises.wire import FrameReader, WireError, from_tree

ROOT = Path(__file__).resolve().parent.parent  # the folder holding exercises/
BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from exercises.worker import main; sys.exit(main(sys.argv[2:]))"
)
BOOT_LIMIT = 120.0  # seconds for the child to import NumPy and the checks
QUIET = {  # no library chatter in the grader's output
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "PYTHONWARNINGS": "ignore",
    "PYTHONUNBUFFERED": "1",
}


@dataclass
class Outcome:
    """What came back from one check's ``run`` half.

    Attributes:
        status: ``outputs`` (``value`` holds them), ``todo``, or a failure
            that needs no judge: ``wrong``, ``raised``, ``exited``, ``timeout``,
            ``ended``, ``unreadable``.
        value: the outputs, decoded.
        message: what to print for a failure or a TODO.
    """

    status: str
    value: Any = None
    message: str = ""


class ImportFailed(Exception):
    """The student's file could not be imported; the message says why."""


class StartFailed(Exception):
    """The child process could not start (the grader's own files are damaged)."""


def outcome_of(message: dict[str, Any]) -> Outcome:
    """The ``Outcome`` of a worker's result message.

    Raises:
        WireError: the message is not a result the worker sends.
    """
    status = message.get("status")
    text = lambda key: str(message.get(key, ""))  # noqa: E731
    if status == "outputs":
        return Outcome("outputs", value=from_tree(message.get("value")))
    if status == "todo":
        return Outcome("todo", message=text("message"))
    if status == "wrong":
        return Outcome("wrong", message=text("message"))
    if status == "raised":
        return Outcome(
            "raised", message=f"raised {text('type')}: {text('message')}{text('where')}"
        )
    if status == "exited":
        return Outcome(
            "exited",
            message=f"your code called sys.exit({text('code')}){text('where')}; "
            "nothing to grade",
        )
    raise WireError(f"unknown result status {status!r}")


class _Drain(threading.Thread):
    """Reads a pipe to its end, keeping its first and last few kilobytes."""

    def __init__(self, stream: Any, keep: int = 16384) -> None:
        super().__init__(daemon=True)
        self.stream, self.keep = stream, keep
        self.head, self.tail = b"", deque(maxlen=64)

    def run(self) -> None:
        while chunk := self.stream.read1(4096):
            if len(self.head) < self.keep:
                self.head += chunk[: self.keep - len(self.head)]
            self.tail.append(chunk)

    def text_tail(self) -> str:
        return b"".join(self.tail).decode("utf-8", "replace")


class Child:
    """One worker process and the pipe it writes its messages to.

    Args:
        args: the worker's arguments before the pipe's fd and the first check.
        first: index of the first check to run.
    """

    def __init__(self, args: Sequence[str], first: int) -> None:
        read_fd, write_fd = os.pipe()
        env = {**os.environ, **QUIET}
        command = [sys.executable, "-c", BOOT, str(ROOT), *args, str(write_fd)]
        try:
            self.proc = subprocess.Popen(
                [*command, str(first)],
                pass_fds=(write_fd,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                env=env,
            )
        finally:
            os.close(write_fd)
        self.fd = read_fd
        self.frames, self.pending = FrameReader(), deque()
        self.stdout, self.stderr = _Drain(self.proc.stdout), _Drain(self.proc.stderr)
        self.stdout.start()
        self.stderr.start()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *_: object) -> None:
        self.kill()

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The next message; None when the process has ended.

        Raises:
            TimeoutError: none came within ``timeout`` seconds.
            WireError: what came is not a message.
        """
        deadline = time.monotonic() + timeout
        while not self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.fd], [], [], min(remaining, 0.2))
            if not ready:
                if self.proc.poll() is not None:
                    return None  # ended; a process it started may hold the pipe
                continue
            data = os.read(self.fd, 1 << 16)
            if not data:
                return None
            self.pending.extend(self.frames.feed(data))
        return self.pending.popleft()

    def where_stuck(self, source: str, label: str) -> str:
        """`` in LABEL line N: code`` for the line the process is running now."""
        if self.proc.poll() is not None:
            return ""
        try:
            os.kill(self.proc.pid, signal.SIGUSR1)
        except OSError:
            return ""
        target = os.path.realpath(source)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            time.sleep(0.1)
            dump = self.stderr.text_tail().rsplit("most recent call first", 1)
            if len(dump) < 2:
                continue
            for path, line in re.findall(r'File "(.+)", line (\d+)', dump[1]):
                if os.path.realpath(path) == target:
                    code = linecache.getline(source, int(line)).strip()
                    return f", in {label} line {line}" + (f": {code}" if code else "")
        return ""

    def ended(self) -> str:
        """How the process ended: ``exit status 0`` or ``killed by SIGSEGV``."""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "still running"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit status {code}"

    def printed(self) -> list[str]:
        """The first lines the student's code printed."""
        self.stdout.join(timeout=1)
        return self.stdout.head.decode("utf-8", "replace").splitlines()

    def kill(self) -> None:
        """End the process and everything it started; close the pipe."""
        if self.fd < 0:
            return  # killed already: its process group id may be free again
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        for drain in (self.stdout, self.stderr):
            drain.join(timeout=1)


def _expect(message: dict[str, Any] | None, event: str, check: int | None = None):
    """Check that a message is the one the worker sends next."""
    if message is None:
        return
    if message.get("event") != event or (
        check is not None and message.get("check") != check
    ):
        raise WireError(f"expected {event}, got {str(message.get('event'))[:40]!r}")


def run_checks(
    name: str,
    source: str,
    label: str,
    count: int,
    limit: float,
    printed: list[str] | None = None,
) -> Iterator[tuple[int, Outcome]]:
    """Run the ``run`` halves of an exercise's checks on a file, in a child.

    Args:
        name: the exercise.
        source: the student's file.
        label: how to name the file in messages, e.g. ``exercises/forward.py``.
        count: how many checks the exercise has.
        limit: seconds the import, and each check, may take.
        printed: if given, receives the lines the student's code printed.

    Yields:
        ``(index, outcome)`` for every check, in order.

    Raises:
        ImportFailed: the file does not import (the message says why).
        StartFailed: the child process could not start.
    """
    module_name = f"submission_{name}"
    first = 0
    while first < count:
        with Child([name, source, module_name, label], first) as child:
            try:
                _import(child, source, label, limit)
                for j in range(first, count):
                    first = j + 1
                    outcome = _next_outcome(child, j, source, label, limit)
                    yield j, outcome
                    if outcome.status in ("timeout", "ended", "unreadable"):
                        break  # a fresh process goes on with the next check
            finally:
                if printed is not None:
                    child.kill()
                    printed.extend(child.printed())


def _import(child: Child, source: str, label: str, limit: float) -> None:
    """Wait for the child to start and import the student's file.

    Raises:
        StartFailed: the child ended before it could import anything.
        ImportFailed: the file did not import, or not within ``limit``.
    """
    try:
        message = child.next(BOOT_LIMIT)
        _expect(message, "booted")
        if message is None:
            last = (child.stderr.text_tail().strip().splitlines() or [""])[-1]
            raise StartFailed(
                f"the grader's child process ended ({child.ended()}): {last}"
            )
        message = child.next(limit)
    except TimeoutError:
        stuck = child.where_stuck(source, label)
        text = f"it ran past the time limit of {limit:g} s{stuck}"
        raise ImportFailed(text) from None
    except (WireError, RecursionError) as exc:
        raise ImportFailed(f"unreadable reply while importing: {exc}") from None
    if message is None:
        raise ImportFailed(
            f"{label} ended the process while being imported ({child.ended()})"
        )
    if message.get("event") == "import_failed":
        try:
            text = outcome_of(message).message
        except Exception as exc:  # noqa: BLE001 - any malformed reply
            text = f"unreadable reply: {exc}"
        raise ImportFailed(text.replace("; nothing to grade", ""))
    _expect(message, "ready")


def _next_outcome(
    child: Child, j: int, source: str, label: str, limit: float
) -> Outcome:
    """Wait for check ``j``'s result; a timeout or an end is an outcome too."""
    try:
        _expect(child.next(limit), "start", j)
        message = child.next(limit)
        _expect(message, "result", j)
    except TimeoutError:
        stuck = child.where_stuck(source, label)
        text = f"stopped after {limit:g} s{stuck} (an endless loop?)"
        return Outcome("timeout", message=text)
    except (WireError, RecursionError) as exc:
        return Outcome("unreadable", message=f"unreadable reply: {exc}")
    if message is None:
        text = f"your code ended the grading process ({child.ended()})"
        text += "; nothing to grade"
        return Outcome("ended", message=text)
    try:
        return outcome_of(message)
    except Exception as exc:  # noqa: BLE001 - any malformed reply
        return Outcome("unreadable", message=f"unreadable reply: {exc}")


def run_in_process(
    checks: Sequence[Any], module: ModuleType
) -> Iterator[tuple[int, Outcome]]:
    """``run_checks`` in this process, for the tests of the checks.

    The outputs make the same round trip through ``exercises.wire``, so a
    judge sees exactly what it would see from a child process.
    """
    from exercises.worker import run_one

    source = getattr(module, "__file__", None) or ""
    for j, check in enumerate(checks):
        yield j, outcome_of(run_one(check, module, source, Path(source).name))
