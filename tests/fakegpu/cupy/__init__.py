"""A stand-in for CuPy, for tests: NumPy arrays behind CuPy's rules, no GPU.

Put ``tests/fakegpu`` first on ``PYTHONPATH`` and ``import cupy`` finds this
package: ``backprop.device`` then sees one CUDA device, and ``--device gpu``
runs every line of the engine's CuPy path on the CPU. It is never installed
with the package (``pyproject.toml`` packages only ``backprop*`` and
``tf_reference*``).

What it checks, as CuPy would on a GPU:

* arrays on the "device" are a type of their own (``cupy.ndarray``), and
  ``xp_of``/``get_array_module`` tell them from NumPy's;
* an implicit conversion to NumPy (``np.asarray(a)``, ``__array__``, a SciPy or
  Matplotlib call on a device array) raises ``TypeError``;
* a NumPy array mixed with a device array in an operation or a function
  raises ``TypeError`` (Python and NumPy scalars are allowed, as in CuPy);
* assigning a NumPy array into a slice of a device array raises
  ``ValueError``; ``range(a)`` and ``lst[a]`` raise (no ``__index__``);
* a NumPy name CuPy is not given here raises ``AttributeError``;
* every host-to-device copy (``asarray``/``array`` of host data, a host index
  array), device-to-host read (``get``, ``asnumpy``, ``item``, ``tolist``,
  ``float``, ``int``, ``bool``, ``repr``/``str``/``format``, pickling) and
  synchronisation is recorded, with the line of code that asked, in
  ``cupy.ledger`` (``FAKEGPU_REPORT=file.json`` writes it at exit).

What a green run does NOT prove:

* real kernels: every operation is NumPy's, so results equal the CPU's bit
  for bit; cuBLAS, CUDA's ``exp``/``log`` and CuPy's reductions round
  differently, and ``tests/engine/test_backends.py`` bounds that only on a GPU;
* real timings: nothing is asynchronous and a "transfer" is a memory copy,
  so the counts say how often the code crosses, not what it costs;
* real memory: ``cuda.runtime.memGetInfo`` reports a fixed size
  (``FAKEGPU_MEMORY``, bytes, default 16 GiB), never what is in use;
* CuPy's coverage and semantics in full: CuPy's out-of-bounds fancy indices
  wrap where NumPy's raise, its type promotion may differ in corners, and a
  function listed here may take arguments CuPy's does not (or the reverse).
"""

from __future__ import annotations

from cupy import cuda
from cupy._array import ndarray
from cupy._functions import exported
from cupy._ledger import ledger

ndarray.__module__ = "cupy"
globals().update(exported())
__version__ = "0.0.0+fakegpu"
FAKE = True  # so a test can tell this stand-in from the real CuPy

__all__ = ["cuda", "ledger", "ndarray"]


def __getattr__(name: str):
    import numpy as np

    if hasattr(np, name):
        raise AttributeError(
            f"the cupy stand-in (tests/fakegpu) has no {name!r}; "
            "add it to tests/fakegpu/cupy/_functions.py if CuPy has it"
        )
    raise AttributeError(f"module 'cupy' has no attribute {name!r}")
