"""evostyle: search the parameters of neural style transfer with differential evolution.

The pieces, in the order data flows through them: :mod:`evostyle.network` (VGG taps and weights),
:mod:`evostyle.style` (measures, rotation modes, targets), :mod:`evostyle.transfer` (the batched inner
optimiser), :mod:`evostyle.de` (torch-batched DE, GDE3, random search, scipy's DE),
:mod:`evostyle.search` (settings, space, scoring, evaluator, optimisers, running a search),
:mod:`evostyle.rundir` (the run directory: its files, writing and reading it back), :mod:`evostyle.io`
(images, atomic files) and :mod:`evostyle.report` (plots, the HTML report); :mod:`evostyle.cli` holds the
command lines. docs/architecture.md draws them. The names below are the everyday ones; they load their
module on first use.
"""

from __future__ import annotations

import importlib
import sys
from importlib import metadata as _metadata

from evostyle.errors import quiet_interrupt_hook, started_as_command
from evostyle.io.samples import resolve_image, sample_image

if started_as_command():  # python -m evostyle[.command] is loading: a Ctrl-C now ends in one line
    sys.excepthook = quiet_interrupt_hook()

try:
    __version__ = _metadata.version("evostyle")
except _metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout without installing
    __version__ = "0.2.0"

_LAZY = {"load_run": "evostyle.rundir.reader", "load_runs": "evostyle.rundir.reader", "RunDir": "evostyle.rundir",
         "run_search": "evostyle.search.run", "resume_search": "evostyle.search.run", "build": "evostyle.search.run",
         "make_config": "evostyle.search.config", "SearchConfig": "evostyle.search.config",
         "SearchResult": "evostyle.rundir.result",
         "write_report": "evostyle.report.html"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'evostyle' has no attribute {name!r}")


__all__ = ["__version__", "sample_image", "resolve_image", *_LAZY]
