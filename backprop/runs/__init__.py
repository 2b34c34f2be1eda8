"""Runs on disk: the checkpoint format, atomic files and run folders.

* ``checkpoint``: weights, optimizer and generator state, config and history
  in one ``.npz`` that loads without pickle.
* ``files``: atomic writes (a temporary file, then a rename).
* ``folders``: naming a run's folder, its config and history files, finding
  and loading a model, and the checks before a run is resumed.
"""

from backprop.runs.checkpoint import (
    Checkpoint,
    library_versions,
    load_checkpoint,
    save_checkpoint,
)
from backprop.runs.files import atomic_write, atomic_write_text, write_json
from backprop.runs.folders import (
    CONFIG_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    REPORT_FILE,
    RUN_DEFINING,
    find_model,
    load_model,
    new_run_dir,
    read_history,
    resume_config,
    write_history,
)

__all__ = [
    "CONFIG_FILE",
    "HISTORY_FILE",
    "MODEL_FILE",
    "REPORT_FILE",
    "RUN_DEFINING",
    "Checkpoint",
    "atomic_write",
    "atomic_write_text",
    "find_model",
    "library_versions",
    "load_checkpoint",
    "load_model",
    "new_run_dir",
    "read_history",
    "resume_config",
    "save_checkpoint",
    "write_history",
    "write_json",
]
