"""Stopping a run cleanly on Ctrl-C, SIGTERM and SIGHUP.

The first Ctrl-C (SIGINT) asks the search to stop after the current generation is written. SIGTERM and
SIGHUP (a scheduler's stop, a closed terminal), or a second Ctrl-C, stop at once: the generation under
way is dropped, which is clean because a generation's rows only reach the disk, all together, when it
ends. Inside :meth:`StopSignals.critical` (while a generation's files are being written) an immediate
stop waits for the block's end, so no file is left half-written. Either way the run ends with
:class:`Interrupted`, whose ``exit_code`` is 128 + the signal number (130, 143, 129).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterator

SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None)


class Interrupted(Exception):
    """The run stopped on a signal; ``signum`` says which."""

    def __init__(self, signum: int = signal.SIGINT):
        self.signum = int(signum)
        super().__init__(f"interrupted by {signal.Signals(self.signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


class WorkersLost(Interrupted):
    """Every worker of a distributed executor died and none could be started: the run stops as
    interrupted, its finished generations kept, and ``--resume`` continues it when workers are back."""

    def __init__(self, reason: str):
        Exception.__init__(self, reason)
        self.signum, self.reason = 0, reason

    @property
    def exit_code(self) -> int:
        return 75  # EX_TEMPFAIL: try again later

    @property
    def name(self) -> str:
        return self.reason


class StopSignals:
    """Context manager that installs the handlers (main thread only; elsewhere it does nothing) and
    restores the earlier ones on exit. ``stop_requested`` is the signal number of a pending
    stop-after-this-generation, or 0."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.stop_requested = 0
        self._depth = 0
        self._pending = 0
        self._old: dict = {}

    def _handle(self, signum, frame):
        if signum == signal.SIGINT and not self.stop_requested:
            self.stop_requested = signum
            if not self.quiet:
                print("\nstopping after this generation (Ctrl-C again to stop now)", file=sys.stderr)
            return
        if self._depth:
            self._pending = self._pending or signum
            return
        raise Interrupted(signum)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old = {}

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """A block (writing a generation's files) that an immediate stop does not cut short."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self._pending:
            signum, self._pending = self._pending, 0
            raise Interrupted(signum)

    def check(self) -> None:
        """Raise :class:`Interrupted` if a stop after this generation was asked for."""
        if self.stop_requested:
            raise Interrupted(self.stop_requested)
