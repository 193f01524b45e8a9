"""Validating a search's settings: each setting's own rules (its names, range, sign), the rules between
settings, and the ones each registry entry owns (an optimiser's, an executor's); also the coercion of a
value from a file or a flag to its setting's type. A config is validated once, in
:func:`~evostyle.search.config.make_config` (or :func:`validate` for one made by hand), before anything
is loaded or written."""

from __future__ import annotations

import math
import typing
from typing import Any

from evostyle.errors import EvostyleError, flag, unknown
from evostyle.search.settings import FIELDS, SearchConfig, annotation


def choices(kind: str):
    """The valid names of ``kind`` (a setting's ``choices``), looked up when validating: registries
    grow at run time (a user's optimiser, rotation mode, executor...)."""
    from evostyle.network.backbones import BACKBONES, POOLS
    from evostyle.network.device import PRECISIONS
    from evostyle.search.executors import EXECUTORS
    from evostyle.search.optimizers import OPTIMIZERS
    from evostyle.search.scoring import DIVERSITY_METRICS, FITNESS_LOSSES, OBJECTIVES
    from evostyle.search.settings import SAVE_IMAGES
    from evostyle.search.space import SEARCH_GROUPS
    from evostyle.style.rotations import ROTATION_MODES
    from evostyle.style.targets import SHUFFLE_MODES
    return {"optimizer": OPTIMIZERS, "objective": OBJECTIVES, "search group": SEARCH_GROUPS,
            "rotation mode": ROTATION_MODES, "shuffle mode": SHUFFLE_MODES, "precision": PRECISIONS,
            "diversity metric": DIVERSITY_METRICS, "fitness loss": FITNESS_LOSSES, "save-images": SAVE_IMAGES,
            "pooling": POOLS, "executor": EXECUTORS, "backbone": ("auto", *BACKBONES)}[kind]


def validate(cfg: SearchConfig) -> SearchConfig:
    """Check every setting of ``cfg`` and the rules between them; returns ``cfg``."""
    for name, (section, f) in FIELDS.items():
        check_rules(name, getattr(getattr(cfg, section), f.name), f.metadata)
    check_combinations(cfg)
    return cfg


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def coerce(name: str, value: Any, given: str | None = None) -> Any:
    """``value`` for setting ``name`` in its annotated type, or the one-line error naming the key (as
    ``given``, when the user spelled it another way)."""
    hint, where = annotation(name), f"config key {(given or name)!r}"
    args = typing.get_args(hint)
    optional = type(None) in args
    if value is None and optional:
        return None
    if hint is int or (optional and int in args):
        if isinstance(value, bool) or not isinstance(value, int):
            raise EvostyleError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float or (optional and float in args and list not in [typing.get_origin(a) for a in args]):
        if not _is_number(value):
            raise EvostyleError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str or (optional and str in args):
        if not isinstance(value, str):
            raise EvostyleError(f"{where} must be a string, got {value!r}")
        return value
    if hint == list[str]:
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise EvostyleError(f"{where} must be a list of strings, got {value!r}")
        return list(value)
    if hint == list[int]:
        value = [value] if _is_number(value) else value
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                           for v in value):
            raise EvostyleError(f"{where} must be a list of integers, got {value!r}")
        return list(value)
    if name == "compile":
        if not isinstance(value, bool) and value != "auto":
            raise EvostyleError(f'{where} must be true, false or "auto", got {value!r}')
        return value
    if name == "mutation":
        if _is_number(value):
            return float(value)
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) for v in value):
            return [float(v) for v in value]
        raise EvostyleError(f"{where} must be a number or [low, high], got {value!r}")
    if name == "reference_point":
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) for v in value):
            return [float(v) for v in value]
        raise EvostyleError(f"{where} must be [fidelity, diversity], got {value!r}")
    if typing.get_origin(hint) is dict:
        if not isinstance(value, dict):
            raise EvostyleError(f"{where} must be a table, got {value!r}")
        item = typing.get_args(hint)[1]
        for k, v in value.items():  # a boolean is not a number here (true would be 1 degree)
            if item is float and not _is_number(v):
                raise EvostyleError(f"{where}: {k} must be a number, got {v!r}")
            if item == list[float] and not (isinstance(v, (list, tuple)) and len(v) == 2 and all(map(_is_number, v))):
                raise EvostyleError(f"{where}: {k} must be [low, high], two numbers, got {v!r}")
        return {k: [float(x) for x in v] if isinstance(v, (list, tuple)) else float(v) for k, v in value.items()}
    raise TypeError(f"no coercion for {name}: {hint}")  # pragma: no cover - a new annotation


