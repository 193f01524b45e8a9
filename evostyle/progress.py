"""What a person waiting on a long step sees: progress bars and named phases, and evostyle's log.

Messages go through the ``logging`` logger ``evostyle`` (a library user configures it as they like;
:func:`setup_logging` is what the command lines do: one readable line per message on stderr, ``-v``
for debug detail, ``-q`` for warnings only). Bars are tqdm's, shown only on a terminal (``disable``
None) and never when quiet; a message logged while a bar is drawn goes above it, not through it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import warnings
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def library_output(library: str) -> Iterator[None]:
    """Keep what another library prints (torch hub's ``Downloading: ...`` on stdout, a start-up banner)
    off evostyle's stdout and stderr: each line it writes through Python's ``sys.stdout`` or
    ``sys.stderr`` while inside becomes a debug message of evostyle's log (shown with ``-v``), prefixed
    with ``library``. stdout stays the place for a command's results only."""
    caught = io.StringIO()
    with contextlib.redirect_stdout(caught), contextlib.redirect_stderr(caught):
        try:
            yield
        finally:
            for line in caught.getvalue().splitlines():
                if line.strip():
                    log.debug("%s: %s", library, line.rstrip())


def bar(total: int | None, desc: str, quiet: bool = False, leave: bool = True, unit: str = "it") -> Any:
    """A tqdm bar on stderr (drawn only on a terminal, never when ``quiet``); ``total`` None: a counter
    without an end, which names a wait."""
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr,
                disable=True if quiet else None, dynamic_ncols=True)


class Hooks:
    """The lists of callables a search calls as it goes, as EvoTorch's hook lists: append an observer
    to a list to add it (the command line's bars are such observers; nothing is patched in).

    * ``on_step(step, steps)``: after every inner transfer step of a chunk of rows;
    * ``on_phase(name)``: a named phase of work begins ("generation 3: transfer", "scoring the
      outputs (fidelity, diversity)", "generation 3: writing", "baseline: transfer");
    * ``on_generation(generation)``: after each generation is written, or replayed from the log on a
      resume (a :class:`~evostyle.rundir.result.Generation`, the first generation too). Observers
      only: a search is stopped by ``run_search``'s ``callback``, as scipy's.
    """

    def __init__(self):
        self.on_step: list[Callable[[int, int], None]] = []
        self.on_phase: list[Callable[[str], None]] = []
        self.on_generation: list[Callable[[Any], None]] = []

    def step(self, step: int, steps: int) -> None:
        for hook in self.on_step:
            hook(step, steps)

    def phase(self, name: str) -> None:
        for hook in self.on_phase:
            hook(name)

    def generation(self, generation: Any) -> None:
        for hook in self.on_generation:
            hook(generation)


class StepBar:
    """A terminal bar over the phases of a search: each phase opens a bar named after it, which
    counts a transfer's steps once they come (restarting for every chunk of rows) and otherwise
    just names the wait. Hook it in with :meth:`attach`; drawn only on a terminal, never when quiet."""

    def __init__(self, desc: str = "transfer", quiet: bool = False):
        self.desc, self.quiet, self.bar = desc, quiet, None

    def attach(self, hooks: Hooks) -> StepBar:
        hooks.on_step.append(self.step)
        hooks.on_phase.append(self.phase)
        return self

    def step(self, step: int, steps: int) -> None:
        b = self.bar
        if b is None or b.total != steps or step < b.n:
            self.close()
            b = self.bar = bar(steps, self.desc, self.quiet, leave=False, unit="step")
        b.update(step - b.n)

    def phase(self, name: str) -> None:
        self.close()
        self.desc = name
        self.bar = bar(None, name, self.quiet, leave=False, unit="step")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def step_counter(desc: str, quiet: bool = False) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """(``progress(step, steps)`` for :func:`~evostyle.transfer.run_transfer`, ``close()``): a
    :class:`StepBar` over one transfer's steps, for a caller without hooks."""
    b = StepBar(desc, quiet)
    return b.step, b.close
