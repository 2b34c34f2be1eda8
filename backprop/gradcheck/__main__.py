"""``python -m backprop.gradcheck``: the table of ``backprop.commands.gradcheck``."""

import sys

from backprop.commands.gradcheck import main

sys.exit(main())
