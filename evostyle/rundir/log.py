"""A run's tidy logs: candidates.csv and generations.csv, appended once per generation, and the
state.json that counts the generations done (names and columns: :mod:`evostyle.rundir.files`).

``state.json`` is written atomically after a generation's rows are on disk, so after a crash the rows
of generations >= ``generations_done`` are the only ones that may be partial; :meth:`RunLog.resume`
drops them.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from evostyle.errors import EvostyleError
from evostyle.io.atomic import atomic_write_json, atomic_write_text, read_json
from evostyle.rundir.files import CANDIDATES, GENERATION_COLUMNS, GENERATIONS, GONE, LEGACY_COLUMNS, STATE, STATUSES


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
    """Append-only CSV logs plus atomic state for one run directory; ``cand_columns`` are the
    candidate columns this run's config makes (the evaluator's), the generation columns are
    :data:`~evostyle.rundir.files.GENERATION_COLUMNS`."""

    def __init__(self, path: Path, cand_columns: list[str]):
        self.path = Path(path)
        self.cand_columns, self.gen_columns = list(cand_columns), list(GENERATION_COLUMNS)
        self.state: dict = {"status": "running", "generations_done": 0}

    # -- creation -------------------------------------------------------------------------------------
    def create(self) -> RunLog:
        """Write the empty logs and the state of a new run."""
        atomic_write_text(self.path / CANDIDATES, self._line(self.cand_columns))
        atomic_write_text(self.path / GENERATIONS, self._line(self.gen_columns))
        self.write_state()
        return self

    @staticmethod
    def _line(values) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([fmt(v) for v in values])
        return buf.getvalue()

    def write_state(self, **extra: object) -> None:
        """Update state.json (atomically); ``status`` must be one of :data:`~evostyle.rundir.files.STATUSES`."""
        status = extra.get("status", self.state.get("status"))
        if status not in STATUSES:  # a programming error, not the user's input
            raise ValueError(f"unknown run status {status!r}; valid: {', '.join(STATUSES)}")
        self.state.update(extra)
        atomic_write_json(self.path / STATE, self.state)

    # -- appending ------------------------------------------------------------------------------------
    def append_generation(self, cand_rows: list[dict], gen_row: dict) -> None:
        """Append one generation's rows, fsync, then advance ``generations_done`` atomically. If a write
        fails (a full disk), both CSV files are cut back to their size before, so no partial row stays.
        A row must have exactly the log's columns (a missing or unknown key is a programming error,
        raised before either CSV file is touched)."""
        files = ((CANDIDATES, self.cand_columns, cand_rows), (GENERATIONS, self.gen_columns, [gen_row]))
        for name, cols, rows in files:
            want = {LEGACY_COLUMNS.get(c, c) for c in cols}
            for r in rows:
                if set(r) != want:
                    raise ValueError(f"{name} row does not match its columns: missing {sorted(want - set(r))}, "
                                     f"unknown {sorted(set(r) - want)}")
        sizes = {name: (self.path / name).stat().st_size for name, _, _ in files}
        try:
            for name, cols, rows in files:
                with open(self.path / name, "a", encoding="utf-8", newline="") as f:
                    f.write("".join(self._line([r[LEGACY_COLUMNS.get(c, c)] for c in cols]) for r in rows))
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
        state = read_json(Path(path) / STATE, "resume state")
        if not isinstance(state, dict) or not isinstance(state.get("generations_done"), int):
            raise EvostyleError(f"resume state {Path(path) / STATE} is corrupt; start a new run")
        return state

    @classmethod
    def status(cls, path: Path) -> str:
        """The run's status as a person should read it: state.json's, except that ``running`` with no
        process holding the run's lock (a killed run) reads ``interrupted (the process that ran it is
        gone)``."""
        from evostyle.rundir.lock import is_locked
        status = str(cls.check_state(path).get("status", "unknown"))
        if status == "running" and not is_locked(path):
            return GONE
        return status

    def resume(self) -> tuple[list[dict], list[dict]]:
        """Load state, drop rows of unfinished generations, return (candidate rows, generation rows)."""
        self.state = state = self.check_state(self.path)
        done = state["generations_done"]
        kept = []
        for name, cols in ((CANDIDATES, self.cand_columns), (GENERATIONS, self.gen_columns)):
            header, rows = self.read_rows(self.path / name)
            if header != cols and [LEGACY_COLUMNS.get(c, c) for c in header] == cols:
                cols = header  # a run written before a column was renamed keeps its own header
                if name == CANDIDATES:
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
