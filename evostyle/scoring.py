"""Scores for candidates: loss, diversity between a candidate's K outputs, and one fitness.

Shapes: a population of P candidates with K outputs each gives images (P, K, 3, H, W).

* ``loss`` (per candidate): the mean over its K outputs of ``content_weight * content +
  style_weight * mean_l style_l`` with the configured base weights, *not* the searched layer weights or
  ratio, so the search cannot lower its loss by turning weights down.
* ``diversity_pixel``: mean over output pairs of mean |a - b| on [0, 1] (DFP, CVPR 2020).
* ``diversity_feature``: mean over pairs of ||phi(a) - phi(b)|| / sqrt((||phi(a)||^2 + ||phi(b)||^2) / 2)
  for VGG features phi at one layer (0 = identical, sqrt(2) for orthogonal features).
* ``fitness`` = loss - diversity_weight * diversity_<metric> (+ penalty * max(0, loss - loss_cap));
  lower is better; a candidate with any failed output gets +inf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import torch

from .errors import EvostyleError, unknown

DIVERSITY_METRICS = ("pixel", "feature")


@dataclass
class ScoreConfig:
    diversity_metric: str = "pixel"
    diversity_weight: float = 1.0
    loss_cap: float | None = None
    cap_penalty: float = 10.0
    feature_layer: str = "relu3_1"

    def validate(self) -> "ScoreConfig":
        if self.diversity_metric not in DIVERSITY_METRICS:
            raise unknown("diversity metric", self.diversity_metric, DIVERSITY_METRICS)
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


@torch.no_grad()
def feature_diversity(model, images: torch.Tensor, layer: str, batch: int = 16) -> torch.Tensor:
    """(P, K, 3, H, W) images -> (P,) feature diversity at ``layer`` of ``model`` (on the CPU).

    The features stay on the model's device (``batch`` images per forward pass); only the (P,) result
    comes back.
    """
    p, k = images.shape[:2]
    flat = images.flatten(0, 1)
    dev = next(model.parameters()).device
    feats = torch.cat([model(flat[i:i + batch].to(dev), (layer,))[layer].float()  # no deeper layers run
                       for i in range(0, len(flat), batch)])
    return pairwise_feature(feats.view(p, k, *feats.shape[1:])).cpu()


def score_loss(final: dict[str, torch.Tensor], style_layers, content_weight: float, style_weight: float,
               p: int, k: int) -> torch.Tensor:
    """Per-candidate loss with base weights: (P*K,) terms -> (P,)."""
    style = torch.stack([final[f"style_{l}"].double() for l in style_layers], 1).mean(1)
    per_output = content_weight * final["content"].double() + style_weight * style
    return per_output.view(p, k).mean(1)


def fitness(loss: torch.Tensor, diversity: dict[str, torch.Tensor], failed: torch.Tensor,
            cfg: ScoreConfig) -> torch.Tensor:
    """(P,) fitness, lower is better; +inf where ``failed`` or not finite.

    ``diversity`` maps ``diversity_<metric>`` names to (P,) tensors.
    """
    f = loss - cfg.diversity_weight * diversity[f"diversity_{cfg.diversity_metric}"]
    if cfg.loss_cap is not None:
        f = f + cfg.cap_penalty * (loss - cfg.loss_cap).clamp_min(0)
    f = torch.where(failed | ~torch.isfinite(f), torch.full_like(f, math.inf), f)
    return f
