"""User-facing errors.

Every problem caused by input (a bad file, bad bounds, an unknown name) is raised as
:class:`EvostyleError`. The command-line entry points catch it, print its one-line message to
stderr and exit with status 2; tracebacks are shown only with ``--debug``.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterable

EXIT_USAGE = 2
"""Exit status for bad input (same as argparse's)."""

EXIT_RESOURCE = 1
"""Exit status when the machine ran out of something (disk space, memory) rather than the input being
wrong."""


class EvostyleError(ValueError):
    """A problem with the user's input, with a one-line message that names the fix. A ValueError, as
    scipy's and numpy's errors for bad arguments are."""

    exit_code = EXIT_USAGE


class ResourceError(EvostyleError):
    """Out of disk space or memory: one line naming what ran out and how to go on."""

    exit_code = EXIT_RESOURCE


_ON_COMMAND_LINE = contextvars.ContextVar("evostyle_on_command_line", default=False)
"""True inside :func:`cli_errors` (a command line is running): messages then name ``--flags``."""


_SAME = object()


def flag(name: str, value: object = None, python: object = _SAME) -> str:
    """How the user who will read a message spells setting or argument ``name`` (``value`` its value,
    if the message gives one): ``--name-with-dashes [VALUE]`` from a command line, ``name=VALUE`` from
    Python (``name=...`` without a value), so that a message never tells a Python caller to pass a
    flag. A ``True`` value is a bare switch on the command line (``--overwrite``); ``python`` is the
    value in Python where it differs (``--resume RUN`` is ``resume=True``)."""
    if _ON_COMMAND_LINE.get():
        dashed = "--" + name.replace("_", "-")
        return dashed if value is None or value is True else f"{dashed} {value}"
    value = value if python is _SAME else python
    return f"{name}=..." if value is None else f"{name}={value!r}"


def resume_hint(path: object) -> str:
    """How to continue the run in ``path``, spelled for the reader (see :func:`flag`)."""
    if _ON_COMMAND_LINE.get():
        return f"python -m evostyle.search --resume {path}"
    return f"run_search(config, {str(path)!r}, resume=True)"


def report_hint(path: object) -> str:
    """How to rebuild the report of the run in ``path``, spelled for the reader (see :func:`flag`)."""
    if _ON_COMMAND_LINE.get():
        return f"python -m evostyle.report {path}"
    return f"evostyle.report.write_report({str(path)!r})"


def is_disk_full(exc: BaseException) -> bool:
    """True for an OSError that says the disk (or the user's quota) is full."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def unknown(kind: str, name: object, valid: Iterable) -> EvostyleError:
    """The standard "unknown <kind> 'name'; valid: a, b, c" error (choices in the given order)."""
    return EvostyleError(f"unknown {kind} {name!r}; valid: {', '.join(map(str, valid))}")


def describe(exc: BaseException, width: int = 80) -> str:
    """``Type: first line of the message`` (cut to ``width`` characters), for one-line notes."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:width]}" if lines else type(exc).__name__


@contextlib.contextmanager
def cli_errors(debug: bool = False, prog: str = "evostyle") -> Iterator[None]:
    """Turn :class:`EvostyleError` into ``prog: error: message`` and ``SystemExit`` with its exit code
    (2 for bad input, 1 for a :class:`ResourceError`); a full disk anywhere reads the same way. Inside
    it, messages name command-line flags (:func:`flag`)."""
    token = _ON_COMMAND_LINE.set(True)
    try:
        yield
    except EvostyleError as exc:
        if debug:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except OSError as exc:
        if debug or not is_disk_full(exc):
            raise
        print(f"{prog}: error: no space left on device while writing {exc.filename or 'a file'}; free some space "
              "and run it again", file=sys.stderr)
        raise SystemExit(EXIT_RESOURCE) from None
    finally:
        _ON_COMMAND_LINE.reset(token)
