"""What every command shares: the training flags, and turning errors into one line.

A command's ``main(argv=None)`` parses its flags and does the work inside
``reported_errors`` (or hands it to ``run_command``), which maps what can go
wrong to an exit status and one line on stderr, never a traceback:

* ``ConfigError`` (a flag out of range): status 2, through ``parser.error``
  like argparse's own errors (with ``Parser``: one line and a pointer to
  ``--help``);
* any other ``BackpropError`` (bad data, a damaged checkpoint, no GPU, a
  folder that cannot be written): status 1; so are an ``OSError`` and a
  ``MemoryError`` that no layer turned into one;
* Ctrl-C, or SIGTERM (turned into the same ``KeyboardInterrupt``): status
  130, with the interrupt's message when it carries one (what is on disk).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from backprop.app.config import CNN_EMA, CNN_HIDDEN, MODELS, EngineConfig, TrainConfig
from backprop.app.runs.folders import as_flag
from backprop.data import DATASETS
from backprop.device import DEVICES
from backprop.errors import BackpropError, ConfigError
from backprop.init import INITIALIZERS
from backprop.kernels import KERNEL_MODES
from backprop.model import DTYPES
from backprop.optim import ADAM_MODES

UNSET = object()  # stands for a flag the user did not type


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each flag's default once, as it would be typed.

    ``(default: 128)``, not ``(default: (128,))``; nothing for a switch, for
    a default of None (the help says what happens then) or where the help
    names it.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            action.default is None
            or action.default is argparse.SUPPRESS
            or action.nargs == 0  # a switch: off unless typed
            or "(default" in text
            or "%(default)" in text
            or not (action.option_strings or action.nargs in ("?", "*"))
        ):
            return text
        return f"{text} (default: {as_flag(action.default).replace('%', '%%')})"


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line, with a hint."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print ``PROG: error: MESSAGE`` and where the flags are listed; exit 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM's handler: stop the way Ctrl-C does."""
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ExitStatus:
    """The exit status ``reported_errors`` sets when it reports an error."""

    code: int = 0


@contextlib.contextmanager
def reported_errors(parser: argparse.ArgumentParser) -> Iterator[ExitStatus]:
    """Turn what can go wrong inside the block into one line and an exit status.

    Used as ``with reported_errors(parser) as status: return work()`` followed
    by ``return status.code``: the block's own return value when it finishes,
    the error's status when it does not. A context manager rather than a
    wrapper function, so that it adds no frame between a command's ``main``
    and the work.

    Args:
        parser: the command's parser (its usage line goes with a ConfigError).
    """
    status = ExitStatus()
    try:
        with sigterm_as_interrupt():
            yield status
    except ConfigError as exc:
        parser.error(str(exc))  # exits with status 2, as argparse does
    except BackpropError as exc:
        print(f"error: {exc}", file=sys.stderr)
        status.code = 1
    except KeyboardInterrupt as exc:
        print(f"\n{exc.args[0] if exc.args else 'interrupted'}", file=sys.stderr)
        status.code = 130
    except MemoryError:
        print("error: out of memory; try smaller sizes", file=sys.stderr)
        status.code = 1
    except OSError as exc:  # a file no layer expected to fail
        where = exc.filename or "a file"
        print(f"error: {where}: {exc.strerror or exc}", file=sys.stderr)
        status.code = 1


def run_command(parser: argparse.ArgumentParser, body: Callable[[], int]) -> int:
    """Run a command's body; return its status, or the status of its error.

    Args:
        parser: the command's parser (its usage line goes with a ConfigError).
        body: does the work and returns the exit status.
    """
    with reported_errors(parser) as status:
        return body()
    return status.code


@contextlib.contextmanager
def on_interrupt(message: str) -> Iterator[None]:
    """Give a Ctrl-C inside the block ``message``, unless it carries its own.

    Commands wrap each stage in one, so the line printed says what is on
    disk at that moment.
    """
    try:
        yield
    except KeyboardInterrupt as exc:
        if exc.args:
            raise
        raise KeyboardInterrupt(message) from None


def folder_path(text: str) -> str:
    """``--data-dir``: a folder, stored as an absolute path (never ``""``)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, got an empty string")
    return os.path.abspath(os.path.expanduser(text))


def file_path(text: str) -> Path:
    """A file to read (``--resume``); an empty string is refused, not ``.``."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file, got an empty string")
    return Path(text).expanduser()


