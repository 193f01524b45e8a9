"""A search's settings, declared: five sections of typed fields, each with its default, help and rules.

Each field's annotation and metadata are the one description of a setting: they drive the type check
of a config file, the command-line flag (``--name-with-dashes``), its help text and its validation
(:mod:`evostyle.search.validation`), so a setting is added in one place. Every setting's name is
unique across the sections. Reading configs: :mod:`evostyle.search.config`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from evostyle.errors import unknown
from evostyle.search.scoring import DIVERSITY_METRICS, ScoreConfig
from evostyle.seeding import SEED_MAX
from evostyle.style.rotations import DEFAULT_ROTATION_MODE
from evostyle.transfer.config import TransferConfig

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

SAVE_IMAGES = ("all", "best")
"""Which outputs a search saves as JPEG under images/: every candidate's, or only each generation's best
and the candidates on the front when they are evaluated."""
RESUME_MAY_CHANGE = ("maxiter", "executor", "ray_address", "ray_actors")
"""The settings a resume may change: ``maxiter`` moves the run's end (extending it); the executor's
say where the work runs, not what it computes."""


def setting(
    default: Any = dataclasses.MISSING,
    *,
    factory: Callable | None = None,
    help: str,
    choices: str | None = None,
    low: int | None = None,
    high: int | None = None,
    positive: bool = False,
    nonnegative: bool = False,
    aliases: tuple[str, ...] = (),
    metavar: str | tuple[str, ...] | None = None,
) -> Any:
    """A config field: its default (or ``factory``), help text and rules. ``choices`` names the kind
    of names it takes, looked up in its registry when validating (:func:`evostyle.search.validation.choices`;
    for a list field it applies to every item); ``low``/``high`` bound an
    integer; ``positive``/``nonnegative`` ask a finite number > 0 / >= 0. ``aliases`` are older
    names a file or flag may still use."""
    meta = {"help": help, "choices": choices, "low": low, "high": high, "positive": positive,
            "nonnegative": nonnegative, "aliases": aliases, "metavar": metavar}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


DEFAULT_SEARCH = ("angles", "mix", "rotation_weight", "perturb", "diversity_loss")
"""The search groups a search varies unless told: per-output angles, the mix of two paintings, how much
of each target turns, and two levers that make a candidate's outputs differ while each keeps the
painting (a perturbed content target, the inner diversity reward). ``noise`` is not among them: at
the default steps its start noise survives as speckle, which every diversity measure rewards
(results/diversity_64/findings.md, "The defaults")."""


@dataclass
class RunSection:
    """Inputs and where a search runs."""

    content: str = setting("sample:cat.jpg", help="content image (sample:NAME is a bundled image)")
    style: list[str] = setting(factory=lambda: ["sample:starry_night.jpg", "sample:great_wave.jpg"],
                               help="style image(s); several are mixed (search group mix)")
    seed: int = setting(0, low=0, high=SEED_MAX, help="seeds the DE, the noise inits and the random-init weights")
    device: str = setting("auto", help="auto | cpu | cuda | cuda:N")
    weights: str = setting("auto", help="auto (ImageNet: torchvision's, else the offline VGG16, else random) | "
                                        "imagenet | offline | random | a weights file (.pt state dict, .onnx, .h5)")
    pool: str = setting("max", choices="pooling", help="VGG pooling")
    save_images: str = setting("all", choices="save-images",
                               help="outputs kept under images/: all candidates', or each generation's best and "
                                    "the front members")
    executor: str = setting("local", choices="executor",
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

    optimizer: str = setting("torch-de", choices="optimizer",
                             help="outer loop (evostyle.search.OPTIMIZERS): our torch-batched DE (GDE3 for a "
                                  "multi-objective search), GDE3, scipy's DE, or a baseline at the same budget: "
                                  "random, sobol (quasi-random), tpe and nsga2 (Optuna's; pip install "
                                  "'evostyle[optuna]')")
    objective: str = setting("scalar", choices="objective",
                             help="scalar: minimise fitness = fidelity - lambda * diversity; pareto: the front of "
                                  "(fidelity, diversity) (GDE3 with torch-de); fidelity is a distance, lower is "
                                  "better")
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
    min_steps: int | None = setting(None, low=1, high=10**9,
                                    help="dehb: the fewest transfer steps a candidate runs (none: a quarter of the "
                                         "steps, the shortest that ranks candidates as the full transfer does; "
                                         "not with --scales, whose scales are the levels)")
    eta: float = setting(3.0, positive=True, help="dehb: the factor between budget levels; a rung promotes 1/eta "
                                                  "of its candidates (> 1)")
    brackets: int | None = setting(None, low=1, high=10**6,
                                   help="dehb: Hyperband brackets to run, its budget in place of population and "
                                        "maxiter (none: one cycle, a bracket per budget level)")


@dataclass
class SpaceSection:
    """What is searched."""

    outputs: int = setting(3, low=1, high=1024, help="K outputs per candidate")
    search: list[str] = setting(factory=lambda: list(DEFAULT_SEARCH), choices="search group",
                                help="parameter groups to search (partial rotation, rotation_weight, is how the "
                                     "searches in docs/rotation.md trade fidelity for diversity)")
    bounds: dict[str, list[float]] = setting(factory=dict, metavar="NAME=LOW,HIGH",
                                             help="bounds of a parameter or group")
    fixed: dict[str, float] = setting(factory=dict, metavar="NAME=VALUE", aliases=("fix",),
                                      help="fix one parameter, e.g. angle_0=0")
    rotation_mode: str = setting(DEFAULT_ROTATION_MODE, choices="rotation mode",
                                 help="how style targets turn (pixel: the painting itself is rotated; "
                                      "docs/rotation.md)")
    shuffle: str = setting("none", choices="shuffle mode", help="shuffle the style feature maps")


@dataclass
class TransferSection:
    """The inner style transfer (its rules are :class:`~evostyle.transfer.TransferConfig`'s)."""

    backbone: str = setting(TransferConfig.backbone, choices="backbone",
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
    scales: list[int] = setting(factory=list, metavar="PX",
                                help="coarse to fine: long sides to optimise at first, rising to --size, the steps "
                                     "shared among them (e.g. --scales 32 64 128; none: one scale; with --optimizer "
                                     "dehb: its budget levels)")
    inner_optimizer: str = setting(TransferConfig.optimizer, help="inner optimiser: adam | lbfgs")
    lr: float | None = setting(TransferConfig.lr, positive=True,
                               help="inner learning rate (none: the inner optimiser's own default)")
    image_init: str = setting(TransferConfig.init, help="start image: content | noise | content+noise")
    init_noise: float = setting(TransferConfig.init_noise, help="noise amplitude of the content+noise init")
    max_batch: int | None = setting(TransferConfig.max_batch,
                                    help="most transfer rows per forward pass (none: a whole generation; halved on "
                                         "out of memory)")
    precision: str = setting(TransferConfig.precision, choices="precision", help="numeric precision")
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

    diversity_metric: str = setting(ScoreConfig.diversity_metric, choices="diversity metric",
                                    help="diversity the objectives use (feature: VGG "
                                         f"{DIVERSITY_METRICS.get('feature').layer}, which leftover start noise "
                                         "inflates less than the pixel distance)")
    diversity_weight: float = setting(1.0, nonnegative=True, help="lambda in fitness = fidelity - lambda * diversity")
    loss_cap: float | None = setting(None, positive=True, help="penalise candidates whose fidelity exceeds this")
    fitness_loss: str = setting("fidelity", choices="fitness loss",
                                help="what the objectives take as fidelity: fidelity (the outputs vs the unrotated "
                                     "painting and the content) or own_target (the own-target loss, loss_score: vs "
                                     "each output's own rotated target)")
    reference_point: list[float] | None = setting(
        None, metavar=("FIDELITY", "DIVERSITY"),
        help="hypervolume reference (default: the unstylised content image's fidelity, diversity 0)")


SECTIONS = {"run": RunSection, "de": DESection, "space": SpaceSection, "transfer": TransferSection,
            "scoring": ScoringSection}


@dataclass
class SearchConfig:
    """Every setting of a search, by section. Defaults give the small demo search on the bundled images.
    Read a setting as ``cfg.de.maxiter``; ``cfg.get("maxiter")`` finds it by name. Made by
    :func:`~evostyle.search.config.make_config`, which validates it
    (:func:`~evostyle.search.validation.validate`)."""

    run: RunSection = field(default_factory=RunSection)
    de: DESection = field(default_factory=DESection)
    space: SpaceSection = field(default_factory=SpaceSection)
    transfer: TransferSection = field(default_factory=TransferSection)
    scoring: ScoringSection = field(default_factory=ScoringSection)

    def get(self, name: str) -> Any:
        """The setting called ``name`` (or one of its aliases), in whichever section holds it."""
        section, f = FIELDS[canonical(name)]
        return getattr(getattr(self, section), f.name)

    def to_dict(self) -> dict:
        """{section: {setting: value}}: JSON-able, and a config file as it stands."""
        return dataclasses.asdict(self)


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


def canonical(name: str) -> str:
    """The setting a name (or one of its aliases) means; an unknown name is the one-line error."""
    name = ALIASES.get(name, name)
    if name not in FIELDS:
        raise unknown("config key", name, sorted(FIELDS))
    return name


def annotation(name: str) -> Any:
    """The type annotation of setting ``name``."""
    section, f = FIELDS[name]
    return HINTS[SECTIONS[section]][f.name]


