"""``python -m backprop.predict``: see ``backprop.commands.predict``."""

import sys

from backprop.commands.predict import main

if __name__ == "__main__":
    sys.exit(main())