def out_path(text: str) -> Path:
    """``--out``: a folder to write; an empty string is refused, not ``.``."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "expected a folder, got an empty string (write --out . for this folder)"
        )
    return Path(text).expanduser()


def add_output_flags(p: argparse.ArgumentParser, default: str) -> None:
    """Add ``--out`` and ``--overwrite``.

    Args:
        p: the parser to extend.
        default: where the command writes without ``--out``, for the help.
    """
    p.add_argument(
        "--out", type=out_path, default=None, help=f"output folder (default: {default})"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the files of an earlier run in --out (refused without it)",
    )


def parse_hidden(text: str) -> tuple[int, ...]:
    """Parse ``--hidden``: ``128`` or ``256,128``."""
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated widths like 128 or 256,128, got {text!r}"
        ) from None
    if min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be >= 1, got {text!r}")
    return widths


def add_training_flags(p: argparse.ArgumentParser, d: TrainConfig) -> None:
    """Add the flags of ``TrainConfig``, which every training command shares.

    ``backprop.train``, ``backprop.crossval`` and ``tf_reference.train`` all
    take these, so the runs of one experiment are named by the same flags.

    Args:
        p: the parser to extend.
        d: a config whose fields give the defaults.
    """
    p.add_argument("--epochs", type=int, default=d.epochs, help="total epochs to train")
    p.add_argument(
        "--batch-size", type=int, default=d.batch_size, help="examples per Adam step"
    )
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate")
    p.add_argument(
        "--hidden",
        type=parse_hidden,
        default=d.hidden,
        help="hidden widths, e.g. 128 or 256,128",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help="seed of the run's one NumPy generator (initial weights, shuffling)",
    )
    p.add_argument(
        "--dtype", choices=DTYPES, default=d.dtype, help="floating-point precision"
    )
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default=d.dataset,
        help="bundled MNIST or Debian's Fashion-MNIST",
    )
    p.add_argument(
        "--data-dir",
        type=folder_path,
        default=d.data_dir,
        help="a folder with the four IDX files, read instead of --dataset's "
        "(whose class names are kept)",
    )


def add_engine_flags(p: argparse.ArgumentParser, d: EngineConfig) -> None:
    """Add the flags of ``EngineConfig`` beyond the shared ones."""
    p.add_argument(
        "--model",
        choices=MODELS,
        default=d.model,
        help="mlp: the paper's dense network; cnn: LeNet-5's convolutions and "
        "pooling, then dense layers of the --hidden widths (default "
        f"{','.join(map(str, CNN_HIDDEN))} with cnn)",
    )
    p.add_argument(
        "--lr-decay",
        type=float,
        default=d.lr_decay,
        help="multiply the learning rate by this after every epoch (0, 1]; "
        "1 keeps it constant, as the paper does",
    )
    p.add_argument(
        "--ema",
        type=float,
        default=d.ema,
        help="score, save and predict with a moving average of the weights: "
        "after step t, average = d * average + (1 - d) * weights, d = min(EMA, "
        "(1 + t) / (10 + t)) (TensorFlow's ExponentialMovingAverage); in [0, 1), "
        f"0 averages nothing (default: 0, or {CNN_EMA} with --model cnn)",
    )
    p.add_argument(
        "--device",
        choices=DEVICES,
        default=d.device,
        help="auto uses the GPU when CuPy sees one",
    )
    p.add_argument(
        "--init",
        choices=tuple(INITIALIZERS),
        default=d.init,
        help="paper: truncated normal, stddev 0.1",
    )
    p.add_argument(
        "--adam",
        choices=ADAM_MODES,
        default=d.adam,
        help="keras: eps 1e-7 on the uncorrected sqrt(v), as the paper's TensorFlow; "
        "algorithm1: Kingma & Ba's, eps 1e-8 on the corrected sqrt(v)",
    )
    p.add_argument(
        "--kernels",
        choices=KERNEL_MODES,
        default=d.kernels,
        help="fused: hand-written Numba kernels around the BLAS products; "
        "reference: the lectures' code; auto: fused when Numba imports",
    )
    p.add_argument(
        "--augment",
        action="store_true",
        help="distort every training image afresh each epoch: rotation, scale, "
        "shear, shift, elastic, stroke thickness, blur, noise (backprop.app.augment)",
    )
    p.add_argument(
        "--augment-strength",
        type=float,
        default=d.augment_strength,
        help="with --augment, multiply every distortion's range by this (0, 4]",
    )
    p.add_argument(
        "--augment-fraction",
        type=float,
        default=d.augment_fraction,
        help="with --augment, the share of the training images distorted each "
        "epoch (0, 1]; the others are left as they are",
    )


def parse_with_typed(
    parser: argparse.ArgumentParser, argv: list[str] | None, names: tuple[str, ...]
) -> tuple[argparse.Namespace, set[str]]:
    """Parse flags, and say which of ``names`` the user typed.

    argparse fills in a default only for a destination the namespace does not
    hold yet, so the namespace starts with ``UNSET`` for each of ``names``;
    those still ``UNSET`` afterwards were not typed and get their defaults.

    Returns:
        ``(args, typed)``: the parsed flags with every default filled in, and
        the subset of ``names`` given on the command line.
    """
    args = parser.parse_args(
        argv, namespace=argparse.Namespace(**dict.fromkeys(names, UNSET))
    )
    typed = {name for name in names if getattr(args, name) is not UNSET}
    for name in set(names) - typed:
        setattr(args, name, parser.get_default(name))
    return args, typed


# Flags whose defaults depend on --model (engine_config fills them in).
MODEL_DEFAULTS = ("hidden", "ema")


def engine_config(args: argparse.Namespace, typed: set[str]) -> EngineConfig:
    """The ``EngineConfig`` the flags name.

    ``--model cnn`` without ``--hidden`` gets LeNet-5's dense widths
    (``CNN_HIDDEN``), and without ``--ema`` the average chosen for it on the
    ``tune`` set (``CNN_EMA``; docs/results/cnn-tune.json).

    Args:
        args: the parsed flags.
        typed: the run-defining flags the user typed (``parse_with_typed``).
    """
    cfg = EngineConfig.from_namespace(args)
    if cfg.model == "cnn" and "hidden" not in typed:
        cfg = dataclasses.replace(cfg, hidden=CNN_HIDDEN)
    if cfg.model == "cnn" and "ema" not in typed:
        cfg = dataclasses.replace(cfg, ema=CNN_EMA)
    return cfg
