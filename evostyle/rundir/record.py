"""config.json, the run's record: what a run was asked (the config), what that resolved to (the plan)
and where it ran (weights, :func:`environment`), written once when the run is made; an extension
appends to ``extensions``. Readers go through :func:`plan_of`, which also reads the record of
evostyle 0.2, whose plan was spread over top-level keys. :func:`environment` is also what a
transfer's and a benchmark's records say about where they ran."""

from __future__ import annotations

import datetime as _dt
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evostyle.rundir.files import FORMAT

if TYPE_CHECKING:  # annotations only
    from collections.abc import Mapping

    import torch


def new_record(config: dict, plan: dict, space: list[dict], weights: dict, environment: dict, seed: int,
               columns: list[str], inputs: dict | None = None) -> dict:
    """The record of a new run: the config as nested sections, the resolved plan, the parameter space
    (:meth:`~evostyle.search.space.Space.describe`), the weights' identity, the environment, the
    seed, the candidate columns and the fingerprints of its input files (:func:`fingerprints`)."""
    return {"format": FORMAT, "config": config, "plan": plan, "space": space, "weights": weights,
            "environment": environment, "seed": seed, "columns": list(columns), "inputs": dict(inputs or {})}


def fingerprints(paths: Mapping[str, str], known: Mapping[str, str] | None = None,
                 names: Mapping[str, str] | None = None) -> dict[str, dict]:
    """{role: {"path", "sha256"}} of the files a run reads (``paths``: {role: the file to hash}, roles
    as :func:`input_words` names them). A resume compares them by role (:func:`changed_inputs`): the
    config names a file by its path, and a file replaced at the same path would otherwise be used
    without a word. ``known``: {role: SHA-256} already computed (the weights file's, hashed when it was
    loaded), so no file is read twice. ``names``: {role: the input as the config spells it}, recorded
    as ``path`` instead of the resolved file, so that a bundled sample reads ``sample:cat.jpg`` and a
    run directory names no path of the machine it was made on that the user did not give."""
    from evostyle.network.state import file_sha256
    known, names = known or {}, names or {}
    return {role: {"path": str(names.get(role, path)), "sha256": known.get(role) or file_sha256(path)}
            for role, path in paths.items()}


def changed_inputs(recorded: Mapping[str, dict], paths: Mapping[str, str]) -> list[tuple[str, str, str, str]]:
    """(role, path, recorded SHA-256, SHA-256 now) of each input whose file differs from the one the run
    recorded. A file that is gone is left to the loader, whose error says so; a role the record lacks
    (a run older than the fingerprints) is not checked."""
    from evostyle.network.state import file_sha256
    changed = []
    for role, path in paths.items():
        old = recorded.get(role, {}).get("sha256") if isinstance(recorded.get(role), dict) else None
        if old is None or not Path(path).is_file():
            continue
        now = file_sha256(path)
        if now != old:
            changed.append((role, str(path), old, now))
    return changed


def input_words(role: str) -> str:
    """A fingerprint's role in words: ``content`` -> "content image", ``style_1`` -> "style image 1",
    ``weights`` -> "weights file"."""
    if role.startswith("style_"):
        return f"style image {role[len('style_'):]}"
    return {"content": "content image", "weights": "weights file"}.get(role, role)


def accepted_inputs(record: dict, changed: list[tuple[str, str, str, str]], generations_done: int) -> dict:
    """The record after a resume accepted ``changed`` inputs deliberately: the new fingerprints replace
    the old ones, and ``input_changes`` keeps the old, the new and the generations scored before, so
    that the record never hides that later rows used other files."""
    from evostyle import __version__
    date = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    inputs = dict(record.get("inputs") or {})
    log = list(record.get("input_changes") or [])
    for role, path, old, new in changed:
        path = (inputs.get(role) or {}).get("path", path)  # as the run recorded it (sample:cat.jpg), not resolved
        inputs[role] = {"path": path, "sha256": new}
        log.append({"input": role, "path": path, "sha256_from": old, "sha256_to": new,
                    "generations_done": int(generations_done), "evostyle": __version__, "date": date})
    return {**record, "inputs": inputs, "input_changes": log}


