"""The commands: each a thin ``main(argv=None)`` over the library.

``backprop <name>``, ``python -m backprop <name>`` and ``python -m
backprop.<name>`` all reach ``backprop.app.commands.<name>.main``, and each
names itself in its usage line as it was typed (``prog``). No command imports
another; what they share is in ``flags_and_errors``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

# How the running command was typed before its name: ``backprop`` (the console
# command) or ``python -m backprop``; None for ``python -m backprop.NAME``.
_dispatcher: str | None = None

COMMANDS = {
    "train": "train an MLP on MNIST (the paper's experiment by default)",
    "evaluate": "report, curves, confusion matrix and galleries of a trained model",
    "crossval": "stratified k-fold cross-validation of a training configuration",
    "predict": "recognise digits in image files",
    "export": "write a trained model as an ONNX file",
    "gradcheck": "check the backward pass against central differences",
    "explore": "a local page: draw a digit, watch the forward and backward pass",
}


def prog(name: str) -> str:
    """How the user typed command ``name``: ``backprop NAME`` or ``python -m ...``."""
    if _dispatcher is None:
        return f"python -m backprop.{name}"
    return f"{_dispatcher} {name}"


@contextlib.contextmanager
def dispatched(by: str = "backprop") -> Iterator[None]:
    """Within the block, commands were typed as ``BY NAME`` (``app.cli``)."""
    global _dispatcher
    before, _dispatcher = _dispatcher, by
    try:
        yield
    finally:
        _dispatcher = before
