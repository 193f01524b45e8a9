"""``evostyle <command> [...]``: one entry point for every command line (``python -m evostyle`` too).

Each subcommand hands its arguments to the command's own parser, so ``evostyle search --help`` is
``python -m evostyle.search --help``.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from evostyle.cli.common import plain
from evostyle.errors import STARTING_INTERRUPTED

COMMANDS = {"search": ("evostyle.cli.search", "search the parameters of style transfer with DE"),
            "transfer": ("evostyle.cli.transfer", "one batched style transfer"),
            "report": ("evostyle.cli.report", "(re)build a run's report"),
            "bench": ("evostyle.bench.cli", "throughput, search race, quality and profile"),
            "weights": ("evostyle.cli.weights", "convert a VGG export (ONNX, Keras HDF5); show what weights load")}


def main(argv: list[str] | None = None) -> int:
    from evostyle import __version__
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="evostyle", description=plain(__doc__))
    ap.add_argument("--version", action="version", version=f"evostyle {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, text) in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    if not argv:  # a command is needed: the help, on stderr, and the status of a usage error
        ap.print_help(sys.stderr)
        return 2
    if argv[0] not in COMMANDS:
        ap.parse_args(argv)
        return 2
    try:
        module = importlib.import_module(COMMANDS[argv[0]][0])
    except KeyboardInterrupt:  # a Ctrl-C while torch loads, before the command's own handling is in place
        print(f"evostyle {argv[0]}: {STARTING_INTERRUPTED}", file=sys.stderr)
        return 128 + signal.SIGINT
    return int(module.main(argv[1:]) or 0)
