"""A run's tidy logs: candidates.csv and generations.csv, appended once per generation, and the
state.json that counts the generations done (names and columns: :mod:`evostyle.rundir.files`).

``state.json`` is written atomically after a generation's rows are on disk, so after a crash the rows
of generations >= ``generations_done`` are the only ones that may be partial; :meth:`RunLog.resume`
drops them.

state.json also vouches for the rows it counts: ``run_id`` is the marker's (a state copied from
another run is not believed) and ``rows`` keeps, per file and generation, the number of lines and a
digest of their bytes. A resume checks every logged generation against them, so a file cut short (by a
crash, a full disk, a copy) loses only the generations from the cut on, which are evaluated again,
while a file whose rows were changed (a spreadsheet's re-save, an edit, another run's CSV copied in) is
refused naming the file and line, never replayed as if it were this run's.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import os
from pathlib import Path

from evostyle.errors import EvostyleError, resume_hint
from evostyle.io.atomic import atomic_write_json, atomic_write_text, read_json
from evostyle.rundir.files import (
    CANDIDATES,
    GENERATION_COLUMNS,
    GENERATIONS,
    GONE,
    LEGACY_COLUMNS,
    STATE,
    STATUSES,
    SUMMARY,
)

logger = logging.getLogger("evostyle")

STOP_REASONS = {"interrupted": "signal", "failed": "error"}
"""The state.json key that says why a run stopped, by the status it explains: a state written with
another status drops it (a run resumed and finished no longer carries the signal that once stopped it)."""


def digest(text: str) -> str:
    """A short SHA-256 of a generation's lines as written (16 hex digits: a check, not a secret)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def header_names(header: str) -> list[str]:
    """The column names of a CSV log's header line (with or without its newline)."""
    return next(csv.reader([header.rstrip("\n")]))


