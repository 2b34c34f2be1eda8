"""Check the MLP's backward pass against central differences; print a table.

    python -m backprop.gradcheck --hidden 128 --batch-size 4   # one row per parameter

The checks themselves are ``backprop.gradcheck``; this is its class-room face.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from backprop.app.commands import prog
from backprop.app.commands.flags_and_errors import (
    HelpFormatter,
    Parser,
    parse_hidden,
    run_command,
)
from backprop.app.memory import check_fits
from backprop.device import DEVICES, get_xp, to_device
from backprop.errors import ConfigError
from backprop.gradcheck import check_model, format_table, model_loss, policy_for
from backprop.init import INITIALIZERS
from backprop.model import DTYPES, MLP


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; every default is shown in ``--help``."""
    p = Parser(
        prog=prog("gradcheck"),
        description=(
            "Check the MLP's backward pass against central differences on a "
            "small random batch and print one row per parameter."
        ),
        epilog="Exit status: 0 when every parameter passes, 1 otherwise.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--inputs", type=int, default=784, help="input width D")
    p.add_argument(
        "--hidden", type=parse_hidden, default="128", help="hidden widths, e.g. 32,16"
    )
    p.add_argument("--classes", type=int, default=10, help="number of classes C")
    p.add_argument("--batch-size", type=int, default=4, help="examples in the batch")
    p.add_argument(
        "--dtype", choices=DTYPES, default="float64", help="floating-point precision"
    )
    p.add_argument(
        "--init",
        choices=tuple(INITIALIZERS),
        default="paper",
        help="weight initialiser",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the weights, batch and sample"
    )
    p.add_argument(
        "--max-entries",
        type=int,
        default=2000,
        help="check this many random entries per parameter (0: every entry)",
    )
    p.add_argument("--device", choices=DEVICES, default="cpu", help="where to run")
    p.add_argument(
        "--verbose", action="store_true", help="print each parameter's full report"
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Build the model and batch the flags describe, check it, print the table."""
    for flag, value in (
        ("--inputs", args.inputs),
        ("--classes", args.classes),
        ("--batch-size", args.batch_size),
    ):
        if value < 1:
            raise ConfigError(f"{flag} must be >= 1, got {value}")
    if args.max_entries < 0:
        raise ConfigError(f"--max-entries must be >= 0, got {args.max_entries}")
    xp = get_xp(args.device)
    device = "cpu" if xp is np else "gpu"
    sizes = [args.inputs, *args.hidden, args.classes]
    check_fits(sizes, args.batch_size, args.batch_size, 0, args.dtype, xp)
    model = MLP(sizes, seed=args.seed, dtype=args.dtype, device=device, init=args.init)
    rng = np.random.default_rng(args.seed + 1)
    # pixels in [0, 1] like MNIST, and non-zero biases so every path is exercised
    x = to_device(rng.uniform(0, 1, (args.batch_size, args.inputs)), xp)  # (N, D)
    x = x.astype(args.dtype)
    y = to_device(rng.integers(0, args.classes, args.batch_size), xp)  # (N,)
    for name, param in model.params.items():
        if name.endswith(".b"):
            bias = rng.normal(0, 0.1, param.shape).astype(args.dtype)  # (H,)
            param[...] = to_device(bias, xp)
    policy = policy_for(args.dtype)
    print(
        f"gradient check of MLP {sizes} ({args.init} init, {args.dtype}, "
        f"{device}) on a random batch of {args.batch_size}, seed {args.seed}"
    )
    print(
        f"central differences with h = {policy.step:.0e}; "
        f"pass: max relative error <= {policy.rtol:.0e}"
    )
    if args.max_entries:
        print(f"up to {args.max_entries} random entries per parameter")
    print(
        f"loss {model_loss(model, x, y):.6f} at the start "
        f"(chance level: ln {args.classes} = {math.log(args.classes):.6f})"
    )
    print()
    reports = check_model(model, x, y, max_entries=args.max_entries, seed=args.seed)
    print(format_table(reports))
    if args.verbose:
        for report in reports:
            print()
            print(report)
    return 0 if all(r.passed for r in reports) else 1


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(parser, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
