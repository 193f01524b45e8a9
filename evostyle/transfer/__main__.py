"""``python -m evostyle.transfer``: one batched transfer from the command line."""

import sys

from evostyle.cli.transfer import main

sys.exit(main())
