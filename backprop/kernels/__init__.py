"""Hand-written fused kernels for the training step, beside the readable reference.

A training step is a few matrix products, which BLAS (or cuBLAS) already does
well, and a chain of small elementwise steps around them: scale the batch,
add a bias, ReLU, softmax, cross-entropy, mask the gradient, sum the bias
gradient, Adam. Each of those is memory-bound, and NumPy runs each one as a
separate pass over memory that allocates its result; it cannot fuse them. The
kernels here do the same arithmetic as one loop per fused step, one element at
a time, writing into buffers that are reused from step to step. The matrix
products stay BLAS calls.

The rule, as in llm.c: every kernel's docstring names the reference
function(s) in ``backprop.layers``, ``backprop.losses``, ``backprop.optim`` or
``backprop.data`` that it replaces, and ``tests/engine/test_kernels.py`` checks it
against them, bit for bit wherever the operations are the same.

Backends, one module per array library, with the same function names:

* ``backprop.kernels.cpu``: NumPy arrays, compiled by Numba (an optional
  dependency, imported only by that module).
* a CuPy backend, a ``gpu`` module beside ``cpu`` with the same names, is
  planned; ``--kernels fused`` on the GPU is refused until it exists.

``resolve_kernels`` turns the ``--kernels`` flag into ``"reference"`` or
``"fused"``; ``kernels_for`` returns the backend module for an array module;
``warm_up`` compiles (or loads from Numba's on-disk cache) every kernel
before anything is timed; ``make_step`` returns the step a run trains with,
``backprop.loop.ReferenceStep``, ``backprop.kernels.step.FusedStep`` (an MLP)
or ``backprop.kernels.cnn_step.FusedCNNStep`` (a CNN: ReLU and pooling fused);
``images_changed`` tells the fused steps that read an array of training
images that it was rewritten (``--augment``), so that they compress it again.
Importing this package does not import Numba.
"""

from __future__ import annotations

import functools
import types
import weakref
from typing import Any

import numpy as np

from backprop.cnn import CNN
from backprop.device import xp_of
from backprop.errors import ConfigError
from backprop.loop import Array, ReferenceStep, Step
from backprop.model import MLP
from backprop.optim import Adam

KERNEL_MODES = ("auto", "reference", "fused")

_NUMBA_HINT = "pip install numba"
# The fused steps, each with the training images it keeps a compressed copy of.
_WATCHERS: weakref.WeakSet = weakref.WeakSet()
_NO_GPU_KERNELS = "no fused GPU kernels yet"


@functools.cache
def numba_status() -> str | None:
    """Say why Numba cannot be used, or return None when it can.

    Cached: the import is attempted once per process.

    Returns:
        None if ``numba`` imports; otherwise a short reason.
    """
    try:
        import numba  # noqa: F401
    except ImportError:
        return "Numba is not installed"
    except Exception as exc:  # a broken install, e.g. an incompatible NumPy
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"Numba failed to import ({first_line})"
    return None


def _unavailable(xp: types.ModuleType) -> str | None:
    """Why there is no fused backend for ``xp``, or None when there is one."""
    if xp is np:
        return numba_status()
    return _NO_GPU_KERNELS


def resolve_kernels(mode: str, xp: types.ModuleType, *, announce: bool = True) -> str:
    """Turn ``auto``/``reference``/``fused`` into ``reference`` or ``fused``.

    Args:
        mode: one of ``KERNEL_MODES``.
        xp: the array module the model lives in (``numpy`` or ``cupy``).
        announce: print a one-line notice when ``auto`` falls back to the
            reference path.

    Returns:
        ``"reference"`` or ``"fused"``.

    Raises:
        ConfigError: ``fused`` was asked for and there is no backend for
            ``xp``, or the mode is unknown.
    """
    if mode not in KERNEL_MODES:
        raise ConfigError(
            f"unknown kernels {mode!r}; choose one of {', '.join(KERNEL_MODES)}"
        )
    if mode == "reference":
        return "reference"
    reason = _unavailable(xp)
    if reason is None:
        return "fused"
    if mode == "fused":
        if xp is np:
            raise ConfigError(f"--kernels fused needs Numba ({reason}): {_NUMBA_HINT}")
        raise ConfigError(f"{reason}; use --kernels reference")
    if announce:
        print(f"kernels auto: using the reference path ({reason})")
    return "reference"


def kernels_for(xp: types.ModuleType) -> types.ModuleType:
    """The fused-kernel backend module for an array module.

    Args:
        xp: ``numpy`` (or, later, ``cupy``).

    Returns:
        ``backprop.kernels.cpu`` for numpy (imported here, which imports Numba).

    Raises:
        ConfigError: there is no backend for ``xp``, or Numba is missing.
    """
    reason = _unavailable(xp)
    if reason is not None:
        hint = _NUMBA_HINT if xp is np else "use --kernels reference"
        raise ConfigError(f"fused kernels are not available: {reason}; {hint}")
    from backprop.kernels import cpu

    return cpu


