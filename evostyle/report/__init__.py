"""Showing runs: its plots as matplotlib figures, labelled image grids and the self-contained HTML report
(a run's tables in pandas are :func:`evostyle.rundir.reader.load_run`'s, re-exported here).
``python -m evostyle.report RUN_DIR`` rebuilds a report."""

from evostyle.report.figures import save_grid
from evostyle.report.html import markdown_table, verdict, write_report
from evostyle.report.plots import RunView, plot_convergence, plot_front, plot_parameters, plot_slices
from evostyle.rundir.reader import load_run, load_runs

__all__ = ["load_run", "load_runs", "write_report", "verdict", "markdown_table", "save_grid", "RunView",
           "plot_front", "plot_convergence", "plot_parameters", "plot_slices"]
