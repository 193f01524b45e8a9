"""A run's records: environment, tidy CSV logs and resume state (the directory itself, its marker,
lock and layout: :mod:`evostyle.rundir`).

A search's run directory holds::

    config.json       resolved config, versions, device, weights used, seed (written first)
    candidates.csv    one row per evaluated candidate (appended and fsync'ed once per generation)
    generations.csv   one row per generation: best / mean / std (ddof 1) fitness, nfev, hypervolume,
                      seconds
    state.json        {"status": "running"|"finished"|"interrupted"|"failed", "generations_done": n,
                      "error": "Type: message" (failed only), "signal": "SIGTERM" (interrupted only)}
    best/             the best candidate's outputs
    images/           every candidate's outputs (or each generation's best and the front's)

``state.json`` is written atomically after a generation's rows are on disk, so after a crash the rows
of generations >= ``generations_done`` are the only ones that may be partial; :meth:`RunLog.resume`
drops them. A run directory "looks complete" only when ``state.json`` says ``finished``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import math
import os
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from evostyle.errors import EvostyleError
from evostyle.io.atomic import atomic_write_json, atomic_write_text, read_json

if TYPE_CHECKING:  # annotations only
    import torch

SECONDS_COLUMN = "gen_seconds_per_candidate"
"""candidates.csv's time column: the generation's evaluation seconds divided by its candidates. All
of a population's outputs are optimised in one batched transfer, so no candidate has a time of its
own; the name says what the number is."""
LEGACY_COLUMNS = {"seconds": SECONDS_COLUMN}
"""Candidate columns renamed since runs were first written (old name -> new): runs written before
still resume and load."""


def environment(device: torch.device | None = None) -> dict:
    """Versions, platform, device and date, for run records."""
    from importlib import metadata

    import numpy
    import scipy
    import torch

    from evostyle import __version__
    try:
        tv = metadata.version("torchvision")  # without importing it (slow)
    except metadata.PackageNotFoundError:  # pragma: no cover
        tv = "not installed"
    env = {"evostyle": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
           "torch": torch.__version__, "torchvision": tv, "numpy": numpy.__version__,
           "scipy": scipy.__version__, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if device is not None:
        from evostyle.network.device import device_info
        env.update(device_info(device))
    return env


def fmt(v: object) -> str:
    """CSV cell text; floats in repr form so they read back bit-exactly."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    return str(v)


class RunLog:
    """Append-only CSV logs plus atomic state for one run directory."""

    CANDIDATES = "candidates.csv"
    GENERATIONS = "generations.csv"
    STATE = "state.json"
    CONFIG = "config.json"

    def __init__(self, path: Path, cand_columns: list[str], gen_columns: list[str]):
        self.path = Path(path)
        self.cand_columns, self.gen_columns = list(cand_columns), list(gen_columns)
        self.state: dict = {"status": "running", "generations_done": 0}

    # -- creation -------------------------------------------------------------------------------------
    def create(self, config: dict) -> RunLog:
        atomic_write_json(self.path / self.CONFIG, config)
        atomic_write_text(self.path / self.CANDIDATES, self._line(self.cand_columns))
        atomic_write_text(self.path / self.GENERATIONS, self._line(self.gen_columns))
        self.write_state()
        return self

    @staticmethod
    def _line(values) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([fmt(v) for v in values])
        return buf.getvalue()

    def write_state(self, **extra: object) -> None:
        self.state.update(extra)
        atomic_write_json(self.path / self.STATE, self.state)

    # -- appending ------------------------------------------------------------------------------------
    def append_generation(self, cand_rows: list[dict], gen_row: dict) -> None:
        """Append one generation's rows, fsync, then advance ``generations_done`` atomically. If a write
        fails (a full disk), both CSV files are cut back to their size before, so no partial row stays."""
        files = ((self.CANDIDATES, self.cand_columns, cand_rows), (self.GENERATIONS, self.gen_columns, [gen_row]))
        sizes = {name: (self.path / name).stat().st_size for name, _, _ in files}
        try:
            for name, cols, rows in files:
                with open(self.path / name, "a", encoding="utf-8", newline="") as f:
                    f.write("".join(self._line([r.get(LEGACY_COLUMNS.get(c, c), "") for c in cols]) for r in rows))
                    f.flush()
                    os.fsync(f.fileno())
        except BaseException:
            for name, size in sizes.items():
                try:
                    os.truncate(self.path / name, size)
                except OSError:
                    pass
            raise
        self.state["generations_done"] = int(gen_row["generation"]) + 1
        self.write_state()

    # -- resuming -------------------------------------------------------------------------------------
    @classmethod
    def read_rows(cls, path: Path) -> tuple[list[str], list[dict]]:
        try:
            with open(path, encoding="utf-8", newline="") as f:
                rows = list(csv.reader(f))
        except FileNotFoundError:
            raise EvostyleError(f"resume state is incomplete: {path} is missing; start a new run") from None
        if not rows:
            raise EvostyleError(f"{path} is empty; start a new run")
        header = rows[0]
        return header, [dict(zip(header, r)) for r in rows[1:] if len(r) == len(header)]

    @classmethod
    def check_state(cls, path: Path) -> dict:
        """Read and validate ``state.json`` of a run directory (missing or corrupt is an error)."""
        state = read_json(Path(path) / cls.STATE, "resume state")
        if not isinstance(state, dict) or not isinstance(state.get("generations_done"), int):
            raise EvostyleError(f"resume state {Path(path) / cls.STATE} is corrupt; start a new run")
        return state

    @classmethod
    def status(cls, path: Path) -> str:
        """The run's status as a person should read it: state.json's, except that ``running`` with no
        process holding the run's lock (a killed run) reads ``interrupted (the process that ran it is
        gone)``."""
        from evostyle.io.rundir import is_locked
        status = str(cls.check_state(path).get("status", "unknown"))
        if status == "running" and not is_locked(path):
            return "interrupted (the process that ran it is gone; resume it with --resume)"
        return status

    def resume(self) -> tuple[list[dict], list[dict]]:
        """Load state, drop rows of unfinished generations, return (candidate rows, generation rows)."""
        self.state = state = self.check_state(self.path)
        done = state["generations_done"]
        kept = []
        for name, cols in ((self.CANDIDATES, self.cand_columns), (self.GENERATIONS, self.gen_columns)):
            header, rows = self.read_rows(self.path / name)
            if header != cols and [LEGACY_COLUMNS.get(c, c) for c in header] == cols:
                cols = header  # a run written before a column was renamed keeps its own header
                if name == self.CANDIDATES:
                    self.cand_columns = header
            if header != cols:
                raise EvostyleError(f"{self.path / name} has other columns than this config makes; "
                                    "resume with the run's own config (or none)")
            try:
                rows = [r for r in rows if int(r["generation"]) < done]
            except (KeyError, ValueError):
                raise EvostyleError(f"{self.path / name} is corrupt; start a new run") from None
            atomic_write_text(self.path / name, self._line(cols) + "".join(
                self._line([r[c] for c in cols]) for r in rows))
            kept.append(rows)
        gens = {int(r["generation"]) for r in kept[1]}
        if gens != set(range(done)):
            raise EvostyleError(f"{self.path} is missing generations {sorted(set(range(done)) - gens)[:5]}; "
                                "start a new run")
        self.state["status"] = "running"
        self.state.pop("error", None)  # of an earlier failed attempt
        self.write_state()
        return kept[0], kept[1]
