"""Search configuration: defaults, TOML files, command-line overrides and validation.

A TOML file holds the same keys as the command-line flags (with ``_`` for ``-``), for example::

    content = "photo.jpg"
    style = ["a.jpg", "b.jpg"]
    outputs = 4
    search = ["angles", "mix"]
    popsize = 12
    maxiter = 10
    [bounds]
    layers = [0.2, 5.0]
    [fixed]
    angle_0 = 0.0

Unknown keys and wrong types are errors that name the key. ``sample:<name>`` names a bundled image
(``cat.jpg``, ``starry_night.jpg``, ``great_wave.jpg``); relative paths in a file are taken relative to
the file when they exist there.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evostyle.errors import EvostyleError, unknown
from evostyle.transfer.config import TransferConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

OPTIMIZERS = ("torch-de", "scipy-de", "random")
"""The outer loop: our torch-batched DE (GDE3 for ``objective = "pareto"``), scipy's DE (scalar only),
or random search at the same budget (the baseline)."""
SAVE_IMAGES = ("all", "best")
"""Which outputs a search saves as JPEG under images/: every candidate's, or only each generation's best
and the candidates on the front when they are evaluated."""
COMPILE_AUTO_MIN_WORK = 100_000
"""``compile = "auto"`` compiles a search on CUDA from this many planned image-steps on, counted in
256 x 256 px images: (maxiter + 1) * popsize * outputs * steps * H * W / 256**2. Measured on an H100
in two search races (docs/performance.md): compiling cost 14-19 s once per search and saved
0.13-0.19 ms per 256 px image-step, so it pays from about 100 000 image-steps on. Checked again
with CUDA graphs (``compile_mode`` auto) and a faster eager step: 12.4 s and 0.12 ms, 103 000."""


@dataclass
class SearchConfig:
    """Every setting of a search. Defaults give the small demo search on the bundled images."""

    content: str = "sample:cat.jpg"
    style: list = field(default_factory=lambda: ["sample:starry_night.jpg", "sample:great_wave.jpg"])
    # outer loop
    optimizer: str = "torch-de"
    objective: str = "scalar"
    strategy: str = "auto"
    """A DE strategy name, or "auto": best1bin for the scalar objective, rand1bin for GDE3 (pareto)."""
    popsize: int = 6
    maxiter: int = 3
    mutation: Any = (0.5, 1.0)
    recombination: float = 0.7
    init: str = "latinhypercube"
    tol: float = 0.0
    atol: float = 0.0
    boundary: str = "resample"
    # what is searched
    outputs: int = 3
    search: list = field(default_factory=lambda: ["angles", "mix", "rotation_weight"])
    """Partial rotation (rotation_weight) is how the searches in docs/rotation.md trade fidelity for
    diversity: their best candidates rotate by 10-40%."""
    bounds: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    rotation_mode: str = "rectified"
    """The default follows docs/rotation.md: no negative Gram entries at any angle and the best
    fidelity/diversity trade-off of the modes measured there (results/reachability)."""
    shuffle: str = "none"
    # inner transfer: TransferConfig's defaults, except a small, fast size and step count
    measure: str = TransferConfig.measure
    style_layers: list = field(default_factory=lambda: list(TransferConfig.style_layers))
    content_layer: str = TransferConfig.content_layer
    content_weight: float = TransferConfig.content_weight
    style_weight: float = TransferConfig.style_weight
    tv_weight: float = TransferConfig.tv_weight
    size: int = 64
    steps: int = 30
    inner_optimizer: str = TransferConfig.optimizer
    lr: float = TransferConfig.lr
    image_init: str = TransferConfig.init
    init_noise: float = TransferConfig.init_noise
    max_batch: Any = TransferConfig.max_batch
    precision: str = TransferConfig.precision
    compile: Any = "auto"
    """true, false or "auto": compile on CUDA when the search is long enough to pay for it (see
    COMPILE_AUTO_MIN_WORK and :func:`compile_choice`); never on the CPU, where it costs a minute and
    saves little."""
    compile_mode: str = TransferConfig.compile_mode
    """torch.compile's mode when the search compiles (see TransferConfig.compile_mode)."""
    # scoring
    diversity_metric: str = "pixel"
    diversity_weight: float = 1.0
    loss_cap: Any = None
    fitness_loss: str = "fidelity"
    """The objectives' quality: "fidelity" (vs the unrotated painting) or "own_target" (loss_score)."""
    reference_point: Any = None
    """[quality, diversity] bounding the hypervolume; None: the unstylised content image's quality and
    diversity 0, computed when the run starts (recorded in config.json)."""
    save_images: str = "all"
    # run
    seed: int = 0
    device: str = "auto"
    weights: str = "auto"
    pool: str = "max"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["mutation"] = list(self.mutation) if isinstance(self.mutation, (list, tuple)) else self.mutation
        return d


_TYPES = {f.name: f for f in dataclasses.fields(SearchConfig)}
_NUMBER_KEYS = {"recombination", "tol", "atol", "content_weight", "style_weight", "tv_weight", "lr",
                "init_noise", "diversity_weight"}
