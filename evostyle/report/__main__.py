"""``python -m evostyle.report RUN_DIR``: (re)build a run's report."""

import sys

from evostyle.cli.report import main

sys.exit(main())
