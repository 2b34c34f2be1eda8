"""``cupyx.scipy.ndimage`` of the CuPy stand-in: SciPy's filters on device arrays.

The images and coordinates must be device arrays (a NumPy array raises
``TypeError``); a footprint, structure or sigma may come from the host, as
``cupyx`` copies it (a host-to-device copy, recorded). The result is a device
array, computed by ``scipy.ndimage`` itself, so it equals the CPU's bit for
bit where cupyx's own kernels may differ in the last digits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from cupy._array import ndarray, unsupported, wrap
from cupy._ledger import TO_DEVICE, ledger
from scipy import ndimage as _ndi

# (name, the arguments that must be device arrays)
FUNCTIONS = {
    "grey_dilation": ("input",),
    "grey_erosion": ("input",),
    "map_coordinates": ("input", "coordinates"),
    "gaussian_filter": ("input",),
    "gaussian_filter1d": ("input",),
    "uniform_filter": ("input",),
    "convolve": ("input", "weights"),
    "correlate": ("input", "weights"),
    "affine_transform": ("input",),
    "shift": ("input",),
    "zoom": ("input",),
}
HOST_OK = ("footprint", "structure")


def _device(value: Any, what: str) -> np.ndarray:
    if not isinstance(value, ndarray):
        raise unsupported(value)
    return value._a


def _wrapped(name: str, device_args: tuple[str, ...]):
    func = getattr(_ndi, name)

    def call(*args: Any, **kwargs: Any) -> Any:
        args = list(args)
        for i, arg_name in enumerate(device_args):
            if i < len(args):
                args[i] = _device(args[i], arg_name)
            elif arg_name in kwargs:
                kwargs[arg_name] = _device(kwargs[arg_name], arg_name)
        for key in HOST_OK:
            value = kwargs.get(key)
            if isinstance(value, ndarray):
                kwargs[key] = value._a
            elif isinstance(value, np.ndarray):
                ledger.record(TO_DEVICE, key, value.nbytes)
        if isinstance(kwargs.get("output"), ndarray):
            raise NotImplementedError("output= is not supported by the stand-in")
        return wrap(func(*args, **kwargs))

    call.__name__ = name
    call.__doc__ = f"``scipy.ndimage.{name}`` on device arrays."
    return call


globals().update({name: _wrapped(name, needs) for name, needs in FUNCTIONS.items()})
