"""An output directory as a place on disk: the marker that says evostyle made it, the files it
consists of, and an ``--overwrite`` that deletes nothing evostyle did not write.

* the marker (``.evostyle-run`` for a run, JSON): run id, evostyle version, creation time and the
  SHA-256 of the resolved config. A folder without it is never overwritten or resumed.
* a :class:`Layout`: the files such a directory consists of (glob patterns, relative to it).
  ``--overwrite`` removes those and nothing else, and names what it left.

A search's run directory (:data:`RUN`, its names in :mod:`evostyle.rundir.files`) and a transfer's
outputs (:data:`TRANSFER`) are the two layouts.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fnmatch
import hashlib
import json
import os
import uuid
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from evostyle.errors import EvostyleError, flag
from evostyle.io.atomic import temporary_target
from evostyle.rundir.files import CONFIG, LAYOUT, LOCK, MARKER, PROBE, REPORT, STATE, SUMMARY_MD


def config_hash(config: dict) -> str:
    """SHA-256 of a config dict in canonical JSON (sorted keys): what a resume checks against."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def read_marker(path: Path) -> dict:
    """The run's marker; a missing or damaged one is an error naming the file."""
    marker = Path(path) / MARKER
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = " (made by an evostyle older than 0.2, or not a run)" if (Path(path) / CONFIG).exists() else ""
        raise EvostyleError(f"{path} is not an evostyle run directory: {MARKER} is missing{hint}") from None
    except (OSError, ValueError) as exc:
        raise EvostyleError(f"{marker} is corrupt ({type(exc).__name__}); this run cannot be resumed") from None
    if not isinstance(data, dict) or "run_id" not in data:
        raise EvostyleError(f"{marker} is corrupt (no run_id); this run cannot be resumed")
    return data


