"""``python -m backprop.gradcheck``: the command ``backprop.app.commands.gradcheck``."""

import sys

from backprop.app.commands.gradcheck import main

sys.exit(main())
