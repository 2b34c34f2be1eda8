"""How the CPU kernels are compiled, and the shape check their wrappers share."""

from __future__ import annotations

import os
from typing import Any

# Numba's OpenMP threads sleep between parallel regions instead of spinning.
# Measured on 2 shared cores (load average 10-12, one fused training epoch of
# MNIST): with spinning threads an epoch took 4.6 to 9.6 s, with sleeping ones
# 0.55 to 0.64 s. Set before OpenMP starts (at the first parallel region); a
# value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
from numba import types  # noqa: E402
from numba.core import cgutils  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

Array = Any  # a C-contiguous numpy.ndarray

# Serial: the kernels around the products. On 2 cores, parallel=True (prange)
# made gather_scale and the Adam kernels about 1.8x faster timed alone, but a
# whole training step slower while OpenBLAS's threads were busy too (an epoch
# took 4x as long with Numba's OpenMP threads, which spun then; see above).
# The sparse products below are parallel, with BLAS held to one thread.
jit = numba.njit(cache=True, error_model="numpy")
# For a kernel that Python threads may run side by side (it releases the GIL).
jit_nogil = numba.njit(cache=True, error_model="numpy", nogil=True)


def check_shapes(kernel: str, ok: bool, **arrays: Array) -> None:
    """Raise ValueError unless ``ok``; the kernels do not check bounds."""
    if not ok:
        shapes = ", ".join(f"{name} {a.shape}" for name, a in arrays.items())
        raise ValueError(f"{kernel}: shapes do not match: {shapes}")


# For the sparse kernels: parallel loops (prange) and fused multiply-adds.
# ``contract`` lets LLVM fuse ``acc + x * w`` into one FMA (one rounding instead
# of two); it does not reorder sums, so results stay deterministic.
jit_parallel = numba.njit(
    cache=True, error_model="numpy", parallel=True, fastmath={"contract"}
)
# The serial loops those parallel ones call (LLVM inlines them).
jit_fma = numba.njit(cache=True, error_model="numpy", fastmath={"contract"})


@intrinsic
def stack_empty(typingctx: Any, size: Any, dtype: Any) -> Any:
    """``size`` elements of ``dtype`` on the stack: a pointer for ``numba.carray``.

    A stack array of a constant size, indexed only by constants once LLVM has
    unrolled the loops over it, becomes registers (LLVM's SROA pass); a
    NumPy array from ``np.empty`` lives on the heap and never does.
    """

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        item = context.get_value_type(dtype.dtype)
        return cgutils.alloca_once(builder, item, size=args[0])

    return types.CPointer(dtype.dtype)(types.intp, dtype), codegen
