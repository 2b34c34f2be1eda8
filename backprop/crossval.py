"""``python -m backprop.crossval``: see ``backprop.app.commands.crossval``."""

import sys

from backprop.app.commands.crossval import main

if __name__ == "__main__":
    sys.exit(main())
