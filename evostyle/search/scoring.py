"""Scores for candidates: fidelity, diversity between a candidate's K outputs, and the objectives.

Shapes: a population of P candidates with K outputs each gives images (P, K, 3, H, W).

* ``loss_score`` (per candidate): the mean over its K outputs of ``content_weight * content +
  style_weight * mean_l style_l`` against each output's *own* (rotated) target, with the configured base
  weights, *not* the searched layer weights or ratio, so the search cannot lower it by turning weights
  down. It rewards targets that are easy to reach, so it is kept as a column, not the default objective.
* ``fidelity`` (per candidate): the same weighted sum measured for every candidate against the same
  kind of target: each output's style error against the *unrotated* target of its candidate (the mixed
  statistic of the paintings, rotation weight 0) and its content error, mean over the K outputs
  (``fidelity_style`` and ``fidelity_content`` are the two parts before weighting).
* ``diversity_pixel``: mean over output pairs of mean |a - b| on [0, 1] (DFP, CVPR 2020).
* ``diversity_feature``: mean over pairs of ||phi(a) - phi(b)|| / sqrt((||phi(a)||^2 + ||phi(b)||^2) / 2)
  for VGG features phi at one layer (0 = identical, sqrt(2) for orthogonal features).
* ``fitness`` (the scalar objective) = fidelity - diversity_weight * diversity_<metric>
  (+ penalty * max(0, fidelity - loss_cap)), fidelity being ``fidelity`` (default) or ``loss_score``
  (``fitness_loss = "own_target"``, the rule before fidelity existed); lower is better; a candidate
  with any failed output gets +inf.
* the Pareto objectives: (fidelity, -diversity_<metric>), both minimised (:func:`objectives`).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

import torch

from evostyle.errors import EvostyleError, unknown
from evostyle.registry import Registry
from evostyle.style.measures import content_term, style_term

if TYPE_CHECKING:  # annotations only
    from collections.abc import Sequence

    from torch import nn

    from evostyle.network.device import Precision

FITNESS_LOSSES = ("fidelity", "own_target")
"""What the objectives take as a candidate's fidelity: the ``fidelity`` column or ``loss_score``."""
FIDELITY_COLUMN = {"fidelity": "fidelity", "own_target": "loss_score"}


@dataclass
class ScoreConfig:
    diversity_metric: str = "feature"  # the pixel distance counts leftover start noise (results/diversity)
    diversity_weight: float = 1.0
    loss_cap: float | None = None
    cap_penalty: float = 10.0
    fitness_loss: str = "fidelity"

    @property
    def fidelity_column(self) -> str:
        """The terms column the objectives take as fidelity (lower is better)."""
        return FIDELITY_COLUMN[self.fitness_loss]

    @property
    def diversity_column(self) -> str:
        return f"diversity_{self.diversity_metric}"

    def validate(self) -> ScoreConfig:
        DIVERSITY_METRICS.check(self.diversity_metric)
        if self.fitness_loss not in FITNESS_LOSSES:
            raise unknown("fitness loss", self.fitness_loss, FITNESS_LOSSES)
        if not (self.diversity_weight >= 0 and math.isfinite(self.diversity_weight)):
            raise EvostyleError(f"diversity weight must be finite and >= 0, got {self.diversity_weight}")
        if self.loss_cap is not None and not (self.loss_cap > 0 and math.isfinite(self.loss_cap)):
            raise EvostyleError(f"loss cap must be a positive number, got {self.loss_cap}")
        return self


def pairwise_pixel(images: torch.Tensor) -> torch.Tensor:
    """(P, K, 3, H, W) -> (P,) mean over pairs of mean |a - b|; 0 when K == 1."""
    p, k = images.shape[:2]
    pairs = list(combinations(range(k), 2))
    if not pairs:
        return torch.zeros(p, dtype=torch.float64)
    d = [(images[:, i] - images[:, j]).abs().flatten(1).mean(1).double() for i, j in pairs]
    return torch.stack(d, 1).mean(1)


def pairwise_feature(feats: torch.Tensor) -> torch.Tensor:
    """(P, K, C, h, w) features -> (P,) mean over pairs of the relative L2 distance; 0 when K == 1."""
    p, k = feats.shape[:2]
    pairs = list(combinations(range(k), 2))
    if not pairs:
        return torch.zeros(p, dtype=torch.float64)
    f = feats.flatten(2).double()
    sq = f.pow(2).sum(2)
    d = [(f[:, i] - f[:, j]).norm(dim=1) / ((sq[:, i] + sq[:, j]) / 2).sqrt().clamp_min(1e-30) for i, j in pairs]
    return torch.stack(d, 1).mean(1)


