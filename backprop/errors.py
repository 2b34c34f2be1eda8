"""The errors the engine raises on bad input.

Every error here carries a one-line message that names the problem, so the
command-line tools can print it and exit without a traceback.
"""


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
