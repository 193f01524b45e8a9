"""The run directory, in one place: its file names and schemas (:mod:`~evostyle.rundir.files`), the
marker and layout (:mod:`~evostyle.rundir.layout`), the lock (:mod:`~evostyle.rundir.lock`), the CSV
logs and state (:mod:`~evostyle.rundir.log`), config.json (:mod:`~evostyle.rundir.record`), the
object that makes, continues and finishes a run (:class:`~evostyle.rundir.rundir.RunDir`), and
reading it back (:func:`~evostyle.rundir.reader.load_run`,
:class:`~evostyle.rundir.result.SearchResult`).

>>> from evostyle.rundir import RunDir
>>> RunDir("results/my-run").result().best_params     # doctest: +SKIP
"""

from evostyle.rundir import files
from evostyle.rundir.result import Generation, SearchResult
from evostyle.rundir.rundir import RunDir


def __getattr__(name: str):
    if name in ("load_run", "load_runs"):  # pandas loads with them, not with the package
        from evostyle.rundir import reader
        return getattr(reader, name)
    raise AttributeError(f"module 'evostyle.rundir' has no attribute {name!r}")


__all__ = ["RunDir", "files", "load_run", "load_runs", "SearchResult", "Generation"]
