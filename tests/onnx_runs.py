"""What the ONNX export tests share: run a command quietly, run an .onnx file,
write test digits as image files."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from backprop.app.onnx_graph import INPUT, OUTPUT
from backprop.data import load_mnist


def quiet(command: Callable[[list[str]], int], argv: list[str]) -> tuple[int, str, str]:
    """``command(argv)`` with its output caught: ``(exit code, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = command(argv)
    return code, out.getvalue(), err.getvalue()


def onnx_probabilities(model: Path | Any, x: np.ndarray) -> np.ndarray:
    """The probabilities onnxruntime computes for ``x`` (N, 784) with ``model``,
    an .onnx file or an ``onnx.ModelProto``."""
    import onnxruntime as ort

    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT], {INPUT: x})[0]


def digit_files(folder: Path, count: int) -> list[Path]:
    """The first test digits as PNG files, dark ink on light paper, 3x larger."""
    from PIL import Image

    _, (x_test, _) = load_mnist()
    paths = []
    for i in range(count):
        pixels = 255 - np.round(x_test[i].reshape(28, 28) * 255).astype(np.uint8)
        path = folder / f"digit{i}.png"
        Image.fromarray(pixels).resize((84, 84)).save(path)
        paths.append(path)
    return paths
