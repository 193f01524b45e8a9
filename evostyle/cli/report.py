"""``python -m evostyle.report RUN_DIR``: (re)build a run's report."""

from __future__ import annotations

import argparse
from pathlib import Path

from evostyle.cli.common import plain
from evostyle.errors import EvostyleError, cli_errors
from evostyle.progress import setup_logging
from evostyle.report.html import write_report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evostyle.report", description=plain(__doc__))
    ap.add_argument("run_dir", help="a run directory written by python -m evostyle.search")
    ap.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    args = ap.parse_args(argv)
    setup_logging(-1 if args.quiet else 0)
    with cli_errors(args.debug, "evostyle.report"):
        from evostyle.io.rundir import MARKER, RunLock
        from evostyle.io.runlog import RunLog
        run = Path(args.run_dir)
        if not (run / "config.json").is_file():
            raise EvostyleError(f"{run} is not a run directory (no config.json)")
        status = RunLog.status(run) if (run / RunLog.STATE).exists() else None  # before taking the lock
        if (run / MARKER).exists():
            with RunLock(run, "report"):
                print(write_report(run, status=status))
        else:  # a run from before the marker existed: report on it without writing a lock into it
            print(write_report(run, status=status))
    return 0
