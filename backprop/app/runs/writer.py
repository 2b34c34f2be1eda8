"""A training run's checkpoint and history as it goes, and the truth about them.

``RunWriter`` saves the checkpoint, then history.json, after each epoch, and
remembers what the folder holds. Its ``guarding`` block turns what can stop
a run (Ctrl-C or SIGTERM, a non-finite epoch, a full disk) into an error
whose message names the checkpoint that exists and the number of epochs it
really holds, read back from the file. ``backprop.train`` and
``tf_reference.train`` both write through it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from backprop.app.runs.checkpoint import Checkpoint, save_checkpoint, stored_epochs
from backprop.app.runs.folders import MODEL_FILE, write_history
from backprop.errors import BackpropError, NonFiniteLossError, OutputError


class RunWriter:
    """Writes a run's checkpoint and history into ``folder``.

    Args:
        folder: the run folder (taken with ``backprop.app.runs.guard``).
        saved: the epochs its checkpoint already holds (a run resumed in its
            own folder), or None when this run has written none yet.
    """

    def __init__(self, folder: Path, saved: int | None = None) -> None:
        self.folder = Path(folder)
        self.model_path = self.folder / MODEL_FILE
        self.saved = saved
        self._unsynced: list[dict] | None = None  # history.json lags the checkpoint

    def save(self, ckpt: Checkpoint) -> None:
        """Save the checkpoint, then history.json, each atomically.

        Raises:
            OutputError: a file cannot be written; the one before is kept.
        """
        save_checkpoint(self.model_path, ckpt)
        self.saved = len(ckpt.history)
        self._unsynced = list(ckpt.history)
        write_history(self.folder, ckpt.history)
        self._unsynced = None

    def on_disk(self) -> int | None:
        """The epochs the checkpoint holds now, or None when this run wrote none."""
        if self.saved is None:
            return None
        epochs = stored_epochs(self.model_path)
        return self.saved if epochs is None else epochs

    def holds(self) -> str:
        """What the folder holds, for a message."""
        epochs = self.on_disk()
        if epochs is None:
            return f"no checkpoint was written to {self.folder}"
        return f"{self.model_path} holds the {epochs} finished epochs"

    @contextlib.contextmanager
    def guarding(self, stage: str | None = None) -> Iterator[None]:
        """Say what the folder holds when the block is interrupted or fails.

        Args:
            stage: what the block does after the epochs (e.g. ``"while
                writing the report"``); None for the epochs themselves, whose
                interruption says how to continue the run.

        Raises:
            KeyboardInterrupt: carrying the message (exit status 130).
            NonFiniteLossError: the epoch's message, plus the last good epoch.
            OutputError: the file that could not be written, plus what is kept.
        """
        try:
            yield
        except KeyboardInterrupt:
            self._sync_history()
            if stage is not None:
                raise KeyboardInterrupt(
                    f"interrupted {stage}; {self.holds()}"
                ) from None
            epochs = self.on_disk()
            where = (
                "" if epochs is None else f" (continue with --resume {self.model_path})"
            )
            raise KeyboardInterrupt(
                f"interrupted in epoch {(epochs or 0) + 1}; {self.holds()}{where}"
            ) from None
        except NonFiniteLossError as exc:
            self._sync_history()
            raise NonFiniteLossError(
                f"{exc}; {self.model_path} keeps the last good epoch "
                f"({self.on_disk() or 0})"
            ) from None
        except OutputError as exc:
            raise OutputError(f"{exc}; {self.holds()}") from None

    def _sync_history(self) -> None:
        """Rewrite history.json when it was left behind the checkpoint."""
        if self._unsynced is not None:
            with contextlib.suppress(BackpropError, KeyboardInterrupt):
                write_history(self.folder, self._unsynced)
                self._unsynced = None
