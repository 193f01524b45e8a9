"""The loss terms of one optimisation step for B rows, and one step's terms and gradient."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from evostyle.style.measures import content_term, sq_norm, style_term, total_variation, upcast_half

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

    from torch import nn

    from evostyle.network.device import Precision
    from evostyle.transfer.config import TransferConfig


def denominators(content_feat: torch.Tensor, targets: dict[str, torch.Tensor], cfg: TransferConfig) -> dict:
    """{"content" and each style layer: the target's squared norm (B or 1,)}, the fixed denominators
    of the normalised terms, computed once per optimisation; {} when ``cfg.normalize`` is off."""
    if not cfg.normalize:
        return {}
    return {"content": sq_norm(content_feat), **{l: sq_norm(targets[l]) for l in cfg.style_layers}}


def loss_terms(
    model: nn.Module,
    x: torch.Tensor,
    content_feat: torch.Tensor,
    targets: dict[str, torch.Tensor],
    denoms: dict[str, torch.Tensor],
    layer_w: torch.Tensor,
    cw: torch.Tensor,
    sw: torch.Tensor,
    cfg: TransferConfig,
    prec: Precision,
    device: torch.device | str,
    diversity: tuple[torch.Tensor, int, torch.Tensor] | None = None,
    tv: bool = True,
) -> dict[str, torch.Tensor]:
    """Forward pass and named per-row loss terms for images x (B,3,H,W); ``denoms`` from
    :func:`denominators`. ``tv=False`` leaves out the total variation, which is allowed only when its
    weight is 0 (then it is only reported, and the optimisation steps need not compute it).
    ``diversity`` (weights (B,), group size K, scale ()) adds :func:`diversity_term` to the terms
    and subtracts weight * term from the total."""
    with prec.autocast(device):
        feats = model(x)
    terms = {"content": content_term(feats[cfg.content_layer], content_feat, cfg.normalize, denoms.get("content"))}
    per_layer = [style_term(feats[l], targets[l], cfg.measure, cfg.normalize, denoms.get(l))
                 for l in cfg.style_layers]
    terms.update({f"style_{l}": t for l, t in zip(cfg.style_layers, per_layer)})
    style = (layer_w * torch.stack(per_layer, 1)).sum(1)  # (B, L) weights: three operators, not 3L
    terms["style"] = style
    total = cw * terms["content"] + sw * style
    if diversity is not None:
        weights, k, scale = diversity
        terms["diversity"] = diversity_term(feats[cfg.content_layer], k, scale)
        total = total - weights * terms["diversity"]
    if tv or cfg.tv_weight:
        # with no TV weight the term is only reported: keep it out of the backward pass (its slices'
        # gradient is image-sized work in the other memory layout, which then slows every Adam update)
        terms["tv"] = total_variation(x if cfg.tv_weight else x.detach())
        total = total + cfg.tv_weight * terms["tv"]
    terms["total"] = total
    return terms


def diversity_term(features: torch.Tensor, k: int, scale: torch.Tensor) -> torch.Tensor:
    """How far each row's features are from the next row's of its group, as a diversity reward (Li et
    al. 2017, "Diversified texture synthesis with feed-forward networks": an L1 distance in a deep
    layer between pairs of a batch's outputs, here each output and the next one of its candidate).

    features: (B, C, H, W), rows in groups of ``k`` consecutive rows (a candidate's outputs);
    ``scale``: the content features' mean |value|, so that the term is scale-free like the others.
    Returns (B,): mean |f_b - f_next(b)| / scale, 0 for a group of one. Outputs that are equal (one
    start, one target) get no push apart: |.| has no gradient at 0, so the reward needs starts that
    differ (``image_init`` content+noise, or the search group ``noise``) or targets that do.
    """
    b = features.shape[0]
    i = torch.arange(b, device=features.device)
    partner = i - i % k + (i % k + 1) % k
    return upcast_half((features - features[partner]).abs().flatten(1).mean(1)) / scale


def evaluate_step(
    fn: Callable, args: tuple, failed: torch.Tensor, last: bool
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Loss terms of one step through ``fn`` and, unless ``last``, the gradient w.r.t. the images.

    ``args`` are ``loss_terms``' arguments (the images x second); ``failed`` (B,) is updated in place with
    rows whose total loss is not finite. The total variation is computed in the steps only if it is
    weighted, and always in the ``last`` evaluation, which reports it. Returns (terms, grad or None).
    """
    with torch.set_grad_enabled(not last):
        terms = fn(*args, tv=last)
    total = terms["total"]
    failed |= ~torch.isfinite(total)
    if last:
        return terms, None
    loss = torch.where(failed, torch.zeros_like(total), total).sum()
    x = args[1]
    grad, = torch.autograd.grad(loss, x)
    if x.is_contiguous(memory_format=torch.channels_last) and not grad.is_contiguous(
            memory_format=torch.channels_last):  # one copy here instead of mixed-layout Adam kernels
        grad = grad.contiguous(memory_format=torch.channels_last)
    return terms, grad
