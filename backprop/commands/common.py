"""What every command shares: the training flags, and turning errors into one line.

A command's ``main(argv=None)`` parses its flags and hands the work to
``run_command``, which maps what can go wrong to an exit status and one line
on stderr, never a traceback:

* ``ConfigError`` (a flag out of range): the usage line and status 2, through
  ``parser.error`` like argparse's own errors;
* any other ``BackpropError`` (bad data, a damaged checkpoint, no GPU): status 1;
* Ctrl-C: status 130.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from backprop.data import DATASETS
from backprop.device import DEVICES
from backprop.errors import BackpropError, ConfigError
from backprop.init import INITIALIZERS
from backprop.kernels import KERNEL_MODES
from backprop.model import DTYPES
from backprop.optim import ADAM_MODES
from backprop.training import EngineConfig, TrainConfig

UNSET = object()  # stands for a flag the user did not type


def run_command(parser: argparse.ArgumentParser, body: Callable[[], int]) -> int:
    """Run a command's body; return its status, or the status of its error.

    Args:
        parser: the command's parser (its usage line goes with a ConfigError).
        body: does the work and returns the exit status.
    """
    try:
        return body()
    except ConfigError as exc:
        parser.error(str(exc))  # exits with status 2, as argparse does
    except BackpropError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


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
        default=d.data_dir,
        help="a folder with the four IDX files, read instead of --dataset's "
        "(whose class names are kept)",
    )


def add_engine_flags(p: argparse.ArgumentParser, d: EngineConfig) -> None:
    """Add the flags of ``EngineConfig`` beyond the shared ones."""
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
