"""The grader's child process: run a student's code, send back what it returned.

Started by ``exercises.runner``, never by hand. It imports the exercise's
checks, then the student's file, then calls each check's ``run`` half and
writes one message per event to the pipe it was given (``exercises.wire``):

* ``{"event": "booted"}`` once the checks are imported;
* ``{"event": "ready"}`` once the student's file is imported, or
  ``{"event": "import_failed", ...}`` with why not;
* for each check ``{"event": "start", "check": j}``, then
  ``{"event": "result", "check": j, "status": ...}`` where the status is
  ``outputs`` (with ``value``), ``todo``, ``wrong``, ``raised`` or ``exited``;
* ``{"event": "done"}``.

Nothing here decides whether a check passes: that happens in the grader's
process, which compares these outputs with values it computes itself.
``SIGUSR1`` prints the current stack to standard error (``faulthandler``),
so a check stopped at the time limit can say which line was running.
"""

from __future__ import annotations

import faulthandler
import importlib.util
import os
import signal
import sys
import threading
import time
import traceback
from types import ModuleType
from typing import Any


def _where(exc: BaseException, source: str, label: str) -> str:
    """`` (at LABEL:LINE: code)`` for the last frame in the student's file."""
    target = os.path.realpath(source)
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if os.path.realpath(f.filename) == target
    ]
    if not frames:
        return ""
    f = frames[-1]
    code = f" {f.line}" if f.line else ""
    return f" (at {label}:{f.lineno}:{code})"


def describe(exc: BaseException, source: str, label: str) -> dict[str, Any]:
    """A raised exception (or ``sys.exit``) as a message's fields."""
    if isinstance(exc, SystemExit):
        return {
            "status": "exited",
            "code": repr(exc.code),
            "where": _where(exc, source, label),
        }
    text = str(exc).strip().splitlines()
    return {
        "status": "raised",
        "type": type(exc).__name__,
        "message": (text[0] if text else "")[:300],
        "where": _where(exc, source, label),
    }


def load(source: str, module_name: str) -> ModuleType:
    """Import the student's file as ``module_name``."""
    spec = importlib.util.spec_from_file_location(module_name, source)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def run_one(check: Any, module: ModuleType, source: str, label: str) -> dict:
    """Call one check's ``run`` half; its outputs, or what went wrong."""
    from exercises.checks.core import Wrong
    from exercises.wire import to_tree

    try:
        value = check.run(module)
    except NotImplementedError as exc:
        return {"status": "todo", "message": str(exc)[:300]}
    except Wrong as exc:
        return {"status": "wrong", "message": str(exc)[:2000]}
    except BaseException as exc:  # noqa: BLE001 - the student's code may raise anything
        return describe(exc, source, label)
    return {"status": "outputs", "value": to_tree(value)}


def exit_with_parent(parent: int) -> None:
    """End this process once the grader that started it is gone.

    The grader stops a solution that runs past its time limit, but a grader
    killed outright (SIGKILL) cannot: its child, in a session of its own,
    would loop on. A thread checks twice a second that the parent is still
    ``parent`` (a Python loop gives up the GIL every few milliseconds).
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str]) -> int:
    """Grade-side entry: ``NAME SOURCE MODULE_NAME LABEL FD FIRST``."""
    name, source, module_name, label, fd_text, first_text = argv
    fd, first = int(fd_text), int(first_text)
    exit_with_parent(os.getppid())
    faulthandler.register(signal.SIGUSR1, all_threads=False)

    from exercises.registry import EXERCISES
    from exercises.wire import frame

    def send(message: dict[str, Any]) -> None:
        data = frame(message)
        while data:
            data = data[os.write(fd, data) :]

    checks = EXERCISES[name].checks()
    send({"event": "booted"})
    try:
        module = load(source, module_name)
    except BaseException as exc:  # noqa: BLE001 - a syntax error, sys.exit, ...
        send({"event": "import_failed", **describe(exc, source, label)})
        return 0
    send({"event": "ready"})
    for j in range(first, len(checks)):
        send({"event": "start", "check": j})
        send(
            {"event": "result", "check": j, **run_one(checks[j], module, source, label)}
        )
    send({"event": "done"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
