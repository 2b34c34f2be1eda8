"""``python -m backprop.export``: see ``backprop.app.commands.export``."""

import sys

from backprop.app.commands.export import main

if __name__ == "__main__":
    sys.exit(main())
