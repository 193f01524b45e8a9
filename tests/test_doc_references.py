"""Every module, name and path of the package that a docstring, a doc or an experiment names exists.

A dotted reference (``evostyle.a.b``, bare, in backticks or in a Sphinx role such as
:class:`~evostyle.transfer.TransferConfig`) resolves when its longest importable prefix is a module
and the rest are attributes from there on; a path (``evostyle/a/b.py``, ``evostyle/a/``) must exist.
Only evostyle itself is imported (its optional parts, such as Ray, load on use and are not needed).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted({*ROOT.glob("evostyle/**/*.py"), *ROOT.glob("docs/*.md"), ROOT / "README.md",
                *ROOT.glob("experiments/*.py")})
DOTTED = re.compile(r"(?<![\w./-])evostyle(?:\.[A-Za-z_]\w*)+(?![\w-])")
"""``evostyle.a.b``, not part of a longer name or path (``x.evostyle.a``, ``evostyle.egg-info``)."""
PATH = re.compile(r"(?<![\w./-])evostyle/(?:[\w-]+/)*(?:[\w-]+(?:\.\w+)?)?")
"""``evostyle/``, ``evostyle/a/`` or ``evostyle/a/b.py``."""


def references(text: str) -> list[tuple[int, str, str]]:
    """(line, kind, reference) for every dotted reference and path in ``text``, kind ``name`` or ``path``."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        out += [(n, "name", m.group()) for m in DOTTED.finditer(line)]
        out += [(n, "path", m.group()) for m in PATH.finditer(line)]
    return out


def _has(obj, name: str) -> bool:
    """``obj.name`` exists, or ``obj`` is a class whose instances have it (a dataclass field, an
    annotated attribute)."""
    if hasattr(obj, name):
        return True
    return isinstance(obj, type) and any(name in getattr(c, "__annotations__", {}) for c in obj.__mro__)


def resolve(name: str) -> str | None:
    """None if the dotted ``name`` resolves, else why not."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name) and module[len(exc.name):][:1] in ("", "."):
                continue  # no such module: try a shorter prefix
            return f"importing {module} failed: {exc}"
        for j, attr in enumerate(parts[i:], i):
            if not _has(obj, attr):
                return f"{'.'.join(parts[:j])} has no {attr!r}"
            obj = getattr(obj, attr, None)
        return None
    return "no such module"


def test_the_patterns_find_each_kind_of_reference():
    text = ("see :mod:`~evostyle.style.rotations` and :class:`evostyle.transfer.TransferConfig`, ``evostyle.de``\n"
            "bare evostyle.search.run. the file evostyle/style/targets.py, the folder `evostyle/io/`\n"
            "not these: evostyle.egg-info, pkg.evostyle.x, evostyle, ./evostyle/x.py")
    assert references(text) == [
        (1, "name", "evostyle.style.rotations"), (1, "name", "evostyle.transfer.TransferConfig"),
        (1, "name", "evostyle.de"), (2, "name", "evostyle.search.run"), (2, "path", "evostyle/style/targets.py"),
        (2, "path", "evostyle/io/")]


def test_resolve_tells_a_missing_module_from_a_missing_name():
    assert resolve("evostyle.style.rotations.ROTATION_MODES") is None
    assert resolve("evostyle.transfer.TransferConfig.steps") is None  # a dataclass field
    assert resolve("evostyle.nowhere.Thing") == "evostyle has no 'nowhere'"
    assert resolve("evostyle.style.rotations.Nothing") == "evostyle.style.rotations has no 'Nothing'"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_references_resolve(path):
    rel = path.relative_to(ROOT)
    bad = []
    for line, kind, ref in references(path.read_text(encoding="utf-8")):
        why = resolve(ref) if kind == "name" else None if (ROOT / ref).exists() else "no such file or folder"
        if why:
            bad.append(f"{rel}:{line}: {ref} ({why})")
    if bad:  # every one listed (an assertion message would be cut short)
        pytest.fail("\n".join(bad), pytrace=False)
