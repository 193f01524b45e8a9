"""Files that are written whole or not at all, and JSON that is strict.

Every file evostyle writes goes through :func:`atomic_path`: the content goes to a temporary file in
the same folder, which is renamed over the target only once it is complete and on disk; on any error
(a full disk, a signal) the temporary file is removed, so a failed write leaves the earlier file, or
none, and no debris.

JSON is strict (RFC 8259 has no NaN or Infinity): a non-finite float is written as ``null`` and listed,
by its path, under the top-level key ``"_nonfinite"`` (e.g. ``{"best.fitness": "inf"}``), which
:func:`read_json` uses to restore it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from evostyle.errors import EvostyleError

if TYPE_CHECKING:  # annotations only
    from typing import Any

NONFINITE = "_nonfinite"


def temporary(path: Path) -> Path:
    """The temporary file beside ``path`` that :func:`atomic_path` writes: hidden, named after the
    target and this process, and keeping the suffix (PIL and matplotlib choose the format by it)."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")


_TEMPORARY = re.compile(r"\.(?P<target>.+)\.tmp\d+(?P<suffix>\.[^.]*)?")


def temporary_target(name: str) -> str | None:
    """The file name a :func:`temporary` name was to replace (``.plot.png.tmp12.png`` ->
    ``plot.png``), or None for any other name."""
    m = _TEMPORARY.fullmatch(name)
    return m["target"] if m is not None and (m["suffix"] or "") == Path(m["target"]).suffix else None


def is_temporary(name: str) -> bool:
    """Whether a file name is one :func:`temporary` makes: what a process killed in mid-write leaves.
    Whether it is evostyle's to remove depends on its target (:func:`evostyle.rundir.layout.is_debris`)."""
    return temporary_target(name) is not None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    tmp = temporary(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically, synced to disk before the rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def _default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def _strict(obj, path: str, notes: dict):
    """``obj`` with non-finite floats replaced by None, their paths recorded in ``notes``."""
    if isinstance(obj, float) and not math.isfinite(obj):
        notes[path] = "nan" if obj != obj else ("inf" if obj > 0 else "-inf")
        return None
    if isinstance(obj, dict):
        return {k: _strict(v, f"{path}.{k}" if path else str(k), notes) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v, f"{path}[{i}]", notes) for i, v in enumerate(obj)]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _strict(obj.tolist(), path, notes)
    return obj


def to_json(obj: object) -> str:
    """Strict, indented JSON text of ``obj`` (see the module doc for non-finite floats)."""
    notes: dict = {}
    clean = _strict(obj, "", notes)
    if notes and isinstance(clean, dict):
        clean[NONFINITE] = notes
    return json.dumps(clean, indent=2, default=_default, allow_nan=False) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: object) -> None:
    atomic_write_text(path, to_json(obj))


def _restore(obj, notes: dict):
    for key, value in notes.items():
        target, parts = obj, key.replace("[", ".[").split(".")
        try:
            for part in parts[:-1]:
                target = target[int(part[1:-1])] if part.startswith("[") else target[part]
            last = parts[-1]
            v = float(value)
            if last.startswith("["):
                target[int(last[1:-1])] = v
            else:
                target[last] = v
        except (KeyError, IndexError, TypeError, ValueError):
            continue  # a note that no longer fits (hand-edited): leave that value as null
    return obj


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Load a JSON file evostyle wrote (restoring its non-finite floats); missing or corrupt files are
    a one-line :class:`~evostyle.errors.EvostyleError` naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvostyleError(f"{what} {path} is missing") from None
    except (OSError, ValueError) as exc:
        raise EvostyleError(f"{what} {path} is corrupt or truncated ({exc.__class__.__name__}); restore it or "
                            "start a new run") from None
    if isinstance(data, dict) and isinstance(data.get(NONFINITE), dict):
        data = _restore(data, data.pop(NONFINITE))
    return data