class DiversityMetric:
    """How different a candidate's K outputs are from each other; higher is more diverse.

    Attributes:
        layer: the VGG19 layer whose features :meth:`compute` needs (from the scoring pass), or None
            for a metric of the pixels alone.
    Subclass, override :meth:`compute` and register it in :data:`DIVERSITY_METRICS`: every search
    then logs it as ``diversity_<name>``, and ``--diversity-metric <name>`` optimises it.
    """

    layer: str | None = None

    def compute(self, images: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        """(P, K, 3, H, W) images in [0, 1] and their (P, K, C, h, w) features at :attr:`layer` (None
        without a layer) -> (P,) float64 on the CPU."""
        raise NotImplementedError


class PixelDiversity(DiversityMetric):
    """Mean over output pairs of mean |a - b| on [0, 1] (:func:`pairwise_pixel`)."""

    def compute(self, images: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        return pairwise_pixel(images)


class FeatureDiversity(DiversityMetric):
    """Mean over pairs of the relative L2 distance of VGG features (:func:`pairwise_feature`)."""

    layer = "relu3_1"

    def compute(self, images: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        return pairwise_feature(features).cpu()


DIVERSITY_METRICS: Registry[DiversityMetric] = Registry("diversity metric")
"""name -> :class:`DiversityMetric`; each is a ``diversity_<name>`` column of every search."""
DIVERSITY_METRICS.register("pixel", PixelDiversity())
DIVERSITY_METRICS.register("feature", FeatureDiversity())


@torch.no_grad()
def features_at(model: nn.Module, images: torch.Tensor, layer: str, batch: int = 16) -> torch.Tensor:
    """(N, 3, H, W) images -> (N, C, h, w) float32 features at ``layer`` on the model's device,
    ``batch`` images per forward pass (no deeper layer runs)."""
    dev = next(model.parameters()).device
    return torch.cat([model(images[i:i + batch].to(dev), (layer,))[layer].float()
                      for i in range(0, len(images), batch)])


def feature_diversity(model: nn.Module, images: torch.Tensor, layer: str, batch: int = 16) -> torch.Tensor:
    """(P, K, 3, H, W) images -> (P,) feature diversity at ``layer`` of ``model`` (on the CPU)."""
    p, k = images.shape[:2]
    feats = features_at(model, images.flatten(0, 1), layer, batch)
    return pairwise_feature(feats.view(p, k, *feats.shape[1:])).cpu()


@torch.no_grad()
def output_terms(
    model: nn.Module,
    images: torch.Tensor,
    content_feat: torch.Tensor,
    reference: dict[str, torch.Tensor],
    style_layers: Sequence[str],
    content_layer: str,
    measure: str,
    normalize: bool = True,
    keep: Sequence[str] = (),
    batch: int = 16,
    precision: Precision | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Score N images against per-image reference targets on the model's device: the network in
    ``precision`` (a :class:`~evostyle.network.device.Precision`; None: float32), the terms in float32.

    Args:
        model: a :class:`~evostyle.network.features.VGGFeatures` reaching every layer named here.
        images: (N, 3, H, W) in [0, 1] (any device).
        content_feat: (1, C, h, w) content features at ``content_layer``.
        reference: {style layer: (N, ...)} the measure's statistic each image is scored against.
        keep: layers whose features to return as well (e.g. the feature-diversity layer).
        batch: images per forward pass (bounds the memory; the result does not depend on it).
        precision: the transfer's precision, so that scoring costs what a step's forward pass costs
            (bf16 on a GPU; its terms agree with float32 to well under 1%).
    Returns:
        ({"content": (N,), "style_<layer>": (N,)} on the CPU, {kept layer: (N, C, h, w) on the device}),
        the terms as in :mod:`evostyle.style.measures` (scale-free with ``normalize``).
    """
    dev = next(model.parameters()).device
    want = tuple(dict.fromkeys([*style_layers, content_layer, *keep]))
    parts: dict[str, list] = {"content": [], **{f"style_{l}": [] for l in style_layers}}
    kept: dict[str, list] = {k: [] for k in keep}
    autocast = precision.autocast(dev) if precision is not None else contextlib.nullcontext()
    for i in range(0, images.shape[0], batch):
        with autocast:
            feats = model(images[i:i + batch].to(dev, torch.float32), want)
        parts["content"].append(content_term(feats[content_layer], content_feat, normalize).cpu())
        for l in style_layers:
            parts[f"style_{l}"].append(style_term(feats[l], reference[l][i:i + batch], measure, normalize).cpu())
        for k in keep:
            kept[k].append(feats[k].float())
    return {k: torch.cat(v) for k, v in parts.items()}, {k: torch.cat(v) for k, v in kept.items()}


def fidelity_terms(
    terms: dict[str, torch.Tensor],
    style_layers: Sequence[str],
    content_weight: float,
    style_weight: float,
    p: int,
    k: int,
) -> dict[str, torch.Tensor]:
    """Per-output :func:`output_terms` (P*K,) -> per-candidate (P,) ``fidelity_style`` (mean over
    layers and outputs), ``fidelity_content`` (mean over outputs) and ``fidelity`` (their weighted sum
    with the base weights), float64."""
    style = torch.stack([terms[f"style_{l}"].double() for l in style_layers], 1).mean(1).view(p, k).mean(1)
    content = terms["content"].double().view(p, k).mean(1)
    return {"fidelity_style": style, "fidelity_content": content,
            "fidelity": content_weight * content + style_weight * style}


def score_loss(final: dict[str, torch.Tensor], style_layers: Sequence[str], content_weight: float, style_weight: float,
               p: int, k: int) -> torch.Tensor:
    """Per-candidate loss with base weights: (P*K,) terms -> (P,)."""
    style = torch.stack([final[f"style_{l}"].double() for l in style_layers], 1).mean(1)
    per_output = content_weight * final["content"].double() + style_weight * style
    return per_output.view(p, k).mean(1)


def fitness(terms: dict[str, torch.Tensor], failed: torch.Tensor, cfg: ScoreConfig) -> torch.Tensor:
    """(P,) scalar fitness from per-candidate ``terms`` (columns as in the module doc), lower is better;
    +inf where ``failed`` or not finite."""
    q = terms[cfg.fidelity_column]
    f = q - cfg.diversity_weight * terms[cfg.diversity_column]
    if cfg.loss_cap is not None:
        f = f + cfg.cap_penalty * (q - cfg.loss_cap).clamp_min(0)
    return torch.where(failed | ~torch.isfinite(f), torch.full_like(f, math.inf), f)


def objectives(terms: dict[str, torch.Tensor], failed: torch.Tensor, cfg: ScoreConfig) -> torch.Tensor:
    """(P, 2) Pareto objectives (fidelity, -diversity), both minimised; +inf rows where ``failed`` or
    not finite (dominated by every finite point)."""
    obj = torch.stack([terms[cfg.fidelity_column].double(), -terms[cfg.diversity_column].double()], 1)
    bad = failed | ~torch.isfinite(obj).all(1)
    return torch.where(bad[:, None], torch.full_like(obj, math.inf), obj)


class Objective:
    """What a search minimises, computed from a population's per-candidate terms. ``multi`` objectives
    return (P, M) values (GDE3 or random search front them); scalar ones (P,) (any solver). Register
    a subclass in :data:`OBJECTIVES` to add one; ``--objective <name>`` selects it."""

    multi: bool = False

    def values(self, terms: dict[str, torch.Tensor], failed: torch.Tensor, cfg: ScoreConfig) -> torch.Tensor:
        raise NotImplementedError


class ScalarObjective(Objective):
    """:func:`fitness`: fidelity - diversity_weight * diversity (+ the cap penalty)."""

    def values(self, terms: dict[str, torch.Tensor], failed: torch.Tensor, cfg: ScoreConfig) -> torch.Tensor:
        return fitness(terms, failed, cfg)


class ParetoObjective(Objective):
    """:func:`objectives`: (fidelity, -diversity), both minimised."""

    multi = True

    def values(self, terms: dict[str, torch.Tensor], failed: torch.Tensor, cfg: ScoreConfig) -> torch.Tensor:
        return objectives(terms, failed, cfg)


OBJECTIVES: Registry[Objective] = Registry("objective")
"""name -> :class:`Objective`."""
OBJECTIVES.register("scalar", ScalarObjective())
OBJECTIVES.register("pareto", ParetoObjective())
