"""Draw a digit and watch backprop: a local web page over a trained model.

    python -m backprop.explore runs/RUN            # a run folder or its model.npz
    python -m backprop.explore                     # trains the paper's model first
    python -m backprop.explore runs/RUN --port 8080 --no-browser

The page (``backprop.app.explorer``) shows the prepared 28x28 input, the hidden
activations (of a CNN: its first convolution's feature maps and kernels) and
the class probabilities as you draw; click the true digit to
see the backward pass for that one example, and take Adam steps on it. A
second tab shows the run's curves and training diagnostics. Everything is
served from this machine; nothing is fetched from anywhere else. It is safe
to leave running: it answers only requests that name the address and port it
serves, and takes steps only for its own page, so another site open in the
same browser can neither read it nor change it
(``backprop.app.explorer.request_checks``).
``--host`` other than loopback lets other machines in, by the names it prints.
Needs the ``explorer`` extra (Starlette, uvicorn) and Pillow (``pictures``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from backprop.app.commands.flags_and_errors import run_command
from backprop.app.explorer.firstrun import FIRST_RUN_EPOCHS, train_first_run
from backprop.app.explorer.server import (
    LOOPBACK,
    bind,
    bound_address,
    host_names,
    is_loopback,
    serve,
    url_of,
)
from backprop.app.explorer.session import Session
from backprop.errors import require


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; every default is shown in ``--help``."""
    p = argparse.ArgumentParser(
        prog="python -m backprop.explore",
        description="Serve a local page where you draw a digit and watch the "
        "forward and backward pass of a trained model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "model",
        type=Path,
        nargs="?",
        default=None,
        help="a run folder or its model.npz (default: train the paper's model "
        f"for {FIRST_RUN_EPOCHS} epochs into a new run folder first)",
    )
    p.add_argument(
        "--host",
        default=LOOPBACK,
        help="address to listen on; anything but loopback lets other machines "
        "in (the page answers only requests that name this address, or on "
        "0.0.0.0 this machine's names, and takes steps only from its own page)",
    )
    p.add_argument(
        "--port", type=int, default=8000, help="port to listen on (0: any free one)"
    )
    p.add_argument(
        "--no-browser", action="store_true", help="do not open the page in a browser"
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Load or train a model and serve the page; the body of ``main``."""
    for module, package in (("starlette", "Starlette"), ("uvicorn", "uvicorn")):
        require(module, package, "explorer", "the explorer")
    require("PIL", "Pillow", "pictures", "the explorer")
    from PIL import Image

    from backprop.app.explorer.routes import create_app  # imports Starlette

    # this process refuses images over MAX_PIXELS itself, before Pillow's own
    # limit; its warning for images near that limit would only be noise
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

    sock = bind(args.host, args.port)  # first, so a busy port fails at once
    names = host_names(args.host, sock)
    if not is_loopback(bound_address(sock)):
        print(
            f"warning: listening on {bound_address(sock)}, not on loopback: anyone "
            "who can reach this machine can use the explorer, by the names "
            f"{', '.join(names)} (other names are refused)",
            file=sys.stderr,
        )
    source = args.model
    if source is None:
        print(
            f"no model given: training the paper's model for {FIRST_RUN_EPOCHS} "
            "epochs first"
        )
        source = train_first_run()
        print(f"trained into {source} (next time: python -m backprop.explore {source})")
    session = Session.from_run(source)
    sizes = "-".join(map(str, session.loaded.sizes))
    name = f"CNN {session.conv['layers']}" if session.conv else f"{sizes} model"
    print(f"explorer for the {name} of {source} at {url_of(sock)}", flush=True)
    print("press Ctrl-C to stop", flush=True)
    port = sock.getsockname()[1]
    app = create_app(session, names=names, port=port)
    serve(app, sock, open_browser=not args.no_browser)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(parser, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
