"""``python -m backprop.crossval``: see ``backprop.commands.crossval``."""

import sys

from backprop.commands.crossval import main

if __name__ == "__main__":
    sys.exit(main())
