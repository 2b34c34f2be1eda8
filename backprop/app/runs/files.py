"""Files written so that a crash never leaves half of one: temporary, then rename.

A write goes to ``.<name>.<random>.backprop-tmp<suffix>`` beside its target,
created new (``O_EXCL``, never through a symbolic link) and written through
the descriptor that created it, then renamed over the target only when
complete: the target holds the old bytes or the new ones, never part of
either, and a symbolic link in the target's place is replaced, never
followed. A process killed mid-write leaves its temporary behind;
``remove_stale_temporaries`` clears those when a command next takes the
folder, and nothing else: the pattern is exact, so a user's own hidden file
(``.notes.txt.20250101``, ``.model.npz.backup_1``) is never taken for one.
Files get the usual permissions (``0o666`` less the umask), not ``mkstemp``'s
``0o600``. Any ``OSError`` (a full disk, no permission, a read-only file
system) becomes one ``OutputError`` naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from backprop.app.finite import first_non_finite
from backprop.errors import OutputError

TEMPORARY = ".backprop-tmp"
# A temporary of ours: ".<name>.<mkstemp's 8 characters>.backprop-tmp<suffix>",
# where <suffix> is the target's own (Keras insists on one). Versions before
# this one wrote ".tmp" instead of ".backprop-tmp"; theirs are cleared too.
_TEMPORARY_NAME = re.compile(
    r"\.(?P<name>.+)\.[a-z0-9_]{8}(\.backprop-tmp|\.tmp)(?P<suffix>(\.\w+)?)"
)


def is_temporary(name: str) -> bool:
    """True if ``name`` is one of the temporaries this module writes."""
    match = _TEMPORARY_NAME.fullmatch(name)
    return match is not None and match["suffix"] == Path(match["name"]).suffix


def not_a_file(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a file, or None when it is a regular file.

    Returns:
        a short reason: ``file not found``, ``a broken symbolic link``, ``a
        loop of symbolic links``, ``a folder, not a file``, ``a FIFO (named
        pipe), not a file``, ...
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken symbolic link" if path.is_symlink() else "file not found"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a loop of symbolic links, not a file"
        return f"cannot read it ({exc.strerror or exc})"
    except ValueError:  # a NUL byte in the name
        return "not a valid file name"
    if stat.S_ISREG(mode):
        return None
    kinds = {
        stat.S_ISDIR: "a folder",
        stat.S_ISFIFO: "a FIFO (named pipe)",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a device",
        stat.S_ISBLK: "a device",
    }
    kind = next((text for test, text in kinds.items() if test(mode)), "special")
    return f"{kind}, not a file"


def cannot_write(path: str | Path, exc: OSError) -> OutputError:
    """The ``OutputError`` for an ``OSError`` met writing ``path``."""
    return OutputError(f"{path}: cannot write ({exc.strerror or exc})")


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _create_beside(path: Path) -> tuple[int, Path]:
    """Create a new temporary file beside ``path``; its descriptor and name.

    ``mkstemp`` creates it with ``O_EXCL`` (and ``O_NOFOLLOW`` where there is
    one): never a file that existed, never through a link.

    Raises:
        OutputError: the folder or file cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY + path.suffix
        )
    except OSError as exc:
        raise cannot_write(path, exc) from None
    try:
        if hasattr(os, "fchmod"):  # not on Windows
            os.fchmod(fd, 0o666 & ~_umask())
    except OSError as exc:
        os.close(fd)
        Path(name).unlink(missing_ok=True)
        raise cannot_write(path, exc) from None
    return fd, Path(name)


@contextlib.contextmanager
def _renamed_to(tmp: Path, path: Path) -> Iterator[None]:
    """Rename ``tmp`` to ``path`` if the block succeeds; else remove ``tmp``.

    ``os.replace`` replaces a symbolic link at ``path`` itself, never the
    file it points to.
    """
    try:
        yield
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise cannot_write(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def temporary_beside(path: str | Path) -> Iterator[Path]:
    """A new temporary file beside ``path``, renamed to ``path`` if the block succeeds.

    For writers that take a file name, not a file object (Keras). The
    temporary's name ends in ``path``'s own suffix, for writers that insist
    on one. When the block raises, or is interrupted, the temporary is
    removed and ``path`` is left as it was.

    Raises:
        OutputError: the folder or file cannot be written.
    """
    path = Path(path)
    fd, tmp = _create_beside(path)
    os.close(fd)
    with _renamed_to(tmp, path):
        yield tmp


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write(file_object)`` on a new temporary file, then rename it to ``path``.

    The file object is the descriptor that created the temporary, so no
    name is opened for writing twice.

    Raises:
        OutputError: the file cannot be written (a full disk, no permission).
    """
    path = Path(path)
    fd, tmp = _create_beside(path)
    with _renamed_to(tmp, path), os.fdopen(fd, "wb") as f:
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
            if is_temporary(path.name) and path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed
