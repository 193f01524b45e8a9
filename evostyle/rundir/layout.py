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
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import NamedTuple

from evostyle.errors import EvostyleError, flag
from evostyle.rundir.files import CONFIG, LAYOUT, LOCK, MARKER, PROBE, STATE


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


def layout_files(path: Path, layout: Layout = RUN) -> list[Path]:
    """The files of ``layout`` present in ``path``."""
    path = Path(path)
    return sorted({p for pattern in layout.files for p in path.glob(pattern) if p.is_file()})


def remove_layout(path: Path, layout: Layout = RUN, best_effort: bool = False) -> None:
    """Delete the files of ``layout`` in ``path`` and the layout's folders they leave empty; nothing
    else. ``best_effort``: a file that cannot be removed is left (cleaning up after a failure)."""
    path = Path(path)
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
    ours = set(layout_files(path, layout)) | {path / LOCK}
    return [str(p.relative_to(path)) for p in sorted(path.rglob("*")) if p.is_file() and p not in ours]


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
    foreign = sorted(p.name for p in path.iterdir() if p.name != LOCK and not p.name.startswith(PROBE))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        why = f" ({flag('overwrite', True)} only replaces {layout.what})" if overwrite else ""
        raise EvostyleError(f"output directory {path} is not empty and does not hold {layout.what} ({shown}){why}; "
                            f"choose an empty or new {flag('out')}")
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
