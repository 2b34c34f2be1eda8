"""``python -m backprop.evaluate``: see ``backprop.commands.evaluate``."""

import sys

from backprop.commands.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
