"""``python -m hnerv_lib.train ...`` (see train/cli.py)."""

import sys

from hnerv_lib.train.cli import main

sys.exit(main())
