"""``python -m evostyle``: the ``evostyle`` command (see :mod:`evostyle.cli.main`)."""

import sys

from evostyle.cli.main import main

sys.exit(main())
