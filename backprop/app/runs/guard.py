"""The folder a command writes: checked and locked before any long work starts.

``OutputFolder`` is taken in a ``with`` block around everything a command
does once its flags are read. Entering it

1. refuses a path that is a file, and a folder that already holds any of the
   files the command writes (another run's), unless told to replace them
   (``--overwrite``, or a resumed run writing into its own folder);
2. creates the folder and takes its lock (``backprop.app.runs.lock``), so a
   second process writing the same folder fails at once;
3. removes the temporaries a killed write left there
   (``backprop.app.runs.files``) and checks that the disk has room.

Leaving it releases the lock, and removes the folder again when this command
created it and wrote nothing into it (bad data found before any writing).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from backprop.app.runs.files import remove_stale_temporaries
from backprop.app.runs.lock import FolderLock
from backprop.errors import OutputError

MIN_FREE_BYTES = 1 << 20  # refuse to start on a disk with less room than this


class OutputFolder:
    """A command's output folder, held for the length of a ``with`` block.

    Args:
        path: the folder.
        writes: the names of the files the command may write there.
        replace: allow replacing those files (``--overwrite``, or the run's
            own folder).
    """

    def __init__(
        self, path: str | Path, writes: tuple[str, ...], *, replace: bool = False
    ) -> None:
        self.path = Path(path)
        self.writes = writes
        self.replace = replace
        self.lock = FolderLock(self.path)
        self.created = False

    def __enter__(self) -> Path:
        path = self.path
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path}: exists and is not a folder")
        self.created = not path.exists()
        try:
            if self.created:
                path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"{path}: cannot create the folder ({exc.strerror or exc})"
            ) from None
        try:
            self.lock.acquire()
            self._check()
        except BaseException:
            self.__exit__()
            raise
        return path

    def _check(self) -> None:
        """Refuse another run's files or a full disk; clear stale temporaries."""
        held = [name for name in self.writes if (self.path / name).exists()]
        if held and not self.replace:
            raise OutputError(
                f"{self.path}: already holds {', '.join(held)} of another run; "
                "pass --overwrite to replace them, or choose another --out"
            )
        remove_stale_temporaries(self.path)
        try:
            stat = os.statvfs(self.path)
        except (OSError, AttributeError):  # no statvfs: Windows
            return
        free = stat.f_bavail * stat.f_frsize
        if free < MIN_FREE_BYTES:
            raise OutputError(
                f"{self.path}: only {free:,} bytes free on its disk; "
                "make room or choose another --out"
            )

    def __exit__(self, *exc_info: object) -> None:
        self.lock.release()
        if self.created:
            with contextlib.suppress(OSError):  # not empty: keep it
                self.path.rmdir()
