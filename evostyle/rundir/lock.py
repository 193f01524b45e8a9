"""The run directory's lock: one process at a time runs, resumes or reports on a run.

``.evostyle-lock`` holds an exclusive OS file lock (``fcntl.flock``) for as long as its process lives,
so a killed run leaves no stale lock; the file records the holder's PID and what it is doing, for the
message a second process gets.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from pathlib import Path

from evostyle.errors import EvostyleError
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
        self._created = False

    def acquire(self) -> RunLock:
        lock = self.path / LOCK
        self._created = not lock.exists()
        try:
            f = open(lock, "a+", encoding="utf-8")
        except OSError as exc:
            raise EvostyleError(f"cannot open {lock} ({exc.strerror or exc}); choose a writable --out") from None
        if fcntl is not None:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                holder = f.read().strip().splitlines()
                f.close()
                who = holder[0] if holder else "another process"
                raise EvostyleError(f"run directory {self.path} is in use by {who}; wait for it to finish, "
                                    "or stop that process first") from None
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} ({self.what}, since "
                f"{_dt.datetime.now().astimezone().isoformat(timespec='seconds')})\n")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.truncate(0)
                self._file.close()  # closing the descriptor releases the flock
            self._file = None

    def discard_if_new(self) -> None:
        """Release, and remove the lock file if this lock made it (a refused folder keeps no trace)."""
        self.release()
        if self._created:
            with contextlib.suppress(OSError):
                (self.path / LOCK).unlink()

    def __enter__(self) -> RunLock:
        return self.acquire() if self._file is None else self

    def __exit__(self, *exc) -> None:
        self.release()


def is_locked(path: Path) -> bool:
    """True if a live process holds the run's lock (without taking it)."""
    lock = Path(path) / LOCK
    if fcntl is None or not lock.exists():
        return False
    with open(lock, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    return False
