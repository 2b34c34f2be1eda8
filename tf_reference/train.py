"""``python -m tf_reference.train``: see ``tf_reference.tape_training``."""

import sys

from tf_reference.tape_training import main

if __name__ == "__main__":
    sys.exit(main())
