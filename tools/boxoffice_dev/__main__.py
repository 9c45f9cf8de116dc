"""python3 -m boxoffice_dev: the local stack's command line (cli.py)."""

import sys

from .cli import main

sys.exit(main())
