"""The commands: each a thin ``main(argv=None)`` over the library.

``python -m backprop.<name>`` and ``backprop <name>`` both reach
``backprop.commands.<name>.main``, and each names itself in its usage line
as it was typed (``prog``). No command imports another; what they share is
in ``common``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

_console = False  # True while the ``backprop`` console command runs one

COMMANDS = {
    "train": "train an MLP on MNIST (the paper's experiment by default)",
    "evaluate": "report, curves, confusion matrix and galleries of a trained model",
    "crossval": "stratified k-fold cross-validation of a training configuration",
    "predict": "recognise digits in image files",
    "gradcheck": "check the backward pass against central differences",
    "explore": "a local page: draw a digit, watch the forward and backward pass",
}


def prog(name: str) -> str:
    """How the user typed command ``name``: ``backprop NAME`` or ``python -m ...``."""
    return f"backprop {name}" if _console else f"python -m backprop.{name}"


@contextlib.contextmanager
def from_console() -> Iterator[None]:
    """Within the block, commands were typed as ``backprop NAME`` (``backprop.cli``)."""
    global _console
    before, _console = _console, True
    try:
        yield
    finally:
        _console = before
