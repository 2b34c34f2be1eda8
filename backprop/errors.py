"""The errors the engine raises on bad input.

Every error here carries a one-line message that names the problem, so the
command-line tools can print it and exit without a traceback.
"""

import importlib.util


class BackpropError(Exception):
    """Base class: bad input a user can fix (data, flags, files, devices)."""


class DataError(BackpropError):
    """A data file is missing, truncated, corrupt or inconsistent."""


class ConfigError(BackpropError):
    """A configuration value or flag is out of range or malformed."""


class CheckpointError(BackpropError):
    """A checkpoint file is not ours, is damaged, or does not fit the model."""


class DeviceError(BackpropError):
    """The requested device (or its library) is not available."""


class NonFiniteLossError(BackpropError):
    """Training produced a NaN or infinite loss."""


class OutputError(BackpropError):
    """An output cannot be written (no space, no permission) or may not be replaced."""


class MissingDependencyError(BackpropError):
    """An optional library that this piece of work needs is not installed."""


def require(module: str, package: str, extra: str, purpose: str) -> None:
    """Raise ``MissingDependencyError`` unless ``module`` can be imported.

    Args:
        module: the import name, e.g. ``"PIL"``.
        package: what to install, e.g. ``"Pillow"``.
        extra: the project's extra that installs it.
        purpose: what needs it, for the message, e.g. ``"reading images"``.
    """
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(
            f"{purpose} needs {package}, which is not installed; "
            f"pip install -e '.[{extra}]'"
        )
