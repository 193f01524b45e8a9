"""A search's configuration from defaults, a file and the flags: :func:`make_config` and :func:`load_toml`.

The settings are declared in :mod:`evostyle.search.settings` and validated by
:mod:`evostyle.search.validation`. :class:`SearchConfig` nests five sections: ``run`` (images, seed,
device, weights, executor), ``de`` (the outer loop), ``space`` (what is searched), ``transfer`` (the
inner transfer) and ``scoring`` (fidelity, diversity, the objectives). Every setting's name is unique
across the sections, so a file may be flat::

    content = "photo.jpg"
    style = ["a.jpg", "b.jpg"]
    outputs = 4
    search = ["angles", "mix"]
    population = 12          # or its older name popsize (the total population)
    maxiter = 10
    [bounds]
    layers = [0.2, 5.0]
    [fixed]
    angle_0 = 0.0

or nested by section (``[de]``, ``[space]``, ``[transfer]``, ``[scoring]``, ``[run]``, as config.json
writes it). A run's config.json is itself a config file (``--config RUN/config.json``). Unknown keys and
wrong types are errors naming the key; ``sample:<name>`` names a bundled image, and relative image
paths in a file are taken relative to the file when they exist there.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from evostyle.errors import EvostyleError, flag
from evostyle.search.settings import (
    ALIASES,
    FIELDS,
    RESUME_MAY_CHANGE,
    SAVE_IMAGES,
    SECTIONS,
    RunSection,
    SearchConfig,
    SpaceSection,
    TransferSection,
    annotation,
    canonical,
)
from evostyle.search.validation import coerce, validate

logger = logging.getLogger("evostyle")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["SearchConfig", "make_config", "load_toml", "flatten", "validate", "coerce", "annotation", "FIELDS",
           "ALIASES", "SECTIONS", "RESUME_MAY_CHANGE", "SAVE_IMAGES"]


def load_toml(path: str | Path) -> dict:
    """A config file's values as written (flat or by section): TOML, or JSON (a run's config.json,
    whose ``config`` is taken). Relative image paths that exist beside the file are taken from there."""
    path = Path(path)
    if not path.is_file():
        raise EvostyleError(f"config file not found: {path}")
    kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text, object_pairs_hook=_once) if kind == "JSON" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise EvostyleError(f"config file {path} is not valid {kind}: {exc}") from None
    except RecursionError:
        raise EvostyleError(f"config file {path} is nested too deeply to be a config; a config is a table of "
                            "settings, optionally in sections") from None
    if not isinstance(data, dict):
        raise EvostyleError(f"config file {path} holds a {type(data).__name__} at its top level; a config is a table "
                            "of settings (key = value), optionally in sections")
    if kind == "JSON" and isinstance(data.get("config"), dict):
        data = data["config"]  # a run record

    def near_file(p):  # a relative image path that exists beside the file is taken from there
        return str(path.parent / p) if isinstance(p, str) and not Path(p).is_absolute() \
            and (path.parent / p).exists() else p
    for holder in (data, data.get("run") if isinstance(data.get("run"), dict) else {}):
        if "content" in holder:
            holder["content"] = near_file(holder["content"])
        if isinstance(holder.get("style"), list):
            holder["style"] = [near_file(s) for s in holder["style"]]
        elif "style" in holder:  # one style as a plain string, which the config also accepts
            holder["style"] = near_file(holder["style"])
    return data


def _once(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object whose keys are each given once (json keeps the last of two silently; TOML refuses)."""
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} is given twice; give it once")
        out[key] = value
    return out


def _items(values: dict):
    """(setting name, the key as given, value) from flat or section-nested values, aliases resolved."""
    for key, value in (values or {}).items():
        if key in SECTIONS and isinstance(value, dict):
            yield from ((canonical(k), k, v) for k, v in value.items())
        else:
            yield canonical(key), key, value


def flatten(values: dict) -> dict:
    """{name: value} from flat or section-nested values (``{"de": {"maxiter": 3}}``), aliases resolved."""
    return {name: value for name, _, value in _items(values)}


def make_config(file_values: dict | None = None, overrides: dict | None = None) -> SearchConfig:
    """Defaults <- file values <- overrides (None means "not given"), flat or nested; validated."""
    for what, source in (("file_values", file_values), ("overrides", overrides)):
        if source is not None and not isinstance(source, dict):
            raise EvostyleError(f"make_config's {what} must be a dict of settings (e.g. {{'size': 64}}), got a "
                                f"{type(source).__name__}; for a config file use make_config(load_toml(path))")
    sections: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for source in (file_values or {}, overrides or {}):
        seen: dict[str, str] = {}
        for name, given, value in _items(source):
            if value is None and source is overrides:
                continue
            if name in seen:  # two spellings, or flat and in its section: neither may silently win
                raise EvostyleError(f"setting {name} is given twice, as {seen[name]!r} and {given!r}; give it once")
            seen[name] = given
            section, f = FIELDS[name]
            sections[section][f.name] = coerce(name, value, given)
    _default_groups_that_apply(sections)
    return validate(SearchConfig(**{s: SECTIONS[s](**v) for s, v in sections.items()}))


def _default_groups_that_apply(sections: dict[str, dict[str, Any]]) -> None:
    """With the default search groups, leave out those the other settings give nothing to vary (``mix``
    with one painting, ``noise`` with a pure-noise start), saying so in one line; groups the user named
    stay, and are refused if they cannot run."""
    from evostyle.search.space import STYLES_NEEDED
    if "search" in sections["space"]:
        return
    styles = len(sections["run"].get("style", RunSection().style))
    if styles < 1:  # refused by the validation, in its own words
        return
    init = sections["transfer"].get("image_init", TransferSection().image_init)
    reasons = {g: f"{g} needs {n} style images, {styles} given" for g, n in STYLES_NEEDED.items() if n > styles}
    if init == "noise":
        reasons["noise"] = f"noise varies a content start, and the start is {flag('image_init', 'noise')}"
    default = SpaceSection().search
    dropped = [g for g in default if g in reasons]
    if dropped:
        sections["space"]["search"] = [g for g in default if g not in dropped]
        logger.info("search group(s) %s left out (%s); searching %s", ", ".join(dropped),
                    "; ".join(reasons[g] for g in dropped), ", ".join(sections["space"]["search"]))
