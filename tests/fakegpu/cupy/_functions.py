"""The stand-in's functions: NumPy's, behind CuPy's rules about where arrays live.

Three kinds:

* computing functions and ufuncs take stand-in arrays and scalars; a NumPy
  array among their arguments raises ``TypeError`` (CuPy's "Unsupported type");
* creating functions (``zeros``, ``arange``, ...) make arrays "on the device";
* ``asarray``/``array``/``ascontiguousarray`` copy host data to the device
  (each recorded as a host-to-device copy); ``asnumpy`` reads back.

Only the functions listed here exist: a name NumPy has and this stand-in lacks
raises ``AttributeError`` (add it here if CuPy has it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cupy._array import ndarray, unwrap, wrap
from cupy._ledger import TO_DEVICE, TO_HOST, ledger

UFUNCS = (
    "add subtract multiply divide true_divide floor_divide power float_power mod "
    "remainder fmod negative positive absolute sign sqrt square cbrt reciprocal "
    "exp exp2 expm1 log log2 log10 log1p logaddexp sin cos tan arcsin arccos "
    "arctan arctan2 sinh cosh tanh hypot floor ceil trunc rint maximum minimum "
    "fmax fmin isfinite isnan isinf signbit copysign equal not_equal less "
    "less_equal greater greater_equal logical_and logical_or logical_not "
    "logical_xor bitwise_and bitwise_or bitwise_xor invert left_shift "
    "right_shift matmul"
).split()
ALIASES = {"abs": "absolute"}
COMPUTING = (
    "sum mean max amax min amin argmax argmin any all prod cumsum cumprod std var "
    "dot vdot inner outer tensordot einsum where clip stack vstack hstack "
    "concatenate moveaxis transpose reshape ravel broadcast_to expand_dims "
    "squeeze take take_along_axis repeat tile flip sort argsort unique nonzero "
    "flatnonzero count_nonzero shares_memory may_share_memory allclose isclose "
    "array_equal around round diff searchsorted bincount average median "
    "zeros_like ones_like empty_like full_like copy atleast_1d atleast_2d "
    "swapaxes argwhere nan_to_num"
).split()
CREATING = "zeros ones empty full arange linspace eye identity".split()
# NumPy's types and constants, which CuPy re-exports unchanged
FROM_NUMPY = (
    "bool_ int8 int16 int32 int64 uint8 uint16 uint32 uint64 intp float16 "
    "float32 float64 complex64 complex128 dtype newaxis pi e inf nan finfo "
    "iinfo result_type can_cast promote_types issubdtype integer floating "
    "number generic signedinteger unsignedinteger ndim"
).split()


class ufunc:  # noqa: N801 - NumPy's and CuPy's name
    """A NumPy ufunc on stand-in arrays, with ``reduce``, ``outer``, ``at``."""

    def __init__(self, np_ufunc: np.ufunc) -> None:
        self._u = np_ufunc
        self.__name__ = np_ufunc.__name__
        self.nin, self.nout = np_ufunc.nin, np_ufunc.nout

    def _apply(self, method: Any, args: Any, kwargs: dict) -> Any:
        out = kwargs.get("out")
        if isinstance(out, tuple):
            out = kwargs["out"] = out[0]
        result = method(*unwrap(args), **unwrap(kwargs))
        return out if out is not None else wrap(result)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._apply(self._u, args, kwargs)

    def reduce(self, *args: Any, **kwargs: Any) -> Any:
        """``numpy.ufunc.reduce``."""
        return self._apply(self._u.reduce, args, kwargs)

    def accumulate(self, *args: Any, **kwargs: Any) -> Any:
        """``numpy.ufunc.accumulate``."""
        return self._apply(self._u.accumulate, args, kwargs)

    def outer(self, *args: Any, **kwargs: Any) -> Any:
        """``numpy.ufunc.outer``."""
        return self._apply(self._u.outer, args, kwargs)

    def at(self, a: ndarray, indices: Any, b: Any = None) -> None:
        """``numpy.ufunc.at``, in place."""
        args = (a, indices) if b is None else (a, indices, b)
        self._u.at(*unwrap(args))


def _computing(name: str):
    np_func = getattr(np, name)

    def func(*args: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out")
        result = np_func(*unwrap(args), **unwrap(kwargs))
        return out if out is not None else wrap(result)

    func.__name__ = name
    func.__doc__ = f"``numpy.{name}`` on the device."
    return func


def _creating(name: str):
    np_func = getattr(np, name)

    def func(*args: Any, **kwargs: Any) -> ndarray:
        return wrap(np_func(*unwrap(args), **unwrap(kwargs)))

    func.__name__ = name
    func.__doc__ = f"``numpy.{name}``, made on the device."
    return func


def asarray(
    a: Any,
    dtype: Any = None,
    order: Any = None,
    *,
    copy: Any = None,
    blocking: bool = False,
) -> ndarray:
    """``a`` on the device: itself if already there, else a copy from the host."""
    if isinstance(a, ndarray):
        if dtype is None or np.dtype(dtype) == a.dtype:
            return a.copy() if copy else a
        return a.astype(dtype)
    host = np.array(a, dtype=dtype, order=order or "K", copy=True)
    ledger.record(TO_DEVICE, "asarray", host.nbytes)
    return ndarray._of(host)


def array(
    obj: Any,
    dtype: Any = None,
    copy: bool = True,
    order: str = "K",
    subok: bool = False,
    ndmin: int = 0,
    *,
    blocking: bool = False,
) -> ndarray:
    """A new device array from ``obj`` (a copy from the host unless already there)."""
    if isinstance(obj, ndarray):
        out = obj.astype(obj.dtype if dtype is None else dtype, copy=copy)
    else:
        out = asarray(obj, dtype=dtype)
    while out.ndim < ndmin:
        out = out[None]
    return out


def ascontiguousarray(a: Any, dtype: Any = None) -> ndarray:
    """``asarray`` that is C-contiguous."""
    out = asarray(a, dtype=dtype)
    if out.flags.c_contiguous:
        return out
    return ndarray._of(np.ascontiguousarray(out._a))


def asnumpy(
    a: Any,
    stream: Any = None,
    order: str = "C",
    out: Any = None,
    *,
    blocking: bool = True,
) -> np.ndarray:
    """A host copy of ``a`` (one read when it is on the device)."""
    if isinstance(a, ndarray):
        ledger.record(TO_HOST, "asnumpy", a.nbytes)
        host = a._a.copy(order=order)
        if out is not None:
            out[...] = host
            return out
        return host
    return np.asarray(a, order=order)


def get_array_module(*args: Any) -> Any:
    """``cupy`` if any argument is a stand-in array, else ``numpy``."""
    import cupy

    return cupy if any(isinstance(a, ndarray) for a in args) else np


def exported() -> dict[str, Any]:
    """Every name the ``cupy`` package exposes, from the lists above."""
    names: dict[str, Any] = {n: ufunc(getattr(np, n)) for n in UFUNCS}
    names.update({alias: names[n] for alias, n in ALIASES.items()})
    names.update({n: _computing(n) for n in COMPUTING})
    names.update({n: _creating(n) for n in CREATING})
    names.update({n: getattr(np, n) for n in FROM_NUMPY})
    names.update(
        asarray=asarray,
        array=array,
        ascontiguousarray=ascontiguousarray,
        asnumpy=asnumpy,
        get_array_module=get_array_module,
        ndarray=ndarray,
        ufunc=ufunc,
    )
    return names
