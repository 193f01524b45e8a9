"""User-facing errors.

Every problem caused by input (a bad file, bad bounds, an unknown name) is raised as
:class:`EvostyleError`. The command-line entry points catch it, print its one-line message to
stderr and exit with status 2; tracebacks are shown only with ``--debug``.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Iterator

EXIT_USAGE = 2
"""Exit status for bad input (same as argparse's)."""

EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT)."""


class EvostyleError(Exception):
    """A problem with the user's input, with a one-line message that names the fix."""


def unknown(kind: str, name, valid) -> EvostyleError:
    """The standard "unknown <kind> 'name'; valid: a, b, c" error (choices in the given order)."""
    return EvostyleError(f"unknown {kind} {name!r}; valid: {', '.join(map(str, valid))}")


def describe(exc: BaseException, width: int = 80) -> str:
    """``Type: first line of the message`` (cut to ``width`` characters), for one-line notes."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:width]}" if lines else type(exc).__name__


@contextlib.contextmanager
def cli_errors(debug: bool = False, prog: str = "evostyle") -> Iterator[None]:
    """Turn :class:`EvostyleError` into ``prog: error: message`` and ``SystemExit(2)``."""
    try:
        yield
    except EvostyleError as exc:
        if debug:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


@contextlib.contextmanager
def warnings_to_stderr() -> Iterator[None]:
    """Show our UserWarnings (e.g. the fallback to random weights) as ``warning: ...`` lines on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if issubclass(w.category, UserWarning):
            print(f"warning: {w.message}", file=sys.stderr)
