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

from evostyle.errors import EvostyleError
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
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise EvostyleError(f"config file {path} is not valid {kind}: {exc}") from None
    if path.suffix.lower() == ".json" and isinstance(data, dict) and isinstance(data.get("config"), dict):
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
    sections: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for source in (file_values or {}, overrides or {}):
        for name, given, value in _items(source):
            if value is None and source is overrides:
                continue
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
        reasons["noise"] = "noise varies a content start, and --image-init is noise"
    default = SpaceSection().search
    dropped = [g for g in default if g in reasons]
    if dropped:
        sections["space"]["search"] = [g for g in default if g not in dropped]
        logger.info("search group(s) %s left out (%s); searching %s", ", ".join(dropped),
                    "; ".join(reasons[g] for g in dropped), ", ".join(sections["space"]["search"]))
