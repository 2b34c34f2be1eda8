"""``python -m backprop.explore``: see ``backprop.commands.explore``."""

import sys

from backprop.commands.explore import main

if __name__ == "__main__":
    sys.exit(main())
