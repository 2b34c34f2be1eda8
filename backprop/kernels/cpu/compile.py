"""How the CPU kernels are compiled, and the shape check their wrappers share.

Numba keeps each compiled kernel in an on-disk cache (``__pycache__`` beside
the source, or ``NUMBA_CACHE_DIR``), so a run does not compile them again.
The cache is an optimisation, never a reason to fail:

* where no folder for it can be written (a read-only install and a
  read-only home), the kernels are compiled in memory at each run;
* a cache file that cannot be read back (truncated, damaged, from another
  build) is ignored: the kernel is compiled afresh and its index written
  anew.

Either says so once, in one line on stderr. A cache is never looked for in a
shared temporary folder: loading one unpickles it, which another user could
have planted.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
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
from numba.core.caching import FunctionCache  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

Array = Any  # a C-contiguous numpy.ndarray


@functools.cache
def note_once(text: str) -> None:
    """Print ``note: text`` on stderr, once per process."""
    print(f"note: {text}", file=sys.stderr)


class ForgivingCache(FunctionCache):
    """Numba's cache of one function, where a file it cannot read is a miss."""

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        """The cached kernel for ``sig``, or None (compile it) when unreadable."""
        try:
            return super().load_overload(sig, target_context)
        except Exception as exc:  # noqa: BLE001 - pickle and LLVM raise many kinds
            note_once(
                "a damaged file in Numba's cache of the kernels was ignored "
                f"({type(exc).__name__}); they are compiled afresh"
            )
            with contextlib.suppress(OSError):  # the index is rewritten on save
                os.unlink(self._cache_file._index_path)
            return None

    def save_overload(self, sig: Any, data: Any) -> None:
        """Save the compiled kernel; a cache that cannot be written is skipped."""
        with contextlib.suppress(Exception):
            super().save_overload(sig, data)


def compiled(**options: Any) -> Callable[[Callable], Any]:
    """``numba.njit`` with a cache that never fails a run (see the module).

    Args:
        options: more of ``numba.njit``'s options: ``nogil=True`` for a
            kernel that Python threads run side by side, ``parallel=True``
            for ``prange`` loops, ``fastmath={"contract"}`` for fused
            multiply-adds.
    """

    def decorate(func: Callable) -> Any:
        kernel = numba.njit(error_model="numpy", **options)(func)
        try:
            kernel._cache = ForgivingCache(func)  # what njit(cache=True) sets
        except RuntimeError:  # "cannot cache function ...: no locator available"
            note_once(
                "Numba finds no writable folder to cache the compiled kernels "
                "in; they are compiled at each run (set NUMBA_CACHE_DIR to keep them)"
            )
        return kernel

    return decorate


# Serial: the kernels around the products. On 2 cores, parallel=True (prange)
# made gather_scale and the Adam kernels about 1.8x faster timed alone, but a
# whole training step slower while OpenBLAS's threads were busy too (an epoch
# took 4x as long with Numba's OpenMP threads, which spun then; see above).
# The sparse products below are parallel, with BLAS held to one thread.
jit = compiled()
# For a kernel that Python threads may run side by side (it releases the GIL).
jit_nogil = compiled(nogil=True)


def check_shapes(kernel: str, ok: bool, **arrays: Array) -> None:
    """Raise ValueError unless ``ok``; the kernels do not check bounds."""
    if not ok:
        shapes = ", ".join(f"{name} {a.shape}" for name, a in arrays.items())
        raise ValueError(f"{kernel}: shapes do not match: {shapes}")


# For the sparse kernels: parallel loops (prange) and fused multiply-adds.
# ``contract`` lets LLVM fuse ``acc + x * w`` into one FMA (one rounding instead
# of two); it does not reorder sums, so results stay deterministic.
jit_parallel = compiled(parallel=True, fastmath={"contract"})
# The serial loops those parallel ones call (LLVM inlines them).
jit_fma = compiled(fastmath={"contract"})


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