def watch_images(images: Any, step: Any) -> None:
    """Register ``step`` (it has ``images`` and ``images_changed()``) for news."""
    _WATCHERS.add(step)


def images_changed(images: Any) -> None:
    """Say that ``images`` (N, D) were rewritten in place.

    Every fused step whose training images share memory with ``images``
    forgets its compressed copy and makes a new one at its next step. A
    no-op when no such step exists (the reference mode, or no step yet).

    Args:
        images: the array that was rewritten.
    """
    if not isinstance(images, np.ndarray):  # the fused steps read host arrays
        return
    for step in list(_WATCHERS):
        if np.may_share_memory(step.images, images):
            step.images_changed()


def warm_up(kernels_module: types.ModuleType, dtype: Any) -> None:
    """Call every kernel once on tiny arrays, so none compiles inside a timed epoch.

    Numba compiles one version per argument type (dtype, layout, and whether
    an array is read-only), at its first call, or loads it from its on-disk
    cache. This makes those first calls, for ``dtype`` and for both writable
    and read-only uint8 images (the loaded dataset is read-only).

    Args:
        kernels_module: from ``kernels_for``.
        dtype: the parameters' dtype, e.g. ``"float32"``.
    """
    k, dt = kernels_module, np.dtype(dtype)
    n, d, h, c = 2, 3, 4, 3
    images = np.arange(n * d, dtype=np.uint8).reshape(n, d)  # (n, d)
    frozen = images.copy()  # (n, d)
    frozen.flags.writeable = False
    rows = np.arange(n, dtype=np.int64)  # (n,)
    x = np.empty((n, d), dt)  # (n, d)
    k.gather_scale(images, rows, x)
    k.gather_scale(frozen, rows, x)
    scale = k.scale_table(dt)  # (256,)
    for pixels in (images, frozen):
        sparse = k.compress(pixels)
        k.batch_density(sparse, rows)
        w = np.ones((d, k.sparse.BLOCK), dt)  # (d, BLOCK)
        k.sparse_forward(sparse, rows, scale, w, np.empty((n, k.sparse.BLOCK), dt))
        groups = k.group_by_pixel(sparse, rows, scale)
        k.sparse_weight_grad(groups, np.ones((n, k.sparse.BLOCK), dt), w)
    z = np.ones((n, h), dt)  # (n, h)
    b = np.zeros(h, dt)  # (h,)
    k.bias_relu(z, b)
    k.bias_add(z, b)
    k.relu_backward_bias_grad(np.ones((n, h), dt), z, np.empty(h, dt))
    logits = np.zeros((n, c), dt)  # (n, c)
    labels = np.zeros(n, dtype=np.int64)  # (n,)
    k.softmax_cross_entropy(logits, labels, np.empty((n, c), dt), np.empty(c, dt))
    p, g, m, v = (np.zeros(h, dt) for _ in range(4))  # (h,) each
    k.adam_keras(p, g, m, v, 0.1, 0.001, 1e-3, 1e-7)
    k.adam_algorithm1(p, g, m, v, 0.1, 0.001, 1e-3, 1e-8, 0.1, 0.001)
    maps = np.ones((c, h, h, n), dt).transpose(3, 1, 2, 0)  # (n, h, h, c)
    pooled, cache = k.relu_maxpool_forward(maps, 2, 2)
    k.relu_maxpool_backward(pooled, cache)


def make_step(
    kernels: str,
    model: MLP | CNN,
    opt: Adam,
    pixels: Array,
    labels: Array,
    batch_size: int,
) -> Step:
    """The step training takes: the reference, or the fused kernels.

    Args:
        kernels: ``"reference"`` or ``"fused"`` (from
            ``backprop.kernels.resolve_kernels``).
        model: updated in place.
        opt: the optimizer.
        pixels: all training images as uint8 pixels, (N, D).
        labels: their integer labels, (N,).
        batch_size: the largest batch.

    Returns:
        a ``Step`` for ``train_epoch``: for a CNN, ``FusedCNNStep``.
    """
    if kernels == "reference":
        return ReferenceStep(model, opt, pixels, labels)
    module = kernels_for(xp_of(pixels))
    warm_up(module, model.dtype)  # compile, or load from Numba's cache, now
    if isinstance(model, CNN):
        from backprop.kernels.cnn_step import FusedCNNStep

        return FusedCNNStep(model, opt, pixels, labels, module)
    from backprop.kernels.step import FusedStep  # imports nothing heavier

    # no batch is larger than the data, so neither are the step's buffers
    rows = max(1, min(batch_size, len(pixels)))
    return FusedStep(model, opt, pixels, labels, rows, module)
