"""``python -m backprop.predict``: see ``backprop.app.commands.predict``."""

import sys

from backprop.app.commands.predict import main

if __name__ == "__main__":
    sys.exit(main())