def write_marker(path: Path, config: dict) -> dict:
    """Write the marker for a new run of ``config``; returns it."""
    from evostyle import __version__
    from evostyle.io.atomic import atomic_write_json
    marker = {"run_id": uuid.uuid4().hex, "evostyle": __version__,
              "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "config_sha256": config_hash(config)}
    atomic_write_json(Path(path) / MARKER, marker)
    return marker


class Layout(NamedTuple):
    """What one kind of output directory holds: its ``marker`` file (present = evostyle made it), the
    glob patterns of the files it consists of, and words for messages."""

    marker: str
    files: tuple[str, ...]
    what: str
    """It, in a sentence: "an evostyle run"."""
    resume: bool = False
    """Whether ``--resume`` can continue it (named in the refusal)."""


RUN = Layout(MARKER, LAYOUT, "an evostyle run", resume=True)
TRANSFER = Layout("losses.json", ("losses.json", "output_*.png", "grid.jpg"), "an evostyle transfer's outputs")
BENCH = Layout("bench.json", ("bench.json", "bench.md"), "an evostyle benchmark")
REPORT_FILES = (REPORT, SUMMARY_MD, "plot_*.png", "report_*.png")
"""What ``python -m evostyle.report`` writes into a run directory (a subset of the run's layout)."""


def is_debris(relative: str, layout: Layout = RUN) -> bool:
    """Whether the file at ``relative`` (to its output folder) is a temporary file of the atomic writer
    that a killed process left, on its way to becoming one of ``layout``'s files: only those are
    evostyle's (a user's ``.notes.txt.tmp1.txt`` is not, though it looks alike)."""
    rel = PurePosixPath(relative)
    target = temporary_target(rel.name)
    return target is not None and any(fnmatch.fnmatch(str(rel.with_name(target)), pattern) for pattern in layout.files)


def ours(relative: str, layout: Layout = RUN) -> bool:
    """Whether the file at ``relative`` (to its output folder) is evostyle's own: the lock, the
    writability probe, or a killed writer's temporary file of one of ``layout``'s files."""
    name = PurePosixPath(relative).name
    return name == LOCK or name.startswith(PROBE) or is_debris(relative, layout)


def remove_debris(path: Path, layout: Layout = RUN) -> list[Path]:
    """Remove the temporary files a killed writer left in ``path`` (at any depth) on their way to
    ``layout``'s files, which no process is writing: called with the folder's lock held. Returns what
    was removed."""
    path, gone = Path(path), []
    for p in path.rglob(".*"):
        if p.is_file() and is_debris(p.relative_to(path).as_posix(), layout):
            with contextlib.suppress(OSError):
                p.unlink()
                gone.append(p)
    return gone


def check_ownership(path: Path, layout: Layout = RUN, writes: tuple[str, ...] | None = None, why: str = "") -> bool:
    """The one ownership rule every command that writes obeys: a folder evostyle did not make is never
    written into unless empty, and nothing of the user's is replaced. Returns whether ``path`` holds
    ``layout``'s marker (then the layout's files are evostyle's to replace).

    Without the marker, ``writes`` None (a new run, transfer or benchmark) asks the folder to hold
    nothing but evostyle's own debris (:func:`ours`); ``writes`` (glob patterns: a report added to a run
    made before the marker existed) asks that none of those files exist, as evostyle cannot tell
    them from the user's. Either is refused in one line naming the files (and ``why``, the caller's
    reason, beside them)."""
    path = Path(path)
    if (path / layout.marker).exists():
        return True
    if writes is None:
        found = sorted(p.name for p in path.iterdir() if not ours(p.name, layout)) if path.is_dir() else []
        if found:
            shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
            raise EvostyleError(f"output directory {path} is not empty and does not hold {layout.what} ({shown})"
                                f"{why}; choose an empty or new {flag('out')}")
        return False
    found = sorted({p.name for pattern in writes for p in path.glob(pattern) if p.is_file()})
    if found:
        more = f" (and {len(found) - 4} more)" if len(found) > 4 else ""
        are, them = ("is", "it") if len(found) == 1 else ("are", "them")
        raise EvostyleError(f"{path} has no {layout.marker}, so evostyle cannot tell that its {', '.join(found[:4])}"
                            f"{more} {are} its own and will not replace {them}; move {them} away and run it again")
    return False


def layout_files(path: Path, layout: Layout = RUN) -> list[Path]:
    """The files of ``layout`` present in ``path``."""
    path = Path(path)
    return sorted({p for pattern in layout.files for p in path.glob(pattern) if p.is_file()})


def remove_layout(path: Path, layout: Layout = RUN, best_effort: bool = False) -> None:
    """Delete the files of ``layout`` in ``path``, the temporary files a killed writer left, and the
    layout's folders they leave empty; nothing else. ``best_effort``: a file that cannot be removed is
    left (cleaning up after a failure)."""
    path = Path(path)
    remove_debris(path, layout)
    for f in layout_files(path, layout):
        try:
            f.unlink()
        except OSError:
            if not best_effort:
                raise
    for sub in sorted({pattern.split("/")[0] for pattern in layout.files if "/" in pattern}):
        with contextlib.suppress(OSError):
            (path / sub).rmdir()  # only if now empty


def others(path: Path, layout: Layout = RUN) -> list[str]:
    """Relative names of the files in ``path`` (at any depth) that are neither the layout's nor the
    lock: the user's own files, which evostyle never deletes."""
    path = Path(path)
    layouts = set(layout_files(path, layout))
    return [str(p.relative_to(path)) for p in sorted(path.rglob("*"))
            if p.is_file() and p not in layouts and not ours(p.relative_to(path).as_posix(), layout)]


def prepare_new(path: Path, overwrite: bool, layout: Layout = RUN) -> list[str]:
    """Make ``path`` ready for new output of ``layout`` (for a run, with its lock already held).

    A folder without the layout's marker must be empty (apart from the lock); one with it is refused
    unless ``overwrite``, which removes the layout's files only, or unless it is a run that was killed
    while being laid out (a marker but no state.json: it never started). Returns the names of what was
    kept.
    """
    path = Path(path)
    if (path / layout.marker).exists() and layout.resume and not (path / STATE).exists():
        overwrite = True  # a run killed while it was being laid out never started: nothing to keep
    if (path / layout.marker).exists():
        if not overwrite:
            again = f"use {flag('resume', path, python=True)} to continue it, " if layout.resume else "use "
            raise EvostyleError(f"output directory {path} already holds {layout.what}; {again}"
                                f"{flag('overwrite', True)} to replace it, or another {flag('out')}")
        kept = others(path, layout)
        remove_layout(path, layout)
        return kept
    check_ownership(path, layout, why=f" ({flag('overwrite', True)} only replaces {layout.what})" if overwrite else "")
    remove_debris(path, layout)  # a killed writer's temporary files, ours
    return []


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents); refuse a file, an unwritable place or an empty name."""
    path = Path(path)
    if str(path).strip() == "":
        raise EvostyleError(f"{flag('out')} is empty; give a directory")
    if path.exists() and not path.is_dir():
        raise EvostyleError(f"output path {path} exists and is not a directory; choose another {flag('out')}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f"{PROBE}{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise EvostyleError(f"cannot write to output directory {path} ({exc.strerror or exc}); "
                            f"choose a writable {flag('out')}") from None
    return path
