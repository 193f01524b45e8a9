"""Help-text helper shared by the command lines."""

from __future__ import annotations

import argparse


def show_defaults(parser: argparse.ArgumentParser, defaults: dict) -> None:
    """Append ``(default: v)`` to the help of every flag whose dest is in ``defaults``.

    Booleans read on/off, lists space-separated (floats as ``%g``), None as "none"; a help text that
    already states its default is left alone.
    """
    for action in parser._actions:
        if action.dest not in defaults or "(default" in (action.help or ""):
            continue
        v = defaults[action.dest]
        if isinstance(v, bool):
            v = "on" if v else "off"
        elif isinstance(v, (list, tuple)):
            v = " ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
        action.help = f"{action.help or ''} (default: {'none' if v is None else v})".lstrip()
