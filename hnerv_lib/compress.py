"""Entry point: ``python -m hnerv_lib.compress decode|info ...`` (the codec's CLI, codec/cli.py)."""

import sys

from hnerv_lib.codec.cli import main

if __name__ == "__main__":
    sys.exit(main())
