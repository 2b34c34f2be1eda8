"""``python -m backprop.evaluate``: see ``backprop.app.commands.evaluate``."""

import sys

from backprop.app.commands.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
