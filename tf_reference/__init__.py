"""The paper's TensorFlow model, kept beside the engine to check it.

    python -m tf_reference.train                     # the paper's run in TensorFlow
    python -m tf_reference.convert export model.npz model.keras

``tf_reference.paper_model`` is the paper's ``tf.Module`` network,
``tf_reference.tape_training`` its ``tf.GradientTape`` loop (``python -m
tf_reference.train``, laid out step for step like ``backprop.app.trainer``), and
``tf_reference.convert`` the one place that maps engine parameter names such as
``dense1.w`` to TensorFlow variables and back, and to and from Keras ``.keras``
files.

Importing ``tf_reference.paper_model`` (and so the other modules) loads TensorFlow
through ``load_tensorflow``, which checks that it (>= 2.16, with Keras 3) is
there and raises a one-line ``TensorFlowUnavailable`` error otherwise.
``import tf_reference`` alone imports nothing.

TensorFlow runs on the CPU here: ``load_tensorflow`` hides GPUs from it.
On NVIDIA GPUs since Ampere, TensorFlow computes float32 matrix products in
TF32 (a 10-bit mantissa) unless told not to, which moves results by about 1e-3
relative; the parity checks need IEEE float32 and float64, which the CPU gives.
"""

from __future__ import annotations

import functools
import os
import sys
import types

from backprop.errors import BackpropError

MIN_TENSORFLOW = (2, 16)  # the first TensorFlow whose tf.keras is Keras 3
MIN_KERAS = (3, 0)
INSTALL_HINT = "pip install -e '.[tf]'"


class TensorFlowUnavailable(BackpropError, ImportError):
    """TensorFlow (or Keras) is missing, broken or too old."""


def _version_tuple(version: str) -> tuple[int, ...]:
    """``"2.21.0rc1"`` -> ``(2, 21, 0)``: the leading numbers of a version."""
    numbers = []
    for part in version.split("."):
        digits = ""
        for char in part:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        numbers.append(int(digits))
    return tuple(numbers)


def check_versions(tensorflow_version: str, keras_version: str) -> None:
    """Raise ``TensorFlowUnavailable`` unless both versions are recent enough.

    Args:
        tensorflow_version: ``tf.__version__``.
        keras_version: ``keras.__version__``.
    """
    wanted_tf = ".".join(map(str, MIN_TENSORFLOW))
    if _version_tuple(tensorflow_version) < MIN_TENSORFLOW:
        raise TensorFlowUnavailable(
            f"TensorFlow {tensorflow_version} is too old; need >= {wanted_tf} "
            f"(with Keras 3); {INSTALL_HINT}"
        )
    if _version_tuple(keras_version) < MIN_KERAS:
        raise TensorFlowUnavailable(
            f"Keras {keras_version} is too old; need Keras 3 (TensorFlow >= "
            f"{wanted_tf}, TF_USE_LEGACY_KERAS unset); {INSTALL_HINT}"
        )


def _running_as_command() -> bool:
    """True when the program is one of this package's commands (``python -m``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec is not None and spec.name.startswith("tf_reference.")


@functools.cache
def load_tensorflow() -> tuple[types.ModuleType, types.ModuleType]:
    """Import TensorFlow (on the CPU) and Keras, or raise ``TensorFlowUnavailable``.

    ``tf_reference.paper_model`` calls this when it is imported; nothing happens on
    ``import tf_reference``. When the program is one of this package's commands
    (``python -m tf_reference.train``), a missing or old TensorFlow is one
    line on stderr and exit status 1 instead of a traceback.
    """
    try:
        return _import_tensorflow()
    except TensorFlowUnavailable as exc:
        if _running_as_command():
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        raise


def _import_tensorflow() -> tuple[types.ModuleType, types.ModuleType]:
    """Import TensorFlow on the CPU, or raise ``TensorFlowUnavailable``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no C++ info lines
    try:
        import tensorflow as tf
    except ImportError:
        raise TensorFlowUnavailable(
            f"TensorFlow is not installed; {INSTALL_HINT}"
        ) from None
    except Exception as exc:  # a broken install fails in many ways
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TensorFlowUnavailable(
            f"TensorFlow failed to import ({first_line}); {INSTALL_HINT}"
        ) from None
    try:
        import keras
    except ImportError:
        raise TensorFlowUnavailable(f"Keras is not installed; {INSTALL_HINT}") from None
    check_versions(tf.__version__, keras.__version__)
    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:
        # TensorFlow already started on a GPU in this process: keep IEEE float32.
        tf.config.experimental.enable_tensor_float_32_execution(False)
    return tf, keras
