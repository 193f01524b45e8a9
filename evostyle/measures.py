"""Style and content measures on batched VGG features.

Shapes: features are (B, C, H, W). Every loss term returns a (B,) float32 tensor, one value per image,
so that a batch of independent images can be optimised together.

Scale-free terms (the default, ``normalize=True``): each per-layer term is the squared error divided by
the target's squared norm, ``||S(out) - T||^2 / ||T||^2``. A layer weight then means the same for every
layer, image size and backbone, and a term of 1.0 means "as far from the target as zero is".
With ``normalize=False`` the term is the plain mean squared error.
"""

from __future__ import annotations

import torch

from .errors import unknown

MEASURES = ("gram", "euclidean", "meanstd")
GRAM_NORMS = ("hw", "chw", "none")
_EPS = 1e-12


def _hi(x: torch.Tensor) -> torch.Tensor:
    """Upcast half-precision tensors to float32 (float32 and float64 pass through)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def gram(f: torch.Tensor, norm: str = "hw") -> torch.Tensor:
    """Batched Gram matrix ``G[b] = F[b] F[b]^T`` with F[b] of shape (C, H*W), via ``torch.einsum``.

    Args:
        f: features (B, C, H, W); computed in float32 for half-precision input (float64 stays float64).
        norm: ``hw`` divides by H*W (the DFR code's choice, and ours); ``chw`` by C*H*W (Gatys-style
            implementations); ``none`` leaves the raw inner products.
    Returns:
        (B, C, C), symmetric and positive semi-definite.
    """
    if norm not in GRAM_NORMS:
        raise unknown("Gram normalisation", norm, GRAM_NORMS)
    f = _hi(f)
    _, c, h, w = f.shape
    g = torch.einsum("bchw,bdhw->bcd", f, f)
    if norm == "hw":
        g = g / (h * w)
    elif norm == "chw":
        g = g / (c * h * w)
    return g


def mean_std(f: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Channel mean and standard deviation (the AdaIN statistic): (B, C, H, W) -> (B, 2, C)."""
    f = _hi(f).flatten(2)
    mu = f.mean(dim=2)
    sd = (f.var(dim=2, unbiased=False) + eps).sqrt()
    return torch.stack([mu, sd], dim=1)


def style_statistic(f: torch.Tensor, measure: str) -> torch.Tensor:
    """The statistic a style measure compares.

    ``gram`` -> (B, C, C); ``euclidean`` -> the features themselves (B, C, H, W) in float32 (spatially
    aware: it needs the style features at the output's spatial size); ``meanstd`` -> (B, 2, C).
    """
    if measure == "gram":
        return gram(f)
    if measure == "euclidean":
        return _hi(f)
    if measure == "meanstd":
        return mean_std(f)
    raise unknown("measure", measure, MEASURES)


def relative_sq_error(x: torch.Tensor, target: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Per-row ``sum((x - t)^2) / sum(t^2)`` (or the MSE if not ``normalize``): (B, ...) -> (B,).

    ``target`` may have batch size 1 (broadcast to every row).
    """
    x, target = _hi(x), _hi(target)
    diff = (x - target.to(x.dtype)).flatten(1)
    sq = diff.pow(2)
    if not normalize:
        return sq.mean(dim=1)
    denom = target.to(x.dtype).flatten(1).pow(2).sum(dim=1).clamp_min(_EPS)
    return sq.sum(dim=1) / denom


def style_term(f_out: torch.Tensor, target: torch.Tensor, measure: str, normalize: bool = True) -> torch.Tensor:
    """One layer's style loss per image: (B, C, H, W) features vs a (B or 1, ...) target -> (B,)."""
    return relative_sq_error(style_statistic(f_out, measure), target, normalize)


def content_term(f_out: torch.Tensor, f_content: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Content loss per image: (B, C, H, W) vs (1 or B, C, H, W) -> (B,)."""
    return relative_sq_error(f_out, f_content, normalize)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation per image: mean |dx| + mean |dy| over pixels and channels.

    (B, 3, H, W) -> (B,); units are intensity on [0, 1] per pixel step.
    """
    x = _hi(x)
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(dim=1)
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(dim=1)
    return dx + dy
