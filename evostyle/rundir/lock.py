"""The run directory's lock: one process at a time runs, resumes or reports on a run.

``.evostyle-lock`` holds an exclusive OS file lock (``fcntl.flock``) for as long as its process lives,
so a killed run leaves no stale lock; the file records the holder's PID and what it is doing, for the
message a second process gets. A clean release removes the file (nothing of the lock stays in a
finished run); it is unlinked while still locked, and a process that locked a file the path no longer
names (unlinked by the holder it waited behind) lets go and tries again, so two processes never hold
the lock on two files.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from pathlib import Path

from evostyle.errors import EvostyleError, flag
from evostyle.rundir.files import LOCK

try:  # POSIX; elsewhere the lock is a no-op
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


class RunLock:
    """The run directory's exclusive lock; a context manager. ``what`` says in the lock file what the
    holder is doing (search, resume, report), for the message another process gets."""

    def __init__(self, path: Path, what: str):
        self.path, self.what, self._file = Path(path), what, None

    def acquire(self) -> RunLock:
        lock = self.path / LOCK
        for _ in range(ATTEMPTS):
            try:
                f = open(lock, "a+", encoding="utf-8")
            except OSError as exc:
                raise EvostyleError(f"cannot open {lock} ({exc.strerror or exc}); choose a writable "
                                    f"{flag('out')}") from None
            if fcntl is None:
                break
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                holder = f.read().strip().splitlines()
                f.close()
                who = holder[0] if holder else "another process"
                raise EvostyleError(f"run directory {self.path} is in use by {who}; wait for it to finish, "
                                    "or stop that process first") from None
            if _names(lock, f):
                break
            f.close()  # the file was unlinked by its last holder after we opened it: take the new one
        else:  # pragma: no cover - the path changed under every attempt
            raise EvostyleError(f"could not take the lock of {self.path}: its lock file keeps changing; try again")
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} ({self.what}, since "
                f"{_dt.datetime.now().astimezone().isoformat(timespec='seconds')})\n")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        """Remove the lock file while still holding it, then let go (closing releases the flock)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                if _names(self.path / LOCK, self._file):
                    (self.path / LOCK).unlink()
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def __enter__(self) -> RunLock:
        return self.acquire() if self._file is None else self

    def __exit__(self, *exc) -> None:
        self.release()


ATTEMPTS = 5
"""Tries at taking the lock when its file is replaced between our open and our flock."""


def _names(lock: Path, f) -> bool:
    """Whether the path ``lock`` still names the open file ``f`` (not unlinked, not replaced)."""
    try:
        return os.stat(lock).st_ino == os.fstat(f.fileno()).st_ino
    except OSError:
        return False


def is_locked(path: Path) -> bool:
    """True if a live process holds the run's lock (without taking it)."""
    lock = Path(path) / LOCK
    if fcntl is None:
        return False
    try:
        f = open(lock, encoding="utf-8")  # reading: a lock released meanwhile is not made again
    except FileNotFoundError:
        return False
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    return False
