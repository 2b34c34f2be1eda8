"""``python -m backprop NAME``: the same commands as ``backprop NAME``."""

import sys

from backprop.app.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m backprop"))
