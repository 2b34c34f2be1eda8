"""Write a trained model as an ONNX file, to run outside Python's NumPy.

    python -m backprop.export runs/RUN --onnx model.onnx
    backprop export runs/RUN/model.npz --onnx digits.onnx --overwrite

The graph is made of standard operators (``Gemm``, ``Relu``, ``Softmax``; a
CNN's also ``Conv``, ``MaxPool``; ``backprop.app.onnx_graph``) and carries
the run's weights unchanged; its metadata says what its input must be: 784
values in [0, 1], the image prepared as ``backprop predict`` prepares it.
onnxruntime, or any ONNX runtime, then gives the engine's probabilities
(``backprop predict`` takes the file too). Needs the ``onnx`` package (``pip
install -e '.[onnx]'``). An existing file is replaced only with
``--overwrite``, and then in one rename: a symbolic link in its place is
replaced, never followed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from backprop.app.commands import prog
from backprop.app.commands.flags_and_errors import HelpFormatter, Parser, run_command
from backprop.app.runs import atomic_write, find_model, load_checkpoint, saved_data
from backprop.errors import CheckpointError, OutputError, require


def onnx_path(text: str) -> Path:
    """``--onnx``: a file name ending in ``.onnx`` (``predict`` tells ONNX by it)."""
    if not text.strip().lower().endswith(".onnx") or not Path(text).stem.strip():
        raise argparse.ArgumentTypeError(
            f"expected a file name ending in .onnx, got {text!r}"
        )
    return Path(text).expanduser()


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; every default is shown in ``--help``."""
    p = Parser(
        prog=prog("export"),
        description="Write a trained model as an ONNX file (standard operators; "
        "its metadata says how to prepare the input).",
        formatter_class=HelpFormatter,
    )
    p.add_argument("model", type=Path, help="a run folder or its model.npz")
    p.add_argument(
        "--onnx",
        type=onnx_path,
        required=True,
        metavar="FILE.onnx",
        help="the ONNX file to write",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing FILE.onnx"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(parser, lambda: run(args))


def check_target(path: Path, overwrite: bool) -> None:
    """Refuse an output that is a folder, or exists while ``overwrite`` is off.

    A symbolic link counts as existing (even a dangling one); with
    ``overwrite`` the link itself is replaced, never the file it points to.

    Raises:
        OutputError: naming the path and what to do.
    """
    if path.is_dir() and not path.is_symlink():
        raise OutputError(f"{path}: is a folder; name a file such as model.onnx")
    if os.path.lexists(path) and not overwrite:
        raise OutputError(f"{path}: exists; pass --overwrite to replace it")


def run(args: argparse.Namespace) -> int:
    """Export the model the flags name; the body of ``main``."""
    require("onnx", "onnx", "onnx", "ONNX export")
    from backprop.app.onnx_graph import INPUT, OPSET, build_model, describe

    model_path, folder = find_model(args.model)
    ckpt = load_checkpoint(model_path)
    dataset, _ = saved_data(folder, ckpt.config)
    check_target(args.onnx, args.overwrite)
    try:
        data = build_model(ckpt.params, dataset, ckpt.config).SerializeToString()
        what = describe(ckpt.params, dataset, ckpt.config)
    except CheckpointError as exc:
        raise CheckpointError(f"{model_path}: {exc}") from None
    atomic_write(args.onnx, lambda f: f.write(data))
    print(
        f"wrote {args.onnx} ({len(data):,} bytes): the {what} of {model_path} "
        f"as ONNX opset {OPSET}; its input '{INPUT}' is 784 values in [0, 1], "
        "each image prepared as predict prepares it (metadata_props 'input')"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
