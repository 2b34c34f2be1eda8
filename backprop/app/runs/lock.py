"""One writer per folder: an exclusive ``fcntl.flock`` on ``<folder>/.lock``.

A command takes the lock of the folder it writes before it writes anything,
and a second process asking for it fails at once with one line. The kernel
releases the lock with the file descriptor, so even a process killed with
``kill -9`` leaves no stale lock; the ``.lock`` file itself is removed on
``release``. A ``.lock`` that is a symbolic link, or not a regular file, is
refused and left alone (opened with ``O_NOFOLLOW``). Where ``fcntl`` is
missing (Windows) or the file system has no locks, the folder is written
unlocked after a note on stderr.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from pathlib import Path

from backprop.errors import OutputError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_FILE = ".lock"
# A lock file that is a symbolic link (a run folder unpacked from a tar) is
# refused, never followed: writing the PID would truncate what it points to.
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class FolderLock:
    """The lock of one folder, held from ``acquire`` to ``release``.

    Args:
        folder: an existing folder.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or fail at once.

        Raises:
            OutputError: another process holds it, or the folder cannot be
                written.
        """
        while self.fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o666)
            except OSError as exc:
                if exc.errno == errno.ELOOP or self.path.is_symlink():
                    raise OutputError(
                        f"{self.path}: a symbolic link, not a lock file; remove it "
                        "or choose another --out"
                    ) from None
                raise OutputError(
                    f"{self.folder}: cannot write ({exc.strerror or exc}); "
                    "choose another --out"
                ) from None
            self._refuse_odd(fd)
            if fcntl is None or not self._lock(fd):
                os.close(fd)
                return
            # The holder before us may have removed the file between our open
            # and our lock; then we hold a lock nobody else can see: retry.
            try:
                current = os.lstat(self.path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                self.fd = fd
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            else:
                os.close(fd)

    def _refuse_odd(self, fd: int) -> None:
        """Close ``fd`` and refuse it unless it is a regular file, not a link.

        Without ``O_NOFOLLOW`` (Windows) a link is caught here, before the
        PID is written; a FIFO or device named ``.lock`` is never written.

        Raises:
            OutputError: the lock file is not a regular file.
        """
        if stat.S_ISREG(os.fstat(fd).st_mode) and not self.path.is_symlink():
            return
        os.close(fd)
        raise OutputError(
            f"{self.path}: not a regular file, so not a lock file; remove it "
            "or choose another --out"
        )

    def _lock(self, fd: int) -> bool:
        """Lock ``fd``; False when the file system cannot lock (noted on stderr)."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = self._holder()
            raise OutputError(
                f"{self.folder}: another process{holder} is writing this folder; "
                "wait for it to finish or choose another --out"
            ) from None
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise OutputError(
                    f"{self.folder}: cannot lock ({exc.strerror or exc})"
                ) from None
            print(
                f"note: {self.folder}: the file system cannot lock "
                f"({exc.strerror}); not guarded against a second writer",
                file=sys.stderr,
            )
            return False
        return True

    def _holder(self) -> str:
        """`` (pid N)`` from the lock file, or "" when it cannot be read."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            return f" (pid {int(self.path.read_text().split()[0])})"
        return ""

    def release(self) -> None:
        """Remove the lock file and drop the lock (a no-op when not held)."""
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # while still holding it, so no one else sees it
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
