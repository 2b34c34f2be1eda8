"""``python -m backprop.train``: see ``backprop.commands.train``."""

import sys

from backprop.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
