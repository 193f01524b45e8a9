"""User-facing errors.

Every problem caused by input (a bad file, bad bounds, an unknown name) is raised as
:class:`EvostyleError`. The command-line entry points catch it, print its one-line message to
stderr and exit with status 2; tracebacks are shown only with ``--debug``.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import signal
import sys
import threading
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


def dashed(name: str) -> str:
    """A setting's command-line flag: ``image_init`` -> ``--image-init``."""
    return "--" + name.replace("_", "-")


def flag(name: str, value: object = None, python: object = _SAME) -> str:
    """How the user who will read a message spells setting or argument ``name`` (``value`` its value,
    if the message gives one): ``--name-with-dashes [VALUE]`` from a command line, ``name=VALUE`` from
    Python (``name=...`` without a value), so that a message never tells a Python caller to pass a
    flag. A ``True`` value is a bare switch on the command line (``--overwrite``); ``python`` is the
    value in Python where it differs (``--resume RUN`` is ``resume=True``)."""
    if _ON_COMMAND_LINE.get():
        return dashed(name) if value is None or value is True else f"{dashed(name)} {value}"
    value = value if python is _SAME else python
    return f"{name}=..." if value is None else f"{name}={value!r}"


def resume_hint(path: object) -> str:
    """How to continue the run in ``path``, spelled for the reader (see :func:`flag`)."""
    if _ON_COMMAND_LINE.get():
        return f"python -m evostyle.search --resume {path}"
    return f"evostyle.search.resume_search({str(path)!r})"


def report_hint(path: object) -> str:
    """How to rebuild the report of the run in ``path``, spelled for the reader (see :func:`flag`)."""
    if _ON_COMMAND_LINE.get():
        return f"python -m evostyle.report {path}"
    return f"evostyle.report.write_report({str(path)!r})"


class Stopped(KeyboardInterrupt):
    """A signal (SIGINT, SIGTERM, SIGHUP) stopped a command outside a search's generation loop, which
    has its own handling (:mod:`evostyle.search.signals`); ``then`` says what is saved and how to go on.
    A KeyboardInterrupt, so that it unwinds as Ctrl-C does."""

    def __init__(self, signum: int = signal.SIGINT, then: str = ""):
        super().__init__(then)
        self.signum, self.then = int(signum), then

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


STOP_SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGTERM", "SIGHUP")) if s is not None)
"""What :func:`cli_errors` turns into :class:`Stopped` for the whole command (SIGINT already raises
KeyboardInterrupt)."""


def _raise_stopped(signum, frame):
    raise Stopped(signum)


OOM_MESSAGES = ("out of memory", "can't allocate memory")
"""How an allocator says it ran out: CUDA's ("CUDA out of memory") and the CPU's ("DefaultCPUAllocator:
can't allocate memory: you tried to allocate N bytes")."""


def is_out_of_memory(exc: BaseException) -> bool:
    """True if ``exc`` is an out-of-memory error on any device: Python's MemoryError, or a RuntimeError
    (CUDA's OutOfMemoryError is one) whose message is an allocator's (:data:`OOM_MESSAGES`)."""
    if isinstance(exc, MemoryError):
        return True
    message = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(m in message for m in OOM_MESSAGES)


def _stdout_is_closed() -> bool:
    """Whether the reader of stdout went away (``| head`` ended): the pipe's write end then polls as an
    error. (A broken pipe elsewhere, a socket, is not stdout's.)"""
    try:
        import select
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or stdout is not a file
        return False


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
def cli_errors(debug: bool = False, prog: str = "evostyle", memory_fix: str = "free some memory") -> Iterator[None]:
    """The whole command's error and signal handling, in one place for every command line: each ends
    in one line on stderr and an exit status, never a traceback (``debug`` re-raises instead).

    * :class:`EvostyleError`: ``prog: error: message``, status 2 (1 for a :class:`ResourceError`);
    * a signal anywhere (Ctrl-C; SIGTERM and SIGHUP, handled here for the whole command, the search
      loop installing its own): ``prog: interrupted (SIGNAME)`` and what was saved, status 128 + signal;
    * stdout closed by its reader (``| head``): nothing more is printed, status 0, as the work is saved;
    * a full disk, any other OSError (EIO, a vanished mount) and out of memory on any device: one line
      naming the file or the allocation and the way on (``memory_fix``: the command's own), status 1.

    Inside it, messages name command-line flags (:func:`flag`)."""
    token = _ON_COMMAND_LINE.set(True)
    sys.excepthook = getattr(sys.excepthook, "replaces", sys.excepthook)  # start-up is over; --debug shows all
    old = {}
    if threading.current_thread() is threading.main_thread():
        old = {s: signal.signal(s, _raise_stopped) for s in STOP_SIGNALS}
    try:
        yield
    except EvostyleError as exc:
        if debug:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt as exc:
        if debug:
            raise
        stopped = exc if isinstance(exc, Stopped) else Stopped(signal.SIGINT)
        print(f"{prog}: interrupted ({stopped.name})" + (f"; {stopped.then}" if stopped.then else ""),
              file=sys.stderr)
        raise SystemExit(128 + stopped.signum) from None
    except OSError as exc:
        if debug:
            raise
        if isinstance(exc, BrokenPipeError) and _stdout_is_closed():
            # the reader left; point stdout at nothing so that the interpreter's last flush is quiet
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(0) from None
        where = exc.filename or "a file"
        if is_disk_full(exc):
            print(f"{prog}: error: no space left on device while writing {where}; free some space and run it "
                  "again", file=sys.stderr)
        else:
            code = errno.errorcode.get(exc.errno, "") if exc.errno else ""
            print(f"{prog}: error: {exc.strerror or exc}{f' ({code})' if code else ''} on {where}; check the disk "
                  "or the path and run it again (with --debug for the traceback)", file=sys.stderr)
        raise SystemExit(EXIT_RESOURCE) from None
    except (MemoryError, RuntimeError) as exc:
        if debug or not is_out_of_memory(exc):
            raise
        first = (str(exc).strip().splitlines() or ["MemoryError"])[0][:160]
        print(f"{prog}: error: out of memory ({first}); {memory_fix}, and run it again", file=sys.stderr)
        raise SystemExit(EXIT_RESOURCE) from None
    finally:
        for s, handler in old.items():
            if handler is not None:  # None: a handler installed from C, which Python cannot put back
                signal.signal(s, handler)
        _ON_COMMAND_LINE.reset(token)



STARTING_INTERRUPTED = "interrupted (SIGINT) while starting; nothing was written"
"""What a Ctrl-C says before a command's own handling (:func:`cli_errors`) is in place."""


def quiet_interrupt_hook(hook=sys.excepthook):
    """``sys.excepthook`` for a command that is starting: a Ctrl-C before :func:`cli_errors` is in place
    (torch takes seconds to import) prints one line instead of a traceback; the interpreter still ends
    with the SIGINT status. Anything else goes to ``hook``, which :func:`cli_errors` puts back."""
    def excepthook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            print(f"evostyle: {STARTING_INTERRUPTED}", file=sys.stderr)
            return
        hook(kind, value, tb)
    excepthook.replaces = hook
    return excepthook


def started_as_command() -> bool:
    """Whether this interpreter is starting ``python -m evostyle[.command]`` (not another program that
    imports evostyle, which keeps its own excepthook)."""
    argv = getattr(sys, "orig_argv", [])
    return sys.argv[:1] == ["-m"] and "-m" in argv and argv.index("-m") + 1 < len(argv) and (
        argv[argv.index("-m") + 1].split(".")[0] == "evostyle")
