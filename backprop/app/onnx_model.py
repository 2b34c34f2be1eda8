"""An ONNX file written by ``backprop export``, run by onnxruntime.

``backprop predict model.onnx photo.jpg`` reads digits with it exactly as with
the run it came from: ``OnnxModel`` offers what ``predict`` uses of an
``MLP`` or a ``CNN`` (``sizes``, ``dtype``, ``params``, ``predict_proba``),
and the run's config travels in the file's metadata, so the images get the
same preparation and the classes the same names. Needs the ``onnx`` and
``onnxruntime`` packages (the ``onnx`` extra), imported only when a file is
loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from backprop.errors import CheckpointError, require

ONNX_SUFFIX = ".onnx"


class OnnxModel:
    """A model read from an ONNX file of ``backprop export``.

    Attributes:
        sizes: the inputs, then each dense layer's width, e.g. ``[784, 128, 10]``.
        dtype: ``"float32"`` or ``"float64"``, the graph's element type.
        params: the weights in the file, ``dense1.w`` (784, H1), ... (NumPy).
        config: the run's config, from the file's metadata.
        metadata: every ``metadata_props`` entry, as strings.
    """

    def __init__(self, path: str | Path) -> None:
        require("onnx", "onnx", "onnx", "reading an ONNX model")
        require("onnxruntime", "onnxruntime", "onnx", "running an ONNX model")
        import onnx
        import onnxruntime
        from onnx import numpy_helper

        from backprop.app.onnx_graph import INPUT, OUTPUT, PRODUCER, network_sizes

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such file")
        try:
            # External data would make the file name other files to read: refused.
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # protobuf's DecodeError, and what else it raises
            raise CheckpointError(
                f"{path}: not an ONNX file ({one_line(exc)})"
            ) from None
        if proto.producer_name != PRODUCER:
            raise CheckpointError(
                f"{path}: not written by backprop export (producer "
                f"{proto.producer_name or 'unnamed'!r}); predict reads only those"
            )
        if any(
            t.data_location == onnx.TensorProto.EXTERNAL
            for t in proto.graph.initializer
        ):
            raise CheckpointError(f"{path}: its weights are in other files; refused")
        self.metadata = {p.key: p.value for p in proto.metadata_props}
        try:
            self.config: dict[str, Any] = json.loads(self.metadata.get("config", "{}"))
            self.params = {
                t.name: numpy_helper.to_array(t) for t in proto.graph.initializer
            }
            session = onnxruntime.InferenceSession(
                proto.SerializeToString(), providers=["CPUExecutionProvider"]
            )
        except CheckpointError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        except Exception as exc:  # onnxruntime's own errors have no common base
            raise CheckpointError(f"{path}: cannot be run ({one_line(exc)})") from None
        if not isinstance(self.config, dict):
            raise CheckpointError(f"{path}: its metadata 'config' is not a JSON object")
        try:
            self.sizes, self.dtype = network_sizes(self.params, self.config)
        except CheckpointError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if [i.name for i in inputs] != [INPUT] or [o.name for o in outputs] != [OUTPUT]:
            raise CheckpointError(
                f"{path}: expected input {INPUT!r} and output {OUTPUT!r}, found "
                f"{[i.name for i in inputs]} and {[o.name for o in outputs]}"
            )
        self._session, self._input, self._output = session, INPUT, OUTPUT

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, as onnxruntime computes them from the file.

        Args:
            x: prepared inputs, (N, sizes[0]), any float dtype.

        Returns:
            probabilities, (N, sizes[-1]), in the model's dtype.
        """
        x = np.ascontiguousarray(x, dtype=self.dtype)  # (N, D)
        return self._session.run([self._output], {self._input: x})[0]  # (N, C)


def one_line(exc: BaseException) -> str:
    """An exception's message, cut to its first line."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def is_onnx(path: str | Path) -> bool:
    """Whether a model path names an ONNX file (by its suffix)."""
    return Path(path).suffix.lower() == ONNX_SUFFIX
