"""The command lines: ``evostyle search | transfer | report | bench`` (and ``python -m evostyle``), each
also reachable as ``python -m evostyle.<name>``."""