def check_rules(name: str, value, meta) -> None:
    """A setting's own rules: its names, integer range, sign and finiteness."""
    key = name.replace("_", "-")
    if meta["choices"] is not None and value is not None:
        valid = choices(meta["choices"])
        for v in value if isinstance(value, list) else [value]:
            if v not in valid:
                raise unknown(meta["choices"], v, valid)
    if isinstance(value, int) and not isinstance(value, bool) and meta["low"] is not None:
        if not meta["low"] <= value <= meta["high"]:
            spellings = (name, *meta["aliases"])  # say each way it may be given, as a user may know only one
            what = f"{name} ({', '.join(map(flag, spellings))})" if len(spellings) > 1 else name
            raise EvostyleError(f"{what} must be an integer in [{meta['low']:,}, {meta['high']:,}], got {value}")
    if isinstance(value, float) and meta["nonnegative"] and not (value >= 0 and math.isfinite(value)):
        raise EvostyleError(f"{key} must be finite and >= 0, got {value}")
    if isinstance(value, float) and meta["positive"] and not (value > 0 and math.isfinite(value)):
        raise EvostyleError(f"{key} must be a positive number, got {value}")


def check_combinations(cfg: SearchConfig) -> None:
    """The rules between settings, and the ones a whole section's owner defines."""
    from evostyle.de import check_de_settings
    from evostyle.search.optimizers import OPTIMIZERS
    r, de, sp, tr, sc = cfg.run, cfg.de, cfg.space, cfg.transfer, cfg.scoring
    # the de section's own rules hold whichever optimiser runs (the search itself draws the initial
    # population by ``init``); the optimiser adds the rules of its combination (objective kind,
    # strategies it takes, the population its strategy needs)
    check_de_settings("best1bin" if de.strategy == "auto" else de.strategy, de.mutation, de.recombination,
                      de.maxiter, de.init, de.boundary)
    OPTIMIZERS.get(de.optimizer).check(cfg)
    if "noise" in sp.search and tr.image_init == "noise":
        raise EvostyleError("search group noise varies the noise added to a content start; use "
                            f"{flag('image_init', 'content')} (or content+noise) with it")
    if tr.scales:
        from evostyle.transfer.engine import coarse_scales, share_steps
        share_steps(tr.steps, len(coarse_scales(tr.scales, tr.size)) + 1)
    for key, names in (("search", sp.search), ("style_layers", tr.style_layers)):
        twice = sorted({n for n in names if list(names).count(n) > 1})
        if twice:
            raise EvostyleError(f"{key.replace('_', '-')} lists {', '.join(twice)} more than once; give each once")
    if not tr.style_layers:
        raise EvostyleError("style-layers is empty; name at least one layer, e.g. relu1_1")
    if not r.style:
        raise EvostyleError(f"at least one style image ({flag('style')}) is needed")
    for key, value in (("content", r.content), ("weights", r.weights), ("device", r.device),
                       *(("style", v) for v in r.style)):
        if not value.strip():
            what = "path" if key != "device" else "device"
            raise EvostyleError(f"{flag(key, python='')} is an empty string; give a {what}")
    if r.executor != "local" or r.ray_address is not None or r.ray_actors is not None:
        from evostyle.search.executors import EXECUTORS
        EXECUTORS.get(r.executor).check(cfg)  # e.g. Ray installed, Ray settings only with Ray
    if sc.reference_point is not None and not all(math.isfinite(v) for v in sc.reference_point):
        raise EvostyleError(f"reference-point must be two finite numbers, got {sc.reference_point}")
    tr.to_transfer().validate()  # the transfer's own rules (names, layers, weights, lr, steps), in one place