_INT_KEYS = {"popsize", "maxiter", "outputs", "size", "steps", "seed"}
_STR_KEYS = {"content", "optimizer", "objective", "strategy", "init", "boundary", "rotation_mode", "shuffle",
             "measure", "content_layer", "inner_optimizer", "image_init", "precision", "diversity_metric", "device",
             "weights", "pool", "compile_mode", "fitness_loss", "save_images"}
_LIST_STR_KEYS = {"style", "search", "style_layers"}


def _check_type(key: str, value):
    where = f"config key {key!r}"
    if key in _INT_KEYS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise EvostyleError(f"{where} must be an integer, got {value!r}")
    elif key in _NUMBER_KEYS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EvostyleError(f"{where} must be a number, got {value!r}")
        value = float(value)
    elif key in _STR_KEYS:
        if not isinstance(value, str):
            raise EvostyleError(f"{where} must be a string, got {value!r}")
    elif key in _LIST_STR_KEYS:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise EvostyleError(f"{where} must be a list of strings, got {value!r}")
    elif key == "compile":
        if not isinstance(value, bool) and value != "auto":
            raise EvostyleError(f'{where} must be true, false or "auto", got {value!r}')
    elif key in ("bounds", "fixed"):
        if not isinstance(value, dict):
            raise EvostyleError(f"{where} must be a table, got {value!r}")
    elif key == "mutation":
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
            isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value))
        if not ok:
            raise EvostyleError(f"{where} must be a number or [low, high], got {value!r}")
    elif key in ("max_batch",):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise EvostyleError(f"{where} must be an integer, got {value!r}")
    elif key == "loss_cap":
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise EvostyleError(f"{where} must be a number, got {value!r}")
    elif key == "reference_point":
        if value is not None and not (isinstance(value, (list, tuple)) and len(value) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            raise EvostyleError(f"{where} must be [quality, diversity], got {value!r}")
        value = None if value is None else [float(v) for v in value]
    return value


def resolved_strategy(cfg: SearchConfig) -> str:
    """The DE strategy a search runs: ``auto`` is best1bin for the scalar objective, rand1bin for GDE3."""
    if cfg.strategy != "auto":
        return cfg.strategy
    from evostyle.search.scoring import OBJECTIVES
    return "rand1bin" if OBJECTIVES.get(cfg.objective).multi else "best1bin"


def compile_choice(cfg: SearchConfig, device, hw: tuple[int, int]) -> tuple[bool, str]:
    """Whether the search compiles its inner step, and why (a sentence for the run record).

    ``device`` is the search's torch.device, ``hw`` the outputs' (height, width) in px.
    """
    if isinstance(cfg.compile, bool):
        return cfg.compile, f"compile = {str(cfg.compile).lower()} in the config"
    if device.type != "cuda":
        return False, "auto: not on CUDA"
    work = (cfg.maxiter + 1) * cfg.popsize * cfg.outputs * cfg.steps * hw[0] * hw[1] / 256**2
    use = work >= COMPILE_AUTO_MIN_WORK
    return use, (f"auto: {work:,.0f} planned 256 px image-steps, {'at least' if use else 'under'} "
                 f"{COMPILE_AUTO_MIN_WORK:,}")


def load_toml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EvostyleError(f"config file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EvostyleError(f"config file {path} is not valid TOML: {exc}") from None
    def near_file(p):  # a relative image path that exists beside the file is taken from there
        return str(path.parent / p) if isinstance(p, str) and not Path(p).is_absolute() \
            and (path.parent / p).exists() else p
    if "content" in data:
        data["content"] = near_file(data["content"])
    if isinstance(data.get("style"), list):
        data["style"] = [near_file(s) for s in data["style"]]
    elif "style" in data:  # one style as a plain string, which the config also accepts
        data["style"] = near_file(data["style"])
    return data


def make_config(file_values: dict | None = None, overrides: dict | None = None) -> SearchConfig:
    """Defaults <- TOML values <- command-line overrides (None means "not given")."""
    values = {}
    for source in (file_values or {}, {k: v for k, v in (overrides or {}).items() if v is not None}):
        for key, value in source.items():
            if key not in _TYPES:
                raise unknown("config key", key, sorted(_TYPES))
            values[key] = _check_type(key, value)
    return validate(SearchConfig(**values))


def validate(cfg: SearchConfig) -> SearchConfig:
    """Cheap checks of values and names, before anything is loaded or created."""
    from evostyle.de import BOUNDARY_MODES, GDE3_STRATEGIES, INITS, parse_strategy
    from evostyle.network.device import PRECISIONS
    from evostyle.network.features import POOLS, check_layers
    from evostyle.search.scoring import DIVERSITY_METRICS, FITNESS_LOSSES, OBJECTIVES
    from evostyle.search.space import SEARCH_GROUPS
    from evostyle.style.measures import MEASURES
    from evostyle.style.rotations import ROTATION_MODES
    from evostyle.style.targets import SHUFFLE_MODES
    from evostyle.transfer.config import COMPILE_MODES
    from evostyle.transfer.config import INITS as IMAGE_INITS
    from evostyle.transfer.config import OPTIMIZERS as INNER_OPTIMIZERS

    def choice(name, value, valid):
        if value not in valid:
            raise unknown(name, value, valid)
    choice("optimizer", cfg.optimizer, OPTIMIZERS)
    multi = OBJECTIVES.get(cfg.objective).multi
    if cfg.strategy != "auto":
        parse_strategy(cfg.strategy)
    if multi and cfg.optimizer == "scipy-de":
        raise EvostyleError(f"scipy-de has no multi-objective mode; use --optimizer torch-de (GDE3) or random "
                            f"with --objective {cfg.objective}")
    if multi and cfg.optimizer == "torch-de" and resolved_strategy(cfg) not in GDE3_STRATEGIES:
        raise EvostyleError(f"objective {cfg.objective!r} runs GDE3, which takes strategy "
                            f"{', '.join(GDE3_STRATEGIES)}; got {cfg.strategy!r}")
    choice("fitness loss", cfg.fitness_loss, FITNESS_LOSSES)
    choice("save-images", cfg.save_images, SAVE_IMAGES)
    if cfg.reference_point is not None and not all(math.isfinite(v) for v in cfg.reference_point):
        raise EvostyleError(f"reference-point must be two finite numbers, got {cfg.reference_point}")
    choice("init", cfg.init, INITS)
    choice("boundary mode", cfg.boundary, BOUNDARY_MODES)
    choice("rotation mode", cfg.rotation_mode, ROTATION_MODES)
    choice("shuffle mode", cfg.shuffle, SHUFFLE_MODES)
    choice("measure", cfg.measure, MEASURES)
    choice("diversity metric", cfg.diversity_metric, DIVERSITY_METRICS)
    choice("inner optimizer", cfg.inner_optimizer, INNER_OPTIMIZERS)
    choice("image init", cfg.image_init, IMAGE_INITS)
    choice("pooling", cfg.pool, POOLS)
    choice("precision", cfg.precision, PRECISIONS)
    choice("compile mode", cfg.compile_mode, COMPILE_MODES)
    for g in cfg.search:
        choice("search group", g, SEARCH_GROUPS)
    for key, names in (("search", cfg.search), ("style_layers", cfg.style_layers)):
        twice = sorted({n for n in names if list(names).count(n) > 1})
        if twice:
            raise EvostyleError(f"{key.replace('_', '-')} lists {', '.join(twice)} more than once; give each once")
    if not cfg.style_layers:
        raise EvostyleError("style-layers is empty; name at least one layer, e.g. relu1_1")
    check_layers(list(cfg.style_layers) + [cfg.content_layer])
    if not cfg.style:
        raise EvostyleError("at least one --style image is needed")
    for key, value in (("content", cfg.content), ("weights", cfg.weights), ("device", cfg.device),
                       *(("style", v) for v in cfg.style)):
        if not value.strip():
            raise EvostyleError(f"--{key} is an empty string; give a {'path' if key != 'device' else 'device'}")
    for key, low, high in (("seed", 0, 2**63 - 1), ("outputs", 1, 1024), ("steps", 1, 10**7),
                           ("popsize", 5, 10**6), ("maxiter", 0, 10**6)):
        v = getattr(cfg, key)
        if not low <= v <= high:
            what = "popsize (the population size)" if key == "popsize" else key
            raise EvostyleError(f"{what} must be an integer in [{low:,}, {high:,}], got {v}")
    for key in ("content_weight", "style_weight", "tv_weight", "diversity_weight", "init_noise", "tol", "atol"):
        v = getattr(cfg, key)
        if not (v >= 0 and math.isfinite(v)):
            raise EvostyleError(f"{key.replace('_', '-')} must be finite and >= 0, got {v}")
    if not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        raise EvostyleError(f"lr must be a positive number, got {cfg.lr}")
    if not 0 <= cfg.recombination <= 1:
        raise EvostyleError(f"recombination must be in [0, 1], got {cfg.recombination}")
    m = cfg.mutation
    if isinstance(m, (list, tuple)):
        if not (0 <= m[0] <= m[1] <= 2):
            raise EvostyleError(f"mutation must be [low, high] with 0 <= low <= high <= 2, got {list(m)}")
    elif not 0 <= m <= 2:
        raise EvostyleError(f"mutation must be in [0, 2], got {m}")
    if not 8 <= cfg.size <= 8192:
        raise EvostyleError(f"size must be between 8 and 8192 px, got {cfg.size}")
    if cfg.max_batch is not None and cfg.max_batch < 1:
        raise EvostyleError(f"max-batch must be >= 1, got {cfg.max_batch}")
    if cfg.loss_cap is not None and not (cfg.loss_cap > 0 and math.isfinite(cfg.loss_cap)):
        raise EvostyleError(f"loss-cap must be a positive number, got {cfg.loss_cap}")
    if cfg.optimizer == "scipy-de" and cfg.boundary != "resample":
        raise EvostyleError("scipy-de only supports boundary 'resample'")
    return cfg
