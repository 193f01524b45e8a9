"""``python -m evostyle.search``: differential evolution over style-transfer parameters."""

import sys

from evostyle.cli.search import main

sys.exit(main())
