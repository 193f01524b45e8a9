"""Reading and showing runs: pandas tables of a run (:func:`load_run`), its plots, labelled image grids
and the self-contained HTML report. ``python -m evostyle.report RUN_DIR`` rebuilds a report."""

from evostyle.report.analysis import load_run, load_runs
from evostyle.report.figures import save_grid
from evostyle.report.html import markdown_table, write_report

__all__ = ["load_run", "load_runs", "write_report", "markdown_table", "save_grid"]
