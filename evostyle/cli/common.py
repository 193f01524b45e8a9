"""Help-text helpers shared by the command lines."""

from __future__ import annotations

import argparse
import re


def show_defaults(parser: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    """Append ``(default: v)`` to the help of every flag whose dest is in ``defaults``.

    ``defaults`` None: the parser's own defaults, except None, False and required flags (their help
    says what happens). Booleans read on/off, lists space-separated (floats as ``%g``), None as "none";
    a help text that already states its default is left alone.
    """
    if defaults is None:
        defaults = {a.dest: a.default for a in parser._actions
                    if not a.required and all(a.default is not x for x in (None, False, argparse.SUPPRESS))}
    for action in parser._actions:
        if action.dest not in defaults or "(default" in (action.help or ""):
            continue
        v = defaults[action.dest]
        if isinstance(v, bool):
            v = "on" if v else "off"
        elif isinstance(v, (list, tuple)):
            v = " ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
        action.help = f"{action.help or ''} (default: {'none' if v is None else v})".lstrip()


def plain(doc: str | None) -> str:
    """A docstring's first line as plain text for ``--help``: no reST ``literal`` markup, and a Sphinx
    cross-reference (:class:`~a.b.C`) as the name it shows (C)."""
    if not doc or not doc.strip():
        return ""
    line = doc.strip().splitlines()[0].replace("``", "")
    return re.sub(r":\w+:`~?([\w.]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], line)


MEMORY_FIX = "lower --size or --max-batch"
"""What a search or a transfer that ran out of memory at one row per chunk can change."""