def group_text(rows) -> str:
    """A generation's lines, as written: what state.json's digest is of."""
    return "".join(text for _, text, _ in rows)


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

    def __init__(self, path: Path, cand_columns: list[str], run_id: str | None = None):
        self.path = Path(path)
        self.cand_columns, self.gen_columns = list(cand_columns), list(GENERATION_COLUMNS)
        self.run_id = run_id
        """The marker's run id, which state.json repeats (None: not checked, as for a bare RunLog)."""
        self.state: dict = {"status": "running", "generations_done": 0, "run_id": run_id,
                            "rows": {CANDIDATES: [], GENERATIONS: []}}

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
        for stopped, reason in STOP_REASONS.items():
            if status != stopped:
                self.state.pop(reason, None)
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
        texts = {name: "".join(self._line([r[LEGACY_COLUMNS.get(c, c)] for c in cols]) for r in rows)
                 for name, cols, rows in files}
        try:
            for name, _, _ in files:
                with open(self.path / name, "a", encoding="utf-8", newline="") as f:
                    f.write(texts[name])
                    f.flush()
                    os.fsync(f.fileno())
        except BaseException:
            for name, size in sizes.items():
                try:
                    os.truncate(self.path / name, size)
                except OSError:
                    pass
            raise
        kept = self.state.get("rows")
        if isinstance(kept, dict):  # what the rows were, for a resume to check them against
            for name, _, rows in files:
                kept.setdefault(name, []).append([len(rows), digest(texts[name])])
        self.state["generations_done"] = int(gen_row["generation"]) + 1
        self.write_state()

    # -- resuming -------------------------------------------------------------------------------------
    @classmethod
    def read_lines(cls, path: Path) -> tuple[str, list[tuple[int, str, list[str]]], int | None]:
        """A CSV log as written: its header line and its rows as (line number, text with its newline,
        fields), and the number of a last line cut short (no newline: every append ends in one), or
        None. Lines are kept as text so that a resume can check them against state.json's digests."""
        try:
            text = (Path(path)).read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise EvostyleError(f"resume state is incomplete: {path} is missing; start a new run") from None
        except UnicodeDecodeError:
            raise EvostyleError(f"{path} is not a CSV evostyle wrote (not UTF-8 text); restore the run's own file "
                                "or start a new run") from None
        parts = text.split("\n")
        if not parts[0]:
            raise EvostyleError(f"{path} is empty; start a new run")
        cut = len(parts) if parts[-1] else None  # the line after the last newline, if any text
        lines = [(n, p + "\n", next(csv.reader([p]), [])) for n, p in enumerate(parts[1:-1], start=2)]
        if cut is not None and cut > 1:
            lines.append((cut, parts[-1], next(csv.reader([parts[-1]]), [])))
        return parts[0] + "\n", lines, cut

    @classmethod
    def read_rows(cls, path: Path) -> tuple[list[str], list[dict]]:
        """The header and the whole rows of a CSV log, as dicts (a row cut short is left out)."""
        header, lines, cut = cls.read_lines(path)
        cols = header_names(header)
        return cols, [dict(zip(cols, f)) for n, _, f in lines if n != cut and len(f) == len(cols)]

    @classmethod
    def check_state(cls, path: Path) -> dict:
        """Read and validate ``state.json`` of a run directory: missing, corrupt, or holding a value no
        run writes (a negative count, an unknown status) is an error naming the file and the value."""
        file = Path(path) / STATE
        state = read_json(file, "resume state")
        if not isinstance(state, dict):
            raise EvostyleError(f"resume state {file} is corrupt; start a new run")
        done = state.get("generations_done")
        if isinstance(done, bool) or not isinstance(done, int) or done < 0:
            raise EvostyleError(f"resume state {file} is corrupt: generations_done is {json_word(done)}, not a count "
                                "of whole generations (0 or more); restore the file (the logged rows in "
                                f"{GENERATIONS} say how many) or start a new run")
        if state.get("status") not in STATUSES:
            raise EvostyleError(f"resume state {file} is corrupt: status {json_word(state.get('status'))} is none of "
                                f"{', '.join(STATUSES)}; restore the file or start a new run")
        return state

    @classmethod
    def unfinished(cls, path: Path, state: dict) -> str | None:
        """Why a state that says ``finished`` cannot be (summary.json, written just before it, is
        missing: the state was edited or copied), or None. Such a run is resumed, not believed."""
        if state.get("status") == "finished" and not (Path(path) / SUMMARY).is_file():
            return (f"{Path(path) / STATE} says the run finished, but {Path(path) / SUMMARY} is missing (the state was "
                    f"edited or copied in after {state.get('generations_done')} generation(s))")
        return None

    @classmethod
    def status(cls, path: Path) -> str:
        """The run's status as a person should read it: state.json's, except that ``running`` with no
        process holding the run's lock (a killed run) reads ``interrupted (the process that ran it is
        gone)``. A ``finished`` that cannot be (:meth:`unfinished`) is an error saying to resume."""
        from evostyle.rundir.lock import is_locked
        state = cls.check_state(path)
        lie = cls.unfinished(path, state)
        if lie:
            raise EvostyleError(f"{lie}; continue it with {resume_hint(path)}")
        status = str(state["status"])
        if status == "running" and not is_locked(path):
            return GONE
        return status

    def resume(self) -> tuple[list[dict], list[dict]]:
        """Load and check the state, keep the logged generations that are whole in both files (checked
        against state.json's digests), drop the rest, and return (candidate rows, generation rows).
        A file cut short loses the generations from the cut on, which are evaluated again (a warning
        names the file and line); rows that were changed are refused (:meth:`_whole_generations`)."""
        self.state = state = self.check_state(self.path)
        file = self.path / STATE
        if self.run_id is not None and state.get("run_id") not in (None, self.run_id):
            raise EvostyleError(f"{file} belongs to another run (run id {str(state['run_id'])[:12]}, not this run's "
                                f"{self.run_id[:12]}): it was copied in; restore this run's own {STATE} or start a "
                                "new run")
        done = state["generations_done"]
        digests = self._vouched(state, file, done)
        logs, whole, why = {}, done, None
        for name, cols in ((CANDIDATES, self.cand_columns), (GENERATIONS, self.gen_columns)):
            header, lines, cut = self.read_lines(self.path / name)
            names = header_names(header)
            if names != cols and [LEGACY_COLUMNS.get(c, c) for c in names] == cols:
                cols = names  # a run written before a column was renamed keeps its own header
                if name == CANDIDATES:
                    self.cand_columns = names
            if names != cols:
                raise EvostyleError(f"{self.path / name} has other columns than this config makes; "
                                    "resume with the run's own config (or none)")
            groups = self._generations(self.path / name, lines, cut, len(cols))
            n, reason = self._whole_generations(self.path / name, groups, done,
                                                None if digests is None else digests.get(name) or [])
            if n < whole:
                whole, why = n, reason
            logs[name] = (header, names, groups)
        if whole < done:
            logger.warning("%s; the %d whole generation(s) before it are kept and generation %d is evaluated again",
                           why, whole, whole)
        kept, self.state["rows"] = [], {}
        for name, (header, names, groups) in logs.items():
            ours = [g for _, g in groups[:whole]]
            atomic_write_text(self.path / name, header + "".join(map(group_text, ours)))
            self.state["rows"][name] = [[len(g), digest(group_text(g))] for g in ours]
            kept.append([dict(zip(names, f)) for g in ours for _, _, f in g])
        self.state.update(status="running", generations_done=whole, run_id=self.run_id or state.get("run_id"))
        self.write_state()
        return kept[0], kept[1]

    @staticmethod
    def _vouched(state: dict, file: Path, done: int) -> dict | None:
        """state.json's ``rows`` ({file: [[lines, digest]] per generation}), checked to be what evostyle
        writes and to count ``done`` generations in each file; None for a state written before them."""
        digests = state.get("rows")
        if digests is None:
            return None
        pair = lambda e: isinstance(e, list) and len(e) == 2 and isinstance(e[0], int) and isinstance(e[1], str)
        if not (isinstance(digests, dict) and all(isinstance(digests.get(n), list) and all(map(pair, digests[n]))
                                                  for n in (CANDIDATES, GENERATIONS))):
            raise EvostyleError(f"{file}'s rows are not the [lines, digest] pairs evostyle writes: it was edited; "
                                "restore it or start a new run")
        for n in (CANDIDATES, GENERATIONS):
            if len(digests[n]) != done:
                raise EvostyleError(f"{file} counts {done} generation(s) but vouches for {len(digests[n])} "
                                    f"generation(s) of {n}: it was edited or is another run's; restore it or "
                                    "start a new run")
        return digests

    @staticmethod
    def _generations(path: Path, lines, cut: int | None, width: int) -> list[tuple[int, list]]:
        """A log's lines grouped by generation, in file order: [(generation, [(line, text, fields)])].
        A line cut short at the end ends the groups (the generation it began is left incomplete); a
        line that is not a row anywhere else means the file was edited, which is refused by line."""
        groups: list[tuple[int, list]] = []
        for i, (n, text, fields) in enumerate(lines):
            try:
                g = int(fields[0]) if len(fields) == width and n != cut else None
            except ValueError:
                g = None
            if g is None:
                if n == cut or i == len(lines) - 1:  # the last line, cut short: a truncation
                    # its generation is known only if the cut fell after the first field ("12,0,..." cut
                    # to "1" would read as generation 1)
                    began = fields[0] if len(fields) > 1 and fields[0].isdigit() else None
                    if began is not None and groups and int(began) == groups[-1][0]:
                        groups[-1][1].append((n, None, fields))  # text None: its generation is incomplete
                    elif began is not None:
                        groups.append((int(began), [(n, None, fields)]))
                    break
                raise EvostyleError(f"{path} line {n} is not a row evostyle wrote (the file was changed after the run "
                                    "wrote it); restore the run's own file or start a new run")
            if groups and groups[-1][0] == g:
                groups[-1][1].append((n, text, fields))
            else:
                groups.append((g, [(n, text, fields)]))
        return groups

    @staticmethod
    def _whole_generations(path: Path, groups, done: int, digests: list | None) -> tuple[int, str | None]:
        """How many of generations 0..done-1 are whole in one log, and, if not all, where it is cut.
        They must come in order; with ``digests`` (state.json's [lines, digest] per generation) each
        must also be exactly as written. A shortfall at the end is a cut (the run goes on from there).
        A generation missing or out of order before the end, or with rows other than those written,
        means the file was changed; that is refused naming the lines, as replaying it would score
        the run on rows it never made."""
        last = max((i for i, (g, _) in enumerate(groups) if g < done), default=-1)
        for i in range(done):
            if i > last or groups[i][0] != i:
                if i <= last:  # a row of a later generation where generation i should be
                    raise EvostyleError(f"{path} line {groups[i][1][0][0]} is a row of generation {groups[i][0]} where "
                                        f"generation {i} should be: the file was changed after the run wrote it; "
                                        "restore the run's own file or start a new run")
                return i, f"{path} ends before generation {i}'s rows (it was cut short)"
            rows = groups[i][1]
            n = rows[0][0]
            if rows[-1][1] is None:  # its last line cut short
                return i, f"{path} is cut short at line {rows[-1][0]} (generation {i})"
            if digests is None:
                continue
            want_lines, want = digests[i]
            if len(rows) == want_lines and digest(group_text(rows)) == want:
                continue
            if len(rows) < want_lines and i == last:
                return i, f"{path} is cut short after line {rows[-1][0]} (generation {i} has {len(rows)} of its " \
                          f"{want_lines} rows)"
            raise EvostyleError(f"{path} lines {n}-{rows[-1][0]} (generation {i}) are not the rows this run wrote: "
                                "the file was changed after the run wrote it (re-saved by a spreadsheet, edited, or "
                                "another run's copied in); restore the run's own file, or start a new run")
        return done, None


def json_word(value: object) -> str:
    """A state.json value as it reads in the file, for messages."""
    import json
    return json.dumps(value)
