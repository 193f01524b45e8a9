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
    ap.add_argument("--compare", nargs="+", metavar="RUN", default=[],
                    help="other runs (another optimiser, random search) to draw on this run's plots")
    ap.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    args = ap.parse_args(argv)
    setup_logging(-1 if args.quiet else 0)
    with cli_errors(args.debug, "evostyle.report"):
        from evostyle.rundir import RunDir, files
        from evostyle.rundir.layout import REPORT_FILES, RUN, check_ownership
        rd = RunDir(args.run_dir)
        for other in args.compare:  # checked before anything is written
            if not (Path(other) / files.CANDIDATES).is_file():
                raise EvostyleError(f"--compare {other}: not a run directory (no {files.CANDIDATES})")
        run = rd.path
        if not (run / files.CONFIG).is_file():
            raise EvostyleError(f"{run} is not a run directory (no {files.CONFIG})")
        status = rd.status() if (run / files.STATE).exists() else None  # before taking the lock
        if check_ownership(run, RUN, REPORT_FILES):
            with rd.lock("report"):
                print(write_report(run, status=status, compare=args.compare))
        else:  # a run from before the marker existed: no lock written into it, and no file replaced
            print(write_report(run, status=status, compare=args.compare))
    return 0
