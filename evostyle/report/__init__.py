"""Showing runs: its plots, labelled image grids and the self-contained HTML report (a run's tables in
pandas are :func:`evostyle.rundir.reader.load_run`'s, re-exported here). ``python -m evostyle.report
RUN_DIR`` rebuilds a report."""

from evostyle.report.figures import save_grid
from evostyle.report.html import markdown_table, write_report
from evostyle.rundir.reader import load_run, load_runs

__all__ = ["load_run", "load_runs", "write_report", "markdown_table", "save_grid"]
