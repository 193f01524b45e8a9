"""The benchmark, kept apart from the library: ``python -m evostyle.bench`` (see :mod:`evostyle.bench.bench`)."""
