"""A search's configuration: five sections of typed settings, from defaults, a file and the flags.

:class:`SearchConfig` nests :class:`RunSection` (images, seed, device, weights), :class:`DESection` (the
outer loop), :class:`SpaceSection` (what is searched), :class:`TransferSection` (the inner transfer)
and :class:`ScoringSection` (fidelity, diversity, the objectives). Each field's annotation and
metadata are the one description of a setting: they drive the type check of a config file, the
command-line flag (``--name-with-dashes``), its help text and its validation, so a setting is added in
one place. Every setting's name is unique across the sections, so a file may be flat::

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

import dataclasses
import json
import math
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from evostyle.errors import EvostyleError, unknown
from evostyle.style.rotations import DEFAULT_ROTATION_MODE
from evostyle.transfer.config import TransferConfig

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

    import torch

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

OPTIMIZERS = ("torch-de", "scipy-de", "random")
"""The outer loop: our torch-batched DE (GDE3 for a multi-objective ``objective``), scipy's DE (scalar
only), or random search at the same budget (the baseline)."""
SAVE_IMAGES = ("all", "best")
"""Which outputs a search saves as JPEG under images/: every candidate's, or only each generation's best
and the candidates on the front when they are evaluated."""
RESUME_MAY_CHANGE = ("maxiter", "executor", "ray_address", "ray_actors")
"""The settings a resume may change: ``maxiter`` moves the run's end (extending it); the executor's
say where the work runs, not what it computes."""
COMPILE_AUTO_MIN_WORK = 100_000
"""``compile = "auto"`` compiles a search on CUDA from this many planned image-steps on, counted in
256 x 256 px images: (maxiter + 1) * population * outputs * steps * H * W / 256**2; compiling pays from
about there (docs/performance.md has the measurement)."""


def _names(what: str):
    """The valid names of ``what``, looked up when validating (registries can grow at run time)."""
    def get():
        from evostyle.network.backbones import BACKBONES, POOLS
        from evostyle.network.device import PRECISIONS
        from evostyle.search.executors import EXECUTORS
        from evostyle.search.scoring import DIVERSITY_METRICS, FITNESS_LOSSES, OBJECTIVES
        from evostyle.search.space import SEARCH_GROUPS
        from evostyle.style.rotations import ROTATION_MODES
        from evostyle.style.targets import SHUFFLE_MODES
        return {"optimizer": OPTIMIZERS, "objective": OBJECTIVES, "search group": SEARCH_GROUPS,
                "rotation mode": ROTATION_MODES, "shuffle mode": SHUFFLE_MODES, "precision": PRECISIONS,
                "diversity metric": DIVERSITY_METRICS, "fitness loss": FITNESS_LOSSES, "save-images": SAVE_IMAGES,
                "pooling": POOLS, "executor": EXECUTORS, "backbone": ("auto", *BACKBONES)}[what]
    get.kind = what
    return get


def setting(
    default: Any = dataclasses.MISSING,
    *,
    factory: Callable | None = None,
    help: str,
    choices: Callable | None = None,
    low: int | None = None,
    high: int | None = None,
    positive: bool = False,
    nonnegative: bool = False,
    aliases: tuple[str, ...] = (),
    metavar: str | tuple[str, ...] | None = None,
) -> Any:
    """A config field: its default (or ``factory``), help text and rules. ``choices`` is a
    :func:`_names` lookup (for a list field it applies to every item); ``low``/``high`` bound an
    integer; ``positive``/``nonnegative`` ask a finite number > 0 / >= 0. ``aliases`` are older
    names a file or flag may still use."""
    meta = {"help": help, "choices": choices, "low": low, "high": high, "positive": positive,
            "nonnegative": nonnegative, "aliases": aliases, "metavar": metavar}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RunSection:
    """Inputs and where a search runs."""

    content: str = setting("sample:cat.jpg", help="content image (sample:NAME is a bundled image)")
    style: list[str] = setting(factory=lambda: ["sample:starry_night.jpg", "sample:great_wave.jpg"],
                               help="style image(s); several are mixed (search group mix)")
    seed: int = setting(0, low=0, high=2**63 - 1, help="seeds the DE, the noise inits and the random-init weights")
    device: str = setting("auto", help="auto | cpu | cuda | cuda:N")
    weights: str = setting("auto", help="auto (ImageNet: torchvision's, else the offline VGG16, else random) | "
                                        "imagenet | offline | random | a weights file (.pt state dict, .onnx, .h5)")
    pool: str = setting("max", choices=_names("pooling"), help="VGG pooling")
    save_images: str = setting("all", choices=_names("save-images"),
                               help="outputs kept under images/: all candidates', or each generation's best and "
                                    "the front members")
    executor: str = setting("local", choices=_names("executor"),
                            help="where a generation's transfers run: local (this process, one device) or ray (Ray "
                                 "actors, one per GPU of a machine or cluster, else per CPU; pip install "
                                 "'evostyle[ray]'); the results are the same")
    ray_address: str | None = setting(None, help="with --executor ray: the cluster to join ('auto', or "
                                                 "ray://HEAD:10001); none: start Ray on this machine")
    ray_actors: int | None = setting(None, low=1, high=4096,
                                     help="with --executor ray: how many actors (none: one per GPU of the cluster, "
                                          "or one per CPU where it has no GPU)")


@dataclass
class DESection:
    """The outer loop (differential evolution, GDE3 or random search)."""

    optimizer: str = setting("torch-de", choices=_names("optimizer"),
                             help="outer loop: our torch-batched DE, scipy's DE, or random search (the baseline, "
                                  "same budget)")
    objective: str = setting("scalar", choices=_names("objective"),
                             help="scalar: minimise fitness = quality - lambda * diversity; pareto: the front of "
                                  "(quality, diversity) (GDE3 with torch-de)")
    strategy: str = setting("auto", help="DE strategy (best1bin, rand1exp, ...); auto: best1bin, rand1bin for a "
                                         "multi-objective search")
    population: int = setting(6, low=5, high=10**6, aliases=("popsize",),
                              help="population size P: the total, not scipy's multiplier (evostyle.de's popsize)")
    maxiter: int = setting(2, help="generations after the initial population")
    mutation: float | list[float] = setting(factory=lambda: [0.5, 1.0], metavar="F",
                                            help="DE's F in [0, 2], or LOW HIGH to dither it per generation")
    recombination: float = setting(0.7, help="crossover probability CR in [0, 1]")
    init: str = setting("latinhypercube", help="initial population: latinhypercube | sobol | halton | random")
    tol: float = setting(0.0, nonnegative=True, help="stop when std(E) <= atol + tol |mean(E)| (scipy's rule)")
    atol: float = setting(0.0, nonnegative=True, help="see tol")
    boundary: str = setting("resample", help="out-of-bounds trial entries: resample (scipy) or reflect")


@dataclass
class SpaceSection:
    """What is searched."""

    outputs: int = setting(3, low=1, high=1024, help="K outputs per candidate")
    search: list[str] = setting(factory=lambda: ["angles", "mix", "rotation_weight"], choices=_names("search group"),
                                help="parameter groups to search (partial rotation, rotation_weight, is how the "
                                     "searches in docs/rotation.md trade fidelity for diversity)")
    bounds: dict[str, list[float]] = setting(factory=dict, metavar="NAME=LOW,HIGH",
                                             help="bounds of a parameter or group")
    fixed: dict[str, float] = setting(factory=dict, metavar="NAME=VALUE", aliases=("fix",),
                                      help="fix one parameter, e.g. angle_0=0")
    rotation_mode: str = setting(DEFAULT_ROTATION_MODE, choices=_names("rotation mode"),
                                 help="how style targets turn (pixel: the painting itself is rotated; "
                                      "docs/rotation.md)")
    shuffle: str = setting("none", choices=_names("shuffle mode"), help="shuffle the style feature maps")


@dataclass
class TransferSection:
    """The inner style transfer (its rules are :class:`~evostyle.transfer.TransferConfig`'s)."""

    backbone: str = setting(TransferConfig.backbone, choices=_names("backbone"),
                            help="feature network: vgg19 | vgg16 | auto (the weights' own: vgg19 for imagenet and "
                                 "random, vgg16 for offline)")
    measure: str = setting(TransferConfig.measure, help="style statistic compared: gram | euclidean | meanstd")
    style_layers: list[str] = setting(factory=lambda: list(TransferConfig.style_layers),
                                      help="layers of the style loss")
    content_layer: str = setting(TransferConfig.content_layer, help="layer of the content loss")
    content_weight: float = setting(TransferConfig.content_weight, help="weight of the content term")
    style_weight: float = setting(TransferConfig.style_weight, help="weight of the style term")
    tv_weight: float = setting(TransferConfig.tv_weight, help="weight of the total variation")
    size: int = setting(128, low=8, high=8192, help="long side of the outputs in px")
    steps: int = setting(32, help="inner optimisation steps per candidate")
    inner_optimizer: str = setting(TransferConfig.optimizer, help="inner optimiser: adam | lbfgs")
    lr: float = setting(TransferConfig.lr, help="inner learning rate")
    image_init: str = setting(TransferConfig.init, help="start image: content | noise | content+noise")
    init_noise: float = setting(TransferConfig.init_noise, help="noise amplitude of the content+noise init")
    max_batch: int | None = setting(TransferConfig.max_batch,
                                    help="most transfer rows per forward pass (none: a whole generation; halved on "
                                         "out of memory)")
    precision: str = setting(TransferConfig.precision, choices=_names("precision"), help="numeric precision")
    compile: bool | Literal["auto"] = setting(
        "auto", help="torch.compile the inner step: auto (on CUDA for searches long enough to repay the "
                     "compilation), on or off; a bare --compile means on")
    compile_mode: str = setting(TransferConfig.compile_mode,
                                help="torch.compile's mode (reduce-overhead adds CUDA graphs; auto: reduce-overhead "
                                     "on CUDA, default elsewhere)")

    def to_transfer(self, compile_: bool = False) -> TransferConfig:
        """The :class:`~evostyle.transfer.TransferConfig` these settings mean (``compile_`` resolved)."""
        return TransferConfig(backbone=self.backbone, style_layers=tuple(self.style_layers),
                              content_layer=self.content_layer, measure=self.measure,
                              content_weight=self.content_weight, style_weight=self.style_weight,
                              tv_weight=self.tv_weight, steps=self.steps,
                              optimizer=self.inner_optimizer, lr=self.lr, init=self.image_init,
                              init_noise=self.init_noise, max_batch=self.max_batch, precision=self.precision,
                              compile=compile_, compile_mode=self.compile_mode)


@dataclass
class ScoringSection:
    """Fidelity, diversity and the objectives built from them."""

    diversity_metric: str = setting("pixel", choices=_names("diversity metric"),
                                    help="diversity the objectives use")
    diversity_weight: float = setting(1.0, nonnegative=True, help="lambda in fitness = quality - lambda * diversity")
    loss_cap: float | None = setting(None, positive=True, help="penalise candidates whose quality exceeds this")
    fitness_loss: str = setting("fidelity", choices=_names("fitness loss"),
                                help="the objectives' quality: fidelity (the outputs vs the unrotated painting and "
                                     "the content) or own_target (vs each output's own rotated target)")
    reference_point: list[float] | None = setting(
        None, metavar=("QUALITY", "DIVERSITY"),
        help="hypervolume reference (default: the unstylised content image's quality, diversity 0)")


SECTIONS = {"run": RunSection, "de": DESection, "space": SpaceSection, "transfer": TransferSection,
            "scoring": ScoringSection}


@dataclass
class SearchConfig:
    """Every setting of a search, by section. Defaults give the small demo search on the bundled images.
    Read a setting as ``cfg.de.maxiter``; ``cfg.get("maxiter")`` finds it by name."""

    run: RunSection = field(default_factory=RunSection)
    de: DESection = field(default_factory=DESection)
    space: SpaceSection = field(default_factory=SpaceSection)
    transfer: TransferSection = field(default_factory=TransferSection)
    scoring: ScoringSection = field(default_factory=ScoringSection)

    def get(self, name: str) -> Any:
        """The setting called ``name`` (or one of its aliases), in whichever section holds it."""
        section, f = FIELDS[_canonical(name)]
        return getattr(getattr(self, section), f.name)

    def to_dict(self) -> dict:
        """{section: {setting: value}}: JSON-able, and a config file as it stands."""
        return dataclasses.asdict(self)

    def validate(self) -> SearchConfig:
        """Check every setting and the rules between them, before anything is loaded or written."""
        for name, (section, f) in FIELDS.items():
            _check_rules(name, getattr(getattr(self, section), f.name), f.metadata)
        _check_combinations(self)
        return self


def _fields() -> dict[str, tuple[str, dataclasses.Field]]:
    out = {}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f.name not in out and f.name not in SECTIONS, f.name  # names are unique across sections
            out[f.name] = (section, f)
    return out


FIELDS = _fields()
"""setting name -> (section, dataclass field)."""
ALIASES = {a: name for name, (_, f) in FIELDS.items() for a in f.metadata["aliases"]}
HINTS = {cls: typing.get_type_hints(cls) for cls in SECTIONS.values()}


def _canonical(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in FIELDS:
        raise unknown("config key", name, sorted(FIELDS))
    return name


def annotation(name: str) -> Any:
    section, f = FIELDS[name]
    return HINTS[SECTIONS[section]][f.name]


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
        raise EvostyleError(f"{where} must be [quality, diversity], got {value!r}")
    if typing.get_origin(hint) is dict:
        if not isinstance(value, dict):
            raise EvostyleError(f"{where} must be a table, got {value!r}")
        return dict(value)
    raise TypeError(f"no coercion for {name}: {hint}")  # pragma: no cover - a new annotation


def _check_rules(name: str, value, meta) -> None:
    """A setting's own rules: its names, integer range, sign and finiteness."""
    key = name.replace("_", "-")
    if meta["choices"] is not None and value is not None:
        valid = meta["choices"]()
        for v in value if isinstance(value, list) else [value]:
            if v not in valid:
                raise unknown(meta["choices"].kind, v, valid)
    if isinstance(value, int) and not isinstance(value, bool) and meta["low"] is not None:
        if not meta["low"] <= value <= meta["high"]:
            what = "population (--population, --popsize)" if name == "population" else name
            raise EvostyleError(f"{what} must be an integer in [{meta['low']:,}, {meta['high']:,}], got {value}")
    if isinstance(value, float) and meta["nonnegative"] and not (value >= 0 and math.isfinite(value)):
        raise EvostyleError(f"{key} must be finite and >= 0, got {value}")
    if isinstance(value, float) and meta["positive"] and not (value > 0 and math.isfinite(value)):
        raise EvostyleError(f"{key} must be a positive number, got {value}")


def _check_combinations(cfg: SearchConfig) -> None:
    """The rules between settings, and the ones a whole section's owner defines."""
    from evostyle.de import GDE3_STRATEGIES, check_de_settings
    from evostyle.search.scoring import OBJECTIVES
    r, de, sp, tr, sc = cfg.run, cfg.de, cfg.space, cfg.transfer, cfg.scoring
    multi = OBJECTIVES.get(de.objective).multi
    if multi and de.optimizer == "scipy-de":
        raise EvostyleError(f"scipy-de has no multi-objective mode; use --optimizer torch-de (GDE3) or random "
                            f"with --objective {de.objective}")
    if multi and de.optimizer == "torch-de" and resolved_strategy(cfg) not in GDE3_STRATEGIES:
        raise EvostyleError(f"objective {de.objective!r} runs GDE3, which takes strategy "
                            f"{', '.join(GDE3_STRATEGIES)}; got {de.strategy!r}")
    if de.optimizer == "scipy-de" and de.boundary != "resample":
        raise EvostyleError("scipy-de only supports boundary 'resample'")
    check_de_settings(resolved_strategy(cfg), de.mutation, de.recombination, de.maxiter, de.init, de.boundary)
    for key, names in (("search", sp.search), ("style_layers", tr.style_layers)):
        twice = sorted({n for n in names if list(names).count(n) > 1})
        if twice:
            raise EvostyleError(f"{key.replace('_', '-')} lists {', '.join(twice)} more than once; give each once")
    if not tr.style_layers:
        raise EvostyleError("style-layers is empty; name at least one layer, e.g. relu1_1")
    if not r.style:
        raise EvostyleError("at least one --style image is needed")
    for key, value in (("content", r.content), ("weights", r.weights), ("device", r.device),
                       *(("style", v) for v in r.style)):
        if not value.strip():
            raise EvostyleError(f"--{key} is an empty string; give a {'path' if key != 'device' else 'device'}")
    if r.executor != "local" or r.ray_address is not None or r.ray_actors is not None:
        from evostyle.search.executors import EXECUTORS
        EXECUTORS.get(r.executor).check(cfg)  # e.g. Ray installed, Ray settings only with Ray
    if sc.reference_point is not None and not all(math.isfinite(v) for v in sc.reference_point):
        raise EvostyleError(f"reference-point must be two finite numbers, got {sc.reference_point}")
    tr.to_transfer().validate()  # the transfer's own rules (names, layers, weights, lr, steps), in one place


def resolved_strategy(cfg: SearchConfig) -> str:
    """The DE strategy a search runs: ``auto`` is best1bin for a scalar objective, rand1bin for GDE3."""
    if cfg.de.strategy != "auto":
        return cfg.de.strategy
    from evostyle.search.scoring import OBJECTIVES
    return "rand1bin" if OBJECTIVES.get(cfg.de.objective).multi else "best1bin"


def compile_choice(cfg: SearchConfig, device: torch.device | str, hw: tuple[int, int]) -> tuple[bool, str]:
    """Whether the search compiles its inner step, and why (a sentence for the run record).

    ``device`` is the search's torch.device, ``hw`` the outputs' (height, width) in px.
    """
    c = cfg.transfer.compile
    if isinstance(c, bool):
        return c, f"compile = {str(c).lower()} in the config"
    if device.type != "cuda":
        return False, "auto: not on CUDA"
    work = ((cfg.de.maxiter + 1) * cfg.de.population * cfg.space.outputs * cfg.transfer.steps
            * hw[0] * hw[1] / 256**2)
    use = work >= COMPILE_AUTO_MIN_WORK
    return use, (f"auto: {work:,.0f} planned 256 px image-steps, {'at least' if use else 'under'} "
                 f"{COMPILE_AUTO_MIN_WORK:,}")


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
            yield from ((_canonical(k), k, v) for k, v in value.items())
        else:
            yield _canonical(key), key, value


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
    return SearchConfig(**{s: SECTIONS[s](**v) for s, v in sections.items()}).validate()
