"""``python -m hnerv_lib.report --profile NAME [--only 00 01 ...]`` (see report/runner.py)."""

import sys

from hnerv_lib.report.runner import main

sys.exit(main())
