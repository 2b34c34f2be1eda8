"""The ``backprop`` console command: ``backprop train ...``, ``backprop evaluate ...``.

Each subcommand is the module ``backprop.app.commands.<name>``, imported only when
it is the one asked for, and given the rest of the command line.
"""

from __future__ import annotations

import importlib
import sys

from backprop import __version__
from backprop.app.commands import COMMANDS, dispatched


def usage() -> str:
    """The help text: one line per subcommand."""
    width = max(map(len, COMMANDS))
    lines = [
        "usage: backprop COMMAND [ARGS...]",
        "",
        "A from-scratch backpropagation engine for MNIST. Commands:",
        *(f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()),
        "",
        "backprop COMMAND --help shows a command's flags.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "backprop") -> int:
    """Dispatch to a subcommand; returns its exit status.

    Args:
        argv: the command line after the program's name.
        prog: how the program was typed: ``backprop``, or ``python -m
            backprop`` (``backprop/__main__.py``).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"backprop {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(usage(), file=sys.stderr)
        print(f"\nbackprop: error: unknown command {name!r}", file=sys.stderr)
        return 2
    command = importlib.import_module(f"backprop.app.commands.{name}")
    with dispatched(prog):  # its usage line says "backprop NAME"
        return command.main(rest)


if __name__ == "__main__":
    sys.exit(main())
