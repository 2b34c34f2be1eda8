"""Files written so that a crash never leaves half of one: temporary, then rename.

A write goes to ``.<name>.<random>.tmp`` beside its target and is renamed over
it only when complete, so the target holds the old bytes or the new ones,
never part of either. A process killed mid-write leaves its temporary behind;
``remove_stale_temporaries`` clears those when a command next takes the folder.
Files get the usual permissions (``0o666`` less the umask), not ``mkstemp``'s
``0o600``. Any ``OSError`` (a full disk, no permission, a read-only file
system) becomes one ``OutputError`` naming the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from backprop.app.finite import first_non_finite
from backprop.errors import OutputError

TEMPORARY = ".tmp"
# A temporary of ours: ".<name>.<8 characters of mkstemp>" and, since this
# module names them so, ".tmp" and the target's suffix after it.
_TEMPORARY_NAME = re.compile(
    r"\.(?P<name>.+\.(npz|json|txt|png|keras))\.[a-z0-9_]{8}(\.tmp(\.\w+)?)?"
)


def cannot_write(path: str | Path, exc: OSError) -> OutputError:
    """The ``OutputError`` for an ``OSError`` met writing ``path``."""
    return OutputError(f"{path}: cannot write ({exc.strerror or exc})")


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def temporary_beside(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path``, renamed to ``path`` if the block succeeds.

    The temporary's name ends in ``path``'s own suffix, for writers (Keras)
    that insist on one. When the block raises, or is interrupted, the
    temporary is removed and ``path`` is left as it was.

    Raises:
        OutputError: the folder or file cannot be written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY + path.suffix
        )
        if hasattr(os, "fchmod"):  # not on Windows
            os.fchmod(fd, 0o666 & ~_umask())
        os.close(fd)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise cannot_write(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write(file_object)`` on a temporary file, then rename it to ``path``.

    Raises:
        OutputError: the file cannot be written (a full disk, no permission).
    """
    with temporary_beside(path) as tmp, open(tmp, "wb") as f:
        write(f)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write text to ``path`` atomically, as UTF-8."""
    atomic_write(path, lambda f: f.write(text.encode()))


def write_json(path: str | Path, value: Any) -> None:
    """Write ``value`` as indented, strict JSON to ``path`` atomically.

    Raises:
        OutputError: ``value`` holds a NaN or infinity, which JSON cannot
            hold (the file is then not written), or the file cannot be written.
    """
    try:
        text = json.dumps(value, indent=2, allow_nan=False)
    except ValueError:
        found = first_non_finite(value) or "a number"
        raise OutputError(
            f"{path}: not written, {found} is not a finite number (not valid JSON)"
        ) from None
    atomic_write_text(path, text + "\n")


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporaries that killed writes left in ``folder``.

    Call it only while holding the folder's lock (``backprop.app.runs.lock``):
    another writer's temporary is not stale.

    Returns:
        the files removed.
    """
    removed = []
    with contextlib.suppress(OSError):
        for path in Path(folder).iterdir():
            if _TEMPORARY_NAME.fullmatch(path.name) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed
