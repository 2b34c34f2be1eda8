"""The stand-in's ``ndarray``: a NumPy array held behind CuPy's rules.

What CuPy refuses, this refuses the same way (its messages are CuPy's):

* implicit conversion to NumPy: ``__array__`` raises ``TypeError``, so
  ``np.asarray(a)``, ``np.array(a)`` and any library that converts its input
  (SciPy, Matplotlib, ``json``) fail as they would on a GPU;
* a NumPy array (even 0-d) as an operand: ``a + np.ones(3)``, ``np.ones(3) + a``
  and ``cupy.where(c, a, np_array)`` raise ``TypeError: Unsupported type``;
  Python and NumPy scalars are fine, as in CuPy;
* a non-scalar NumPy array assigned into a slice (``a[...] = host``) raises
  ``ValueError`` as CuPy's ``fill`` does (a fancy-index assignment copies it
  to the device, as CuPy does);
* ``int``/``float``/``bool`` work (each a read from the device), but there is
  no ``__index__``: ``range(a)`` or ``lst[a]`` raise, as in CuPy.

NumPy functions called on it dispatch to the stand-in's own functions through
``__array_ufunc__``/``__array_function__``, as CuPy's do, and raise
``TypeError`` where the stand-in (like CuPy) has no such function.

Reads (``get``, ``item``, ``tolist``, ``float``, ``int``, ``bool``, ``repr``,
``str``, ``format``, pickling) are recorded in ``_ledger.ledger``.
"""

from __future__ import annotations

import operator
import warnings
from typing import Any

import numpy as np

from cupy._ledger import TO_DEVICE, TO_HOST, ledger

_SCALARS = (bool, int, float, complex, np.generic)


def unsupported(value: Any) -> TypeError:
    """CuPy's error for an operand it cannot take."""
    return TypeError(f"Unsupported type {type(value)}")


def unwrap(value: Any) -> Any:
    """The NumPy buffer behind stand-in arrays, in lists and tuples too.

    Raises:
        TypeError: a NumPy array among them (CuPy does not copy implicitly).
    """
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, np.ndarray):
        raise unsupported(value)
    if isinstance(value, list | tuple):
        return type(value)(unwrap(v) for v in value)
    if isinstance(value, dict):  # keyword arguments
        return {k: unwrap(v) for k, v in value.items()}
    return value


def wrap(value: Any) -> Any:
    """NumPy results as stand-in arrays (scalars as 0-d arrays, as CuPy returns)."""
    if isinstance(value, np.ndarray):
        return ndarray._of(value)
    if isinstance(value, np.generic):
        return ndarray._of(np.asarray(value))
    if isinstance(value, tuple | list):
        return type(value)(wrap(v) for v in value)
    return value


def _operand(value: Any) -> Any:
    """The NumPy side of a binary operation's other operand, or NotImplemented."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, np.ndarray):
        raise unsupported(value)
    if isinstance(value, _SCALARS):
        return value
    return NotImplemented


def _index(key: Any) -> tuple[Any, bool]:
    """An index with device arrays unwrapped; and whether it is advanced.

    A NumPy array or list in an index is copied to the device, as CuPy does
    (recorded as a host-to-device copy).
    """
    parts = key if isinstance(key, tuple) else (key,)
    out, advanced = [], False
    for part in parts:
        if isinstance(part, ndarray):
            out.append(part._a)
            advanced = True
        elif isinstance(part, np.ndarray | list):
            host = np.asarray(part)
            ledger.record(TO_DEVICE, "index", host.nbytes)
            out.append(host)
            advanced = True
        else:
            out.append(part)
    return (tuple(out) if isinstance(key, tuple) else out[0]), advanced


_COMPARISONS = {"less", "less_equal", "equal", "not_equal", "greater", "greater_equal"}


def _item_if_0d(value: Any) -> Any:
    """A 0-d NumPy array as its scalar, as CuPy's comparisons take it."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


def _read(array: np.ndarray, how: str) -> np.ndarray:
    """Record one device-to-host read of ``array``."""
    ledger.record(TO_HOST, how, array.nbytes)
    return array


