"""``python -m backprop.train``: see ``backprop.app.commands.train``."""

import sys

from backprop.app.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
