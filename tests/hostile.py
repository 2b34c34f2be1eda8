"""One helper for the hostile-input tests: run a command, check it held up.

``run_hostile`` runs a command's ``main(argv)`` in this process (or, given a
``code`` string, a Python subprocess, for signals) and asserts what every
hostile case must show: the exit status, one line on stderr naming the
problem (for status 2, argparse's usage lines come first), no traceback, and
every file that existed before byte-identical after, unless named in
``changed``.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def snapshot(root: Path) -> dict[Path, bytes]:
    """Every file under ``root`` and its bytes."""
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def ctrl_c_as_at_a_terminal() -> None:
    """In a child process: Ctrl-C (SIGINT) back to its default action.

    A shell that starts a job in the background (``pytest &``, ``nohup``, a
    non-interactive script) makes it ignore SIGINT, its children inherit that,
    and Python then installs no KeyboardInterrupt handler: a test that sends
    SIGINT to check what a user's Ctrl-C does would see nothing happen.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_hostile(
    command: Callable[[list[str]], int] | str,
    argv: list[str],
    capsys,
    root: Path,
    *,
    status: int,
    message: str,
    changed: Iterable[Path] = (),
    new_files: bool = False,
) -> str:
    """Run a command on hostile input and check that it held up.

    Args:
        command: a ``main(argv)``, or Python code to run in a subprocess with
            ``sys.argv[1:] == argv`` (signals need a process of their own).
        argv: the command line.
        capsys: pytest's fixture (unused for a subprocess).
        root: the folder whose files must survive (the test's tmp_path).
        status: the exit status expected.
        message: a regular expression the error line must match.
        changed: files allowed to change or vanish.
        new_files: allow files that did not exist before (a run that stopped
            part way leaves its checkpoint).

    Returns:
        the error line.
    """
    before = snapshot(root)
    if isinstance(command, str):
        result = subprocess.run(
            [sys.executable, "-c", command, *argv],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=120,
            preexec_fn=ctrl_c_as_at_a_terminal,
        )
        code, out, err = result.returncode, result.stdout, result.stderr
    else:
        try:
            code = command(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
        out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == status, f"exit status {code}, not {status}; stderr: {err}"
    if status != 2:  # usage errors print the usage lines first
        assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert lines and re.search(message, lines[-1]), f"{message!r} not in {err!r}"
    after = snapshot(root)
    allowed = {Path(p) for p in changed}
    for path, data in before.items():
        if path not in allowed:
            assert after.get(path) == data, f"{path} changed or vanished"
    if not new_files:
        assert set(after) <= set(before), f"new files: {set(after) - set(before)}"
    return lines[-1]


def train_argv(data_dir: Path, out: Path, *extra: str) -> list[str]:
    """``backprop.train`` flags for a quick run on the synthetic data."""
    return [
        *("--data-dir", str(data_dir), "--out", str(out), "--quiet"),
        *("--epochs", "1", "--batch-size", "64", "--hidden", "4"),
        *("--device", "cpu", "--kernels", "reference", "--lr", "0.01"),
        *extra,
    ]


def break_checkpoint_write(monkeypatch, call: int, error: BaseException) -> None:
    """Make the ``call``-th ``np.savez`` (1-based) write half a file, then raise.

    Training saves a checkpoint at epoch 0 and after each epoch, so ``call=3``
    breaks the checkpoint of epoch 2.
    """
    import numpy as np

    real_savez, calls = np.savez, []

    def savez(file, **arrays):
        calls.append(1)
        if len(calls) == call:
            file.write(b"PK half a checkpoint")
            raise error
        return real_savez(file, **arrays)

    monkeypatch.setattr(np, "savez", savez)
