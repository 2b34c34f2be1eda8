"""How the CPU kernels are compiled, and the shape check their wrappers share."""

from __future__ import annotations

from typing import Any

import numba

Array = Any  # a C-contiguous numpy.ndarray

# Serial on purpose. On 2 cores, parallel=True (prange) made gather_scale and the
# Adam kernels about 1.8x faster timed alone, but a whole training step slower
# (an epoch took 4x as long with Numba's OpenMP threads, 5% longer with its
# workqueue threads), as Numba's threads compete with OpenBLAS's for the cores.
jit = numba.njit(cache=True, error_model="numpy")
# For a kernel that Python threads may run side by side (it releases the GIL).
jit_nogil = numba.njit(cache=True, error_model="numpy", nogil=True)


def check_shapes(kernel: str, ok: bool, **arrays: Array) -> None:
    """Raise ValueError unless ``ok``; the kernels do not check bounds."""
    if not ok:
        shapes = ", ".join(f"{name} {a.shape}" for name, a in arrays.items())
        raise ValueError(f"{kernel}: shapes do not match: {shapes}")
