"""``python -m evostyle.bench``: throughput table, search race, quality check and kernel profile."""

import sys

from evostyle.bench.cli import main

sys.exit(main())
