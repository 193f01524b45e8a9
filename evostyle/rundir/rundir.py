"""One run directory, from its creation to its summary: :class:`RunDir`.

A search makes a new run with :meth:`RunDir.create` or continues one with :meth:`RunDir.open` and
:meth:`RunDir.reopen`, writes each generation whole with :meth:`RunDir.write_generation` and ends with
:meth:`RunDir.finish`; the report and a notebook read it back through the same object
(:meth:`RunDir.record`, :meth:`RunDir.state`, :meth:`RunDir.result`, :meth:`RunDir.frames`). The
names of its files are :mod:`evostyle.rundir.files`; the lock is held by whoever works on it.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from evostyle.errors import EvostyleError, flag
from evostyle.io.atomic import atomic_path, atomic_write_json, read_json
from evostyle.rundir import files
from evostyle.rundir.layout import config_hash, prepare_new, read_marker, remove_debris, remove_layout, write_marker
from evostyle.rundir.lock import RunLock
from evostyle.rundir.log import RunLog
from evostyle.rundir.record import accepted_inputs, changed_inputs, created_config, extended, input_words, plan_of

if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterator, Mapping, Sequence

    import pandas as pd
    import torch

    from evostyle.rundir.result import SearchResult
    from evostyle.transfer.state import TransferState

logger = logging.getLogger("evostyle")


class RunDir:
    """A search's run directory at ``path``.

    Reading is lazy and happens once per lock: :meth:`record` (config.json) and :meth:`state`
    (state.json) are read on first use and kept, and they and the marker are read afresh when
    :meth:`lock` takes the lock (another process may have extended or replaced the run in between).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._record: dict | None = None
        self._state: dict | None = None
        self.marker: dict | None = None
        """The marker (.evostyle-run), once :meth:`open` or :meth:`create` read or wrote it."""
        self.log: RunLog | None = None
        """The CSV logs, once :meth:`create` or :meth:`reopen` made or opened them."""
        self._accepted: list = []
        """Input changes :meth:`check_inputs` accepted, for :meth:`reopen` to record."""
        self._warned = False

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- reading --------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run, checked by its marker before anything else is read or written: a folder
        evostyle did not make is refused here, before any lock file could go into it."""
        rd = cls(path)
        rd.marker = read_marker(rd.path)
        return rd

    def config(self) -> dict:
        """config.json's config, checked unedited (its hash is the marker's) before anything reads it:
        an edit is refused in one line naming the file, not interpreted."""
        rec = self.record()
        if config_hash(created_config(rec)) != self.marker.get("config_sha256"):
            raise EvostyleError(f"{self.path / files.CONFIG} was changed after the run started (its config no "
                                f"longer matches the hash in {self.path / files.MARKER}); restore it or start a "
                                "new run")
        return rec["config"]

    def record(self) -> dict:
        """config.json (read once; a missing or corrupt one is an error naming it)."""
        if self._record is None:
            rec = read_json(self.path / files.CONFIG, "run config")
            if not isinstance(rec, dict) or not isinstance(rec.get("config"), dict):
                raise EvostyleError(f"{self.path / files.CONFIG} is not an evostyle run config; start a new run")
            self._record = rec
        return self._record

    def plan(self) -> dict:
        """The run's resolved plan (:func:`~evostyle.rundir.record.plan_of`)."""
        return plan_of(self.record())

    def reference(self) -> list[float]:
        """The hypervolume's reference point (fidelity, -diversity) the run was made with."""
        ref = (self.plan().get("hypervolume") or {}).get("reference")
        if not isinstance(ref, list):
            raise EvostyleError(f"{self.path / files.CONFIG} has no hypervolume reference; start a new run")
        return ref

    def state(self) -> dict:
        """state.json (read once; missing or corrupt is an error)."""
        if self._state is None:
            self._state = RunLog.check_state(self.path)
        return self._state

    def finished(self) -> bool:
        """Whether the run is finished: its state says so and summary.json, written just before, is
        there. A ``finished`` without it (an edited or copied state) is said in a warning and read as
        unfinished, so that a resume completes the run instead of leaving it stuck."""
        lie = RunLog.unfinished(self.path, self.state())
        if lie and not self._warned:
            self._warned = True  # asked before the lock is taken and again under it: said once
            logger.warning("%s; resuming it from its logged generations", lie)
        return self.state().get("status") == "finished" and lie is None

    def status(self) -> str:
        """The status as a person should read it (``running`` with no live holder of the lock reads
        as interrupted); a ``finished`` without summary.json is an error saying to resume the run."""
        return RunLog.status(self.path)

    def result(self) -> SearchResult:
        """The finished run's :class:`~evostyle.rundir.result.SearchResult` (summary.json, typed)."""
        from evostyle.rundir.result import SearchResult
        return SearchResult.from_dir(self.path)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(candidates, generations) as DataFrames (:func:`~evostyle.rundir.reader.load_run`)."""
        from evostyle.rundir.reader import load_run
        return load_run(self.path)

    # -- the lock -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, what: str) -> Iterator[RunLock]:
        """Hold the run's lock for ``what`` (search, resume, report); what was read before it is taken
        (the marker, the record, the state) is read again under it."""
        with RunLock(self.path, what) as lock:
            remove_debris(self.path)  # a killed writer's temporary files: no one else writes here now
            self._record = self._state = None
            if self.marker is not None:
                self.marker = read_marker(self.path)
            yield lock

    # -- making and reopening -------------------------------------------------------------------------
    def create(self, overwrite: bool, record: dict, columns: list[str], inputs: Mapping[str, torch.Tensor]) -> None:
        """Lay out a new run (its lock held by the caller): marker, config.json, the empty logs and
        state, and the input images (``inputs``: {file name: (3, H, W) image}). ``--overwrite``
        replaces an earlier run's files only and names what it kept."""
        kept = prepare_new(self.path, overwrite)
        if kept:
            shown = ", ".join(kept[:5]) + (f" and {len(kept) - 5} more" if len(kept) > 5 else "")
            logger.warning("%s replaced the run in %s and kept %d file(s) evostyle did not write: %s",
                           flag("overwrite", True), self.path, len(kept), shown)
        self.marker = write_marker(self.path, record["config"])
        atomic_write_json(self.path / files.CONFIG, record)
        self._record = record
        self.log = RunLog(self.path, columns, run_id=self.marker["run_id"]).create()
        self._state = self.log.state
        self.write_images(inputs)

    def undo_create(self, lock: RunLock, existed: bool, refused: bool) -> None:
        """After a new run could not be laid out: remove what :meth:`create` wrote (never a user's
        file), so that nothing half-made looks like a run and the same command works again."""
        if not refused:  # a refused folder was not touched; a failed creation wrote some of the layout
            remove_layout(self.path, best_effort=True)
        lock.release()  # which removes the lock file: a refused folder keeps no trace
        if not existed:
            with contextlib.suppress(OSError):
                self.path.rmdir()  # the folder this call made, now empty

    def reopen(self, columns: list[str], maxiter: int) -> list[dict]:
        """Continue the run (its lock held by the caller): check that config.json is unedited (its
        hash is the marker's) and has a reference point, drop rows of an unfinished generation, and
        return the logged candidate rows. A ``maxiter`` other than the run's extends (or shortens) it,
        recorded under ``extensions`` in config.json."""
        rec = self.record()
        self.config()
        self.reference()
        self.log = RunLog(self.path, columns, run_id=(self.marker or {}).get("run_id"))
        cached, _ = self.log.resume()
        self._state = self.log.state
        self._record_accepted_inputs()
        old = int(rec["config"]["de"]["maxiter"])
        if maxiter != old:
            done = int(self._state["generations_done"])
            self._record = extended(self.record(), maxiter, done)  # with any input change just recorded
            atomic_write_json(self.path / files.CONFIG, self._record)
            logger.info("extending %s from maxiter %d to %d (%d generation(s) done)", self.path, old, maxiter, done)
        return cached

    def check_inputs(self, paths: Mapping[str, str], accept: bool = False) -> None:
        """Before a resume or an extension scores anything: each input file (``paths``: {role: path},
        as :func:`~evostyle.rundir.record.fingerprints` takes them) must be the one the run started
        with, or later rows would be scored on another image than content.png and the earlier rows
        show. A changed one is refused in one line naming it, unless ``accept``, which records the
        change in config.json (``input_changes``) and goes on. A run that recorded no fingerprints
        (written before evostyle kept them) is not checked."""
        rec = self.record()
        recorded = rec.get("inputs")
        if not isinstance(recorded, dict) or not recorded:
            logger.debug("%s records no fingerprints of its inputs (an older run); they are not checked", self.path)
            return
        changed = changed_inputs(recorded, paths)
        if not changed:
            return
        role, path, old, new = changed[0]
        more = f" (and {len(changed) - 1} other input(s))" if len(changed) > 1 else ""
        if not accept:
            raise EvostyleError(f"the {input_words(role)} {path}{more} changed since the run in {self.path} started "
                                f"(SHA-256 {old[:12]} in {files.CONFIG}, now {new[:12]}); restore it, or resume with "
                                f"{flag('accept_changed_inputs', True)} to score the later generations on the new "
                                "file")
        self._accepted = changed  # recorded by reopen, once it knows which generations are kept

    def _record_accepted_inputs(self) -> None:
        """Record the input changes :meth:`check_inputs` accepted (``input_changes`` in config.json),
        from the first generation that will be scored again: after :meth:`reopen` has dropped what
        a cut left incomplete, so that the record names the generations that really use the new file."""
        changed, self._accepted = self._accepted, []
        if not changed:
            return
        done = int(self._state["generations_done"])
        self._record = accepted_inputs(self.record(), changed, done)
        atomic_write_json(self.path / files.CONFIG, self._record)
        for role, path, old, new in changed:
            logger.warning("the %s %s changed (SHA-256 %s -> %s); accepted: generations from %d on use the new "
                           "file (recorded under input_changes in %s)", input_words(role), path, old[:12], new[:12],
                           done, files.CONFIG)

    # -- writing --------------------------------------------------------------------------------------
    def write_generation(self, rows: list[dict], gen_row: dict, images: Mapping[str, torch.Tensor],
                         best: tuple[dict, Sequence[torch.Tensor]] | None = None, events: Sequence[dict] = ()) -> None:
        """Write generation ``gen_row["generation"]`` whole: its outputs (``images``: {file name:
        (3, H, W)}, JPEG), the best candidate's outputs and row when it improved (``best``: (row,
        [(3, H, W)] * K), PNG), then its candidate rows and generation row, then the state that counts
        it as done (with ``events``, e.g. a lost worker). A crash before the state leaves the
        generation to be evaluated again on resume (its images are then written over)."""
        self.write_images(images, quality=85)
        if best is not None:
            row, outputs = best
            self.write_images({files.best_output(k): image for k, image in enumerate(outputs)})
            atomic_write_json(self.path / files.BEST_JSON, dict(row))
        if events:
            self.log.state.setdefault("events", []).extend(events)
        self.log.append_generation(rows, gen_row)

    def write_transfer_state(self, generation: int, state: TransferState) -> None:
        """Keep where generation ``generation``'s transfers stand (:func:`files.transfer_state
        <evostyle.rundir.files.transfer_state>`, atomically), for a multi-fidelity search to continue
        them after a resume; call :meth:`drop_transfer_states` once the generation is logged."""
        import dataclasses

        import torch
        with atomic_path(self.path / files.transfer_state(generation)) as tmp:
            torch.save({"generation": int(generation), "state": dataclasses.asdict(state)}, tmp)

    def drop_transfer_states(self, before: int | None = None) -> None:
        """Remove the kept transfers of generations before ``before`` (None: all of them), no longer
        needed."""
        if before is None:
            for kept in self.path.glob(files.TRANSFER_STATES):
                kept.unlink(missing_ok=True)
            return
        for g in range(before):
            (self.path / files.transfer_state(g)).unlink(missing_ok=True)

    def transfer_state(self, generation: int) -> TransferState | None:
        """The transfers of ``generation`` as :meth:`write_transfer_state` kept them; None if missing."""
        import torch

        from evostyle.transfer.state import TransferState
        path = self.path / files.transfer_state(generation)
        if not path.is_file():
            return None
        saved = torch.load(path, map_location="cpu", weights_only=True)
        return TransferState(**saved["state"]) if saved.get("generation") == int(generation) else None

    def write_images(self, images: Mapping[str, torch.Tensor], **options) -> None:
        """Save (3, H, W) images under their file names (PNG or JPEG by suffix, atomically; ``options``
        are :func:`~evostyle.io.images.save_image`'s, e.g. ``quality``), making their folders once."""
        from evostyle.io.images import save_image
        for folder in {(self.path / name).parent for name in images}:
            folder.mkdir(exist_ok=True)
        for name, image in images.items():
            save_image(image, self.path / name, **options)

    def mark(self, status: str, **extra: object) -> None:
        """Set the run's status in state.json (one of :data:`~evostyle.rundir.files.STATUSES`)."""
        if self.log is None:
            self.log = RunLog(self.path, [])
            self.log.state = dict(self.state())
        self.log.write_state(status=status, **extra)

    def finish(self, summary: dict) -> None:
        """summary.json, then the status ``finished``: only now does the run look complete."""
        atomic_write_json(self.path / files.SUMMARY, summary)
        self.log.write_state(status="finished")
        self.drop_transfer_states()  # nothing continues them now
