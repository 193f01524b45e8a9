"""What a person waiting on a long step sees: progress bars and named phases, and evostyle's log.

Messages go through the ``logging`` logger ``evostyle`` (a library user configures it as they like;
:func:`setup_logging` is what the command lines do: one readable line per message on stderr, ``-v``
for debug detail, ``-q`` for warnings only). Bars are tqdm's, shown only on a terminal (``disable``
None) and never when quiet; a message logged while a bar is drawn goes above it, not through it.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable
from typing import Any

log = logging.getLogger("evostyle")


class _TqdmHandler(logging.StreamHandler):
    """Writes records with ``tqdm.write`` so that they do not break a bar on the terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm.auto import tqdm
            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {msg}"
        return msg


def setup_logging(verbosity: int = 0) -> None:
    """The command lines' logging: evostyle's messages on stderr, one line each (``warning: ...``);
    ``verbosity`` -1 (``-q``): warnings only; 0: progress phases; 1 (``-v``): debug detail. Python
    warnings (a library's deprecation notice, say) become one line too, without file and line."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    log.handlers = [h for h in log.handlers if not isinstance(h, _TqdmHandler)]
    handler = _TqdmHandler(sys.stderr)
    handler.setFormatter(_Format())
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False

    def show(message, category, filename, lineno, file=None, line=None):
        log.warning("%s", message)
    warnings.showwarning = show


def bar(total: int, desc: str, quiet: bool = False, leave: bool = True, unit: str = "it") -> Any:
    """A tqdm bar on stderr (drawn only on a terminal, never when ``quiet``)."""
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr,
                disable=True if quiet else None, dynamic_ncols=True)


def step_counter(desc: str, quiet: bool = False) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """(``progress(step, steps)`` for :func:`~evostyle.transfer.run_transfer`, ``close()``): a bar over a
    transfer's steps that restarts for every chunk of rows. ``progress.phase(name)`` names what follows
    the steps (the evaluator's ``scoring``) on the bar, so the wait after the last step is named too."""
    state: dict = {"bar": None}

    def progress(step: int, steps: int) -> None:
        b = state["bar"]
        if b is None or b.total != steps or step < b.n:
            if b is not None:
                b.close()
            b = state["bar"] = bar(steps, desc, quiet, leave=False, unit="step")
        b.update(step - b.n)

    def phase(name: str) -> None:
        if state["bar"] is not None:
            state["bar"].set_description_str(f"{desc} done, {name}")

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].close()
            state["bar"] = None
    progress.phase = phase
    return progress, close
