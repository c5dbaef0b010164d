"""Entry point: ``python -m hnerv_lib.action train|infer ...`` (the tubelet study's CLI, studies/tubelets/cli.py)."""

import sys

from hnerv_lib.studies.tubelets.cli import main

if __name__ == "__main__":
    sys.exit(main())
