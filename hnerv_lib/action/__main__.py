"""``python -m hnerv_lib.action train|infer ...`` (see hnerv_lib/action/cli.py)."""

import sys

from .cli import main

sys.exit(main())
