"""Runs on disk: the checkpoint format, atomic files and run folders.

* ``checkpoint``: weights, optimizer and generator state, config and history
  in one ``.npz`` that loads without pickle.
* ``fields``: the checks of every field of a loaded checkpoint.
* ``files``: atomic writes (a temporary file, then a rename), strict JSON.
* ``folders``: naming a run's folder, its config and history files, finding
  and loading a model, and the checks before a run is resumed.
* ``lock`` and ``guard``: one writer per folder, and the checks of an output
  folder before a command starts its work.
* ``provenance``: the data a run was trained on, and refusing other data.
* ``writer``: a training run's files as it goes, and what they hold when it
  stops.
"""

from backprop.app.runs.checkpoint import (
    Checkpoint,
    library_versions,
    load_checkpoint,
    save_checkpoint,
)
from backprop.app.runs.fields import restore_rng
from backprop.app.runs.files import (
    atomic_write,
    atomic_write_text,
    temporary_beside,
    write_json,
)
from backprop.app.runs.folders import (
    CONFIG_FILE,
    CROSSVAL_FILES,
    EVALUATION_FILES,
    HISTORY_FILE,
    MODEL_FILE,
    REPORT_FILE,
    RUN_DEFINING,
    RUN_FILES,
    RUN_OUTPUTS,
    find_model,
    load_model,
    model_from_checkpoint,
    new_run_dir,
    read_history,
    restore_checkpoint,
    resume_config,
    saved_data,
    write_history,
)
from backprop.app.runs.guard import OutputFolder
from backprop.app.runs.provenance import check_same_data, data_record
from backprop.app.runs.writer import RunWriter

__all__ = [
    "CONFIG_FILE",
    "CROSSVAL_FILES",
    "EVALUATION_FILES",
    "HISTORY_FILE",
    "MODEL_FILE",
    "REPORT_FILE",
    "RUN_DEFINING",
    "RUN_FILES",
    "RUN_OUTPUTS",
    "Checkpoint",
    "OutputFolder",
    "RunWriter",
    "atomic_write",
    "atomic_write_text",
    "check_same_data",
    "data_record",
    "find_model",
    "library_versions",
    "load_checkpoint",
    "load_model",
    "model_from_checkpoint",
    "new_run_dir",
    "read_history",
    "restore_rng",
    "restore_checkpoint",
    "resume_config",
    "save_checkpoint",
    "saved_data",
    "temporary_beside",
    "write_history",
    "write_json",
]
