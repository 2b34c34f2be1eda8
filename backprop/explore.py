"""``python -m backprop.explore``: see ``backprop.app.commands.explore``."""

import sys

from backprop.app.commands.explore import main

if __name__ == "__main__":
    sys.exit(main())
