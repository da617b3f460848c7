"""``python -m protocols``: the ``usapp`` command line (protocols/system/cli.py), for when the
``usapp`` script is not on the PATH."""

import sys

from protocols.system.cli import main

if __name__ == "__main__":
    sys.exit(main())