def plan_of(record: dict) -> dict[str, Any]:
    """A record's plan (:class:`~evostyle.search.plan.Plan` as a dict): ``optimizer``, ``init``, ``strategy``,
    ``compile`` {used, why, mode}, ``image_size`` [H, W], ``hypervolume`` {objectives, reference,
    how}, ``backbone``, ``preprocessing``, ``lr``. For a record of evostyle 0.2 (no ``format``) it is gathered
    from the top-level keys that held it (its ``init`` is ``latinhypercube``, the only initial population
    0.2 drew, whatever its config said); what such a record lacks is None."""
    if not isinstance(record, dict):
        return {}
    if isinstance(record.get("plan"), dict):
        return record["plan"]
    cfg = record.get("config") if isinstance(record.get("config"), dict) else {}
    de = cfg.get("de") if isinstance(cfg.get("de"), dict) else cfg
    weights = record.get("weights") if isinstance(record.get("weights"), dict) else {}
    return {"optimizer": de.get("optimizer"), "init": "latinhypercube", "strategy": record.get("strategy"),
            "compile": record.get("compile"), "image_size": record.get("image_size"),
            "hypervolume": record.get("hypervolume"), "backbone": weights.get("backbone"),
            "preprocessing": weights.get("preprocessing"),
            "lr": (cfg.get("transfer") if isinstance(cfg.get("transfer"), dict) else cfg).get("lr")}


def objective_columns(record: dict) -> tuple[str, str]:
    """The run's (fidelity, diversity) columns: its hypervolume's objectives (runs older than the
    hypervolume: loss_score and diversity_pixel)."""
    objs = (plan_of(record).get("hypervolume") or {}).get("objectives")
    return (objs[0], objs[1].lstrip("-")) if objs else ("loss_score", "diversity_pixel")


def created_config(record: dict) -> dict:
    """The config a run was created with: the record's, with ``maxiter`` as it was before any
    extension changed it. Its hash is the marker's."""
    cfg = record.get("config")
    ext = record.get("extensions") or []
    if not ext or not isinstance(cfg, dict) or not isinstance(cfg.get("de"), dict):
        return cfg
    return {**cfg, "de": {**cfg["de"], "maxiter": ext[0]["maxiter_from"]}}


def extended(record: dict, maxiter: int, generations_done: int) -> dict:
    """The record of a run extended (or shortened) to ``maxiter``: the config takes the new value and
    ``extensions`` records the change, with the version and date."""
    from evostyle import __version__
    old = int(record["config"]["de"]["maxiter"])
    ext = {"maxiter_from": old, "maxiter_to": int(maxiter), "generations_done": int(generations_done),
           "evostyle": __version__, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    return {**record, "extensions": [*(record.get("extensions") or []), ext],
            "config": {**record["config"], "de": {**record["config"]["de"], "maxiter": int(maxiter)}}}


def searched_parameters(record: dict) -> list[str]:
    """The names of a record's searched parameters (its ``space``), in search order."""
    space = record.get("space", []) if isinstance(record, dict) else []
    return [p["name"] for p in space if p.get("fixed") is None]


def parameter_units(record: dict) -> dict[str, str]:
    """{name: unit} of every parameter of a record (its ``space``), '' where it has none."""
    space = record.get("space", []) if isinstance(record, dict) else []
    return {p["name"]: p.get("unit") or "" for p in space}


def run_settings(record: dict) -> dict:
    """A record's settings as one flat {name: value} dict, whether the config is nested by section
    (evostyle >= 0.2) or flat (older runs)."""
    cfg = record.get("config", {}) if isinstance(record, dict) else {}
    if not isinstance(cfg, dict):
        return {}
    flat = {}
    for key, value in cfg.items():
        if key in ("run", "de", "space", "transfer", "scoring") and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    if "population" in flat:
        flat.setdefault("popsize", flat["population"])
    return flat


def environment(device: torch.device | None = None) -> dict:
    """Versions, platform, device and date, for records."""
    from importlib import metadata

    import numpy
    import scipy
    import torch

    from evostyle import __version__
    try:
        tv = metadata.version("torchvision")  # without importing it (slow)
    except metadata.PackageNotFoundError:  # pragma: no cover
        tv = "not installed"
    env = {"evostyle": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
           "torch": torch.__version__, "torchvision": tv, "numpy": numpy.__version__,
           "scipy": scipy.__version__, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if device is not None:
        from evostyle.network.device import device_info
        env.update(device_info(device))
    return env