class ndarray:  # noqa: N801 - CuPy's name
    """A device array of the stand-in (its values live in a NumPy array)."""

    __array_priority__ = 100
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, shape: Any, dtype: Any = float, order: str = "C") -> None:
        self._a = np.empty(shape, dtype=dtype, order=order)

    @classmethod
    def _of(cls, array: np.ndarray) -> ndarray:
        obj = cls.__new__(cls)
        obj._a = array
        return obj

    # --- what CuPy refuses ------------------------------------------------
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly."
        )

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any):
        import cupy

        func = getattr(cupy, ufunc.__name__, None)
        if func is None:
            return NotImplemented
        for x in (*inputs, *kwargs.get("out", ())):
            if not isinstance(x, (*_SCALARS, ndarray, np.ndarray)):
                return NotImplemented
        if ufunc.__name__ in _COMPARISONS:  # CuPy takes a 0-d NumPy array here
            inputs = tuple(_item_if_0d(x) for x in inputs)
        if "out" in kwargs:
            kwargs["out"] = kwargs["out"][0]
        if method != "__call__":
            func = getattr(func, method, None)
            if func is None:
                return NotImplemented
        return func(*inputs, **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any):
        import cupy

        ours = getattr(cupy, func.__name__, None)
        if ours is None or ours is func or func.__module__ != "numpy":
            return NotImplemented
        if not all(issubclass(t, ndarray | np.ndarray) for t in types):
            return NotImplemented
        return ours(*args, **kwargs)

    # --- reads from the device --------------------------------------------
    def get(self, stream: Any = None, order: str = "C", out: Any = None) -> np.ndarray:
        """A copy on the host (one read)."""
        host = _read(self._a, "get").copy(order=order)
        if out is not None:
            out[...] = host
            return out
        return host

    def item(self) -> Any:
        """The one element as a Python scalar (one read)."""
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return _read(self._a, "item").item()

    def tolist(self) -> Any:
        """The values as nested Python lists (one read)."""
        return _read(self._a, "tolist").tolist()

    def tobytes(self, order: str = "C") -> bytes:
        """The raw bytes (one read)."""
        return _read(self._a, "tobytes").tobytes(order)

    def __int__(self) -> int:
        return int(_read(self._a, "int"))

    def __float__(self) -> float:
        return float(_read(self._a, "float"))

    def __complex__(self) -> complex:
        return complex(_read(self._a, "complex"))

    def __bool__(self) -> bool:
        if self.size == 0:
            warnings.warn("truth value of an empty array", DeprecationWarning, 2)
            return False
        if self.size > 1:
            raise ValueError(
                "The truth value of an array with more than one element is "
                "ambiguous. Use a.any() or a.all()"
            )
        return bool(_read(self._a, "bool"))

    def __repr__(self) -> str:
        return repr(_read(self._a, "repr"))

    def __str__(self) -> str:
        return str(_read(self._a, "str"))

    def __format__(self, spec: str) -> str:
        return format(_read(self._a, "format"), spec)

    def __reduce__(self):
        import cupy

        return cupy.array, (_read(self._a, "pickle").copy(),)

    # --- attributes -------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray._of(self._a.T))

    @property
    def base(self) -> ndarray | None:
        """The array this one is a view of, or None."""
        return None if self._a.base is None else ndarray._of(self._a.base)

    @property
    def device(self) -> Any:
        """The one device."""
        from cupy.cuda import Device

        return Device(0)

    def __len__(self) -> int:
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    def __copy__(self) -> ndarray:
        return ndarray._of(self._a.copy())

    def __deepcopy__(self, memo: Any) -> ndarray:
        return ndarray._of(self._a.copy())

    # --- indexing ---------------------------------------------------------
    def __getitem__(self, key: Any) -> ndarray:
        index, _ = _index(key)
        return wrap(self._a[index])

    def __setitem__(self, key: Any, value: Any) -> None:
        index, advanced = _index(key)
        if isinstance(value, ndarray):
            value = value._a
        elif isinstance(value, np.ndarray | list | tuple):
            host = np.asarray(value)
            if not advanced and host.ndim:
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            if advanced:
                ledger.record(TO_DEVICE, "setitem", host.nbytes)
            value = host
        elif not isinstance(value, _SCALARS):
            raise unsupported(value)
        self._a[index] = value

    def fill(self, value: Any) -> None:
        """Set every element to a scalar."""
        self[...] = value

    # --- methods computed "on the device" ---------------------------------
    def astype(
        self,
        dtype: Any,
        order: str = "K",
        casting: Any = None,
        subok: Any = None,
        copy: bool = True,
    ) -> ndarray:
        """A copy (or, with ``copy=False`` and the same dtype, self) as ``dtype``."""
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        return ndarray._of(self._a.astype(dtype, order=order))

    def copy(self, order: str = "C") -> ndarray:
        """A copy on the device."""
        return ndarray._of(self._a.copy(order=order))

    def view(self, dtype: Any = None) -> ndarray:
        """A view (optionally reinterpreted as ``dtype``)."""
        return ndarray._of(self._a.view() if dtype is None else self._a.view(dtype))


def _method(name: str):
    def method(self: ndarray, *args: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out")
        result = getattr(self._a, name)(*unwrap(args), **unwrap(kwargs))
        return out if out is not None else wrap(result)

    method.__name__ = name
    method.__doc__ = f"``numpy.ndarray.{name}`` on the device."
    return method


for _name in (
    "reshape ravel flatten transpose swapaxes squeeze sum mean max min argmax "
    "argmin any all prod cumsum cumprod std var clip dot take repeat nonzero "
    "round conj diagonal trace sort argsort"
).split():
    setattr(ndarray, _name, _method(_name))


def _operator(name: str) -> Any:
    """``operator.add``, ``operator.and_``, ... by name."""
    return getattr(operator, name, None) or getattr(operator, name + "_")


def _binary(name: str, reflected: bool = False):
    op = _operator(name.replace("r", "", 1) if reflected else name)

    def method(self: ndarray, other: Any) -> Any:
        if name in ("lt", "le", "eq", "ne", "gt", "ge"):
            other = _item_if_0d(other)
        o = _operand(other)
        if o is NotImplemented:
            return NotImplemented
        return wrap(op(o, self._a) if reflected else op(self._a, o))

    return method


def _inplace(name: str):
    op = _operator(name)

    def method(self: ndarray, other: Any) -> ndarray:
        o = _operand(other)
        if o is NotImplemented:
            return NotImplemented
        op(self._a, o)  # writes into the buffer, so views see it
        return self

    return method


for (
    _name
) in "add sub mul truediv floordiv mod pow matmul and or xor lshift rshift".split():
    setattr(ndarray, f"__{_name}__", _binary(_name))
    setattr(ndarray, f"__r{_name}__", _binary(f"r{_name}", reflected=True))
    setattr(ndarray, f"__i{_name}__", _inplace(f"i{_name}"))
for _name in "lt le eq ne gt ge".split():
    setattr(ndarray, f"__{_name}__", _binary(_name))
for _name in "neg pos abs invert".split():
    setattr(
        ndarray,
        f"__{_name}__",
        (lambda op: lambda self: wrap(op(self._a)))(_operator(_name)),
    )
