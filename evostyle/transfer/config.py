"""Settings of the inner optimisation (:class:`TransferConfig`) and the names they take."""

from __future__ import annotations

import math
from dataclasses import dataclass

from evostyle.errors import EvostyleError, unknown
from evostyle.network.backbones import GATYS_CONTENT_LAYER, GATYS_STYLE_LAYERS
from evostyle.transfer.optimisers import INNER_OPTIMIZERS, learning_rate

INITS = ("content", "noise", "content+noise")
COMPILE_MODES = ("auto", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
"""torch.compile's modes, and ``auto`` (see :func:`resolve_compile_mode`)."""
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")
"""The modes that record CUDA graphs (on CUDA)."""


LR_MAX = 10.0
"""The largest learning rate accepted: the images live on [0, 1], so a step of ten times their whole
range is already meaningless, and far above it (1e300) Adam's update overflows to NaN in every row."""


@dataclass
class TransferConfig:
    """Settings of the inner optimisation (units: weights are dimensionless, lr in [0,1] intensity).

    The defaults here are the transfer's defaults everywhere: the transfer command line shows and uses
    them, and the search's transfer section starts from them.
    """

    backbone: str = "auto"
    """The feature network (:data:`~evostyle.network.backbones.BACKBONES`): ``vgg19``, ``vgg16``, or
    ``auto``: the weights' own (VGG19 for ``imagenet`` and ``random``; the ``offline`` weights are a
    VGG16). The layers are checked against it (against VGG19, whose names include VGG16's, for
    ``auto``)."""
    style_layers: tuple[str, ...] = GATYS_STYLE_LAYERS
    content_layer: str = GATYS_CONTENT_LAYER
    measure: str = "gram"
    content_weight: float = 1.0
    style_weight: float = 0.3
    tv_weight: float = 0.0
    steps: int = 300
    optimizer: str = "adam"
    """The inner optimiser (:data:`~evostyle.transfer.optimisers.INNER_OPTIMIZERS`): ``adam`` or ``lbfgs``."""
    lr: float | None = None
    """Its learning rate; None (the default): the optimiser's own, Adam 0.05 and L-BFGS 1
    (:attr:`resolved_lr`)."""
    init: str = "content"
    init_noise: float = 0.1
    normalize: bool = True
    history_every: int = 10
    max_batch: int | None = None
    precision: str = "auto"
    channels_last: bool | None = None
    autotune: bool = False
    """On CUDA, let cuDNN time its convolution algorithms for each new shape (``cudnn.benchmark``).
    Off by default: it changed nothing measurable at 256 px (docs/performance.md)."""
    compile: bool = False
    """Run the forward pass and losses through ``torch.compile`` (fuses the elementwise work around the
    convolutions; costs a compilation per new batch shape; falls back to eager with a log message if
    compilation fails). With Adam, the update (sanitised gradient, Adam, clamp) is compiled too, into
    one kernel instead of about eleven passes over the images."""
    compile_mode: str = "auto"
    """torch.compile's mode when ``compile`` is on. ``reduce-overhead`` also records each step's kernels
    in CUDA graphs and replays them with one launch (for steps bound by the host's launching: small
    batches); ``max-autotune`` times kernel variants too (a much longer compilation). ``auto`` (the
    default) is ``reduce-overhead`` on CUDA, where the graphs speed up small batches and leave large
    ones as they were (docs/performance.md), and ``default`` elsewhere."""

    @property
    def network(self) -> str:
        """The backbone the layers are read against: ``backbone``, VGG19 for ``auto`` (whose names
        include VGG16's)."""
        from evostyle.network.backbones import backbone
        return backbone(self.backbone).name

    @property
    def resolved_lr(self) -> float:
        """The learning rate the optimiser runs with: ``lr``, or the optimiser's own default for None
        (:func:`~evostyle.transfer.optimisers.learning_rate`)."""
        return learning_rate(self.optimizer, self.lr)

    def validate(self) -> TransferConfig:
        """Check every setting (names, layers, signs); the one place these rules live, for the transfer
        CLI, the search config and direct callers alike. :class:`~evostyle.transfer.engine.StyleEngine`
        runs it when it is built, :func:`~evostyle.transfer.run.run_transfer` when called directly."""
        from evostyle.network.backbones import BACKBONES
        from evostyle.style.measures import MEASURES
        if self.backbone != "auto":
            BACKBONES.check(self.backbone)
        BACKBONES.get(self.network).check_layers(list(self.style_layers) + [self.content_layer])
        MEASURES.check(self.measure)
        if self.compile_mode not in COMPILE_MODES:
            raise unknown("compile mode", self.compile_mode, COMPILE_MODES)
        if self.optimizer not in INNER_OPTIMIZERS:
            raise unknown("inner optimizer", self.optimizer, INNER_OPTIMIZERS)
        if self.init not in INITS:
            raise unknown("image init", self.init, INITS)
        if isinstance(self.steps, bool) or int(self.steps) < 1 or int(self.steps) != self.steps:
            raise EvostyleError(f"steps must be an integer >= 1, got {self.steps}")
        for name in ("content_weight", "style_weight", "tv_weight", "init_noise"):
            v = float(getattr(self, name))
            if not (v >= 0 and math.isfinite(v)):
                raise EvostyleError(f"{name.replace('_', '-')} must be finite and >= 0, got {v}")
        if self.lr is not None and not (0 < float(self.lr) <= LR_MAX):
            raise EvostyleError(f"lr must be a positive number up to {LR_MAX:g}, got {self.lr}")
        if self.max_batch is not None and int(self.max_batch) < 1:
            raise EvostyleError(f"max-batch must be >= 1, got {self.max_batch}")
        if int(self.history_every) < 1:
            raise EvostyleError("history_every must be >= 1")
        return self
