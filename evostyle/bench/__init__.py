"""The benchmark, kept apart from the library: ``python -m evostyle.bench`` (:mod:`evostyle.bench.cli`).

:mod:`~evostyle.bench.measure` times, checks and profiles one batched transfer, :mod:`~evostyle.bench.race`
races a whole search against scipy's DE one candidate at a time, and :mod:`~evostyle.bench.tables` writes
the results as markdown.
"""
