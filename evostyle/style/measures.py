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

from evostyle.errors import unknown
from evostyle.network.device import is_channels_last
from evostyle.registry import Registry

GRAM_NORMS = ("hw", "chw", "none")
_EPS = 1e-12


def upcast_half(x: torch.Tensor) -> torch.Tensor:
    """Upcast half-precision tensors to float32 (float32 and float64 pass through)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class _GramFn(torch.autograd.Function):
    """``G = scale * F F^T`` per row, with F the (C, H*W) view of (B, C, H, W) features.

    Written for the GPU's inner loop: the product runs in the features' own dtype (bf16 on the matrix
    units under autocast, with float32 accumulation) on a view of either memory layout (no transposing
    copy), the (B, C, C) result is float32, and the backward pass is one product,
    ``dL/dF = scale * (dL/dG + dL/dG^T) F``, returned in the layout of the input. Autograd's own rule
    for ``einsum(f, f)`` takes two products, two full-size float32 tensors and their sum.
    """

    @staticmethod
    def forward(ctx, f: torch.Tensor, scale: float) -> torch.Tensor:
        b, c, h, w = f.shape
        ctx.scale, ctx.shape, ctx.channels_last = scale, f.shape, is_channels_last(f)
        if ctx.channels_last:
            m = f.permute(0, 2, 3, 1).reshape(b, h * w, c)  # a view: (B, N, C)
            g = torch.einsum("bnc,bnd->bcd", m, m)
        else:
            m = f.reshape(b, c, h * w)  # (B, C, N), a view of contiguous features
            g = torch.einsum("bcn,bdn->bcd", m, m)
        ctx.save_for_backward(m)
        out = g.to(torch.float64 if f.dtype == torch.float64 else torch.float32)
        return out * scale if scale != 1.0 else out

    @staticmethod
    def backward(ctx, grad_g: torch.Tensor):
        (m,) = ctx.saved_tensors
        b, c, h, w = ctx.shape
        sym = ((grad_g + grad_g.transpose(1, 2)) * ctx.scale).to(m.dtype)
        if ctx.channels_last:
            grad = torch.einsum("bnc,bcd->bnd", m, sym).view(b, h, w, c).permute(0, 3, 1, 2)
        else:
            grad = torch.einsum("bcd,bdn->bcn", sym, m).view(b, c, h, w)
        return grad, None


def gram(f: torch.Tensor, norm: str = "hw") -> torch.Tensor:
    """Batched Gram matrix ``G[b] = F[b] F[b]^T`` with F[b] of shape (C, H*W), via ``torch.einsum``.

    Args:
        f: features (B, C, H, W), either memory layout. The products run in f's dtype: bfloat16
            features (autocast on a GPU) use the bf16 matrix units with float32 accumulation, float32
            and float64 stay as they are.
        norm: ``hw`` divides by H*W (the DFR code's choice, and ours); ``chw`` by C*H*W (Gatys-style
            implementations); ``none`` leaves the raw inner products.
    Returns:
        (B, C, C) float32 (float64 for float64 input), symmetric and positive semi-definite.
    """
    if norm not in GRAM_NORMS:
        raise unknown("Gram normalisation", norm, GRAM_NORMS)
    _, c, h, w = f.shape
    scale = {"hw": 1.0 / (h * w), "chw": 1.0 / (c * h * w), "none": 1.0}[norm]
    return _GramFn.apply(f, scale)


def mean_std(f: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Channel mean and standard deviation (the AdaIN statistic): (B, C, H, W) -> (B, 2, C)."""
    f = upcast_half(f).flatten(2)
    mu = f.mean(dim=2)
    sd = (f.var(dim=2, unbiased=False) + eps).sqrt()
    return torch.stack([mu, sd], dim=1)


class Measure:
    """A style measure: the statistic of (B, C, H, W) features that outputs and targets are compared
    by (the comparison is always :func:`relative_sq_error`). Subclass, override :meth:`statistic`
    and register it in :data:`MEASURES` to add one.

    Attributes:
        spatial: True if the statistic keeps the spatial layout (so it needs style features at the
            output's spatial size and a spatial rotation is never blind to it).
    """

    spatial: bool = False

    def statistic(self, f: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class GramMeasure(Measure):
    """:func:`gram`, (B, C, C): blind to every permutation of spatial positions."""

    def statistic(self, f: torch.Tensor) -> torch.Tensor:
        return gram(f)


class EuclideanMeasure(Measure):
    """The features themselves, (B, C, H, W) in float32 (spatially aware)."""

    spatial = True

    def statistic(self, f: torch.Tensor) -> torch.Tensor:
        return upcast_half(f)


class MeanStdMeasure(Measure):
    """:func:`mean_std`, (B, 2, C): the AdaIN statistic."""

    def statistic(self, f: torch.Tensor) -> torch.Tensor:
        return mean_std(f)


MEASURES: Registry[Measure] = Registry("measure")
"""name -> :class:`Measure`; iterate for the names."""
MEASURES.register("gram", GramMeasure())
MEASURES.register("euclidean", EuclideanMeasure())
MEASURES.register("meanstd", MeanStdMeasure())


def style_statistic(f: torch.Tensor, measure: str) -> torch.Tensor:
    """The statistic the measure ``measure`` (a name in :data:`MEASURES`) compares: ``gram`` ->
    (B, C, C); ``euclidean`` -> the features (B, C, H, W) in float32; ``meanstd`` -> (B, 2, C)."""
    return MEASURES.get(measure).statistic(f)


def sq_norm(target: torch.Tensor) -> torch.Tensor:
    """Per-row ``sum(t^2)`` in float32 or float64, floored at a tiny positive value: (B, ...) -> (B,).

    The denominator of a normalised term; an optimisation's targets are fixed, so it computes this
    once per target instead of at every step (``denom=`` below)."""
    return upcast_half(target).flatten(1).pow(2).sum(dim=1).clamp_min(_EPS)


def relative_sq_error(x: torch.Tensor, target: torch.Tensor, normalize: bool = True,
                      denom: torch.Tensor | None = None) -> torch.Tensor:
    """Per-row ``sum((x - t)^2) / sum(t^2)`` (or the MSE if not ``normalize``): (B, ...) -> (B,).

    ``target`` may have batch size 1 (broadcast to every row). ``denom``, if given, is the target's
    :func:`sq_norm`, computed beforehand.
    """
    x, target = upcast_half(x), upcast_half(target)
    diff = (x - target.to(x.dtype)).flatten(1)
    sq = diff.pow(2)
    if not normalize:
        return sq.mean(dim=1)
    if denom is None:
        denom = sq_norm(target)
    return sq.sum(dim=1) / denom.to(x.dtype)


def style_term(f_out: torch.Tensor, target: torch.Tensor, measure: str, normalize: bool = True,
               denom: torch.Tensor | None = None) -> torch.Tensor:
    """One layer's style loss per image: (B, C, H, W) features vs a (B or 1, ...) target -> (B,).
    ``denom``: the target's :func:`sq_norm`, if computed beforehand."""
    return relative_sq_error(style_statistic(f_out, measure), target, normalize, denom)


def content_term(f_out: torch.Tensor, f_content: torch.Tensor, normalize: bool = True,
                 denom: torch.Tensor | None = None) -> torch.Tensor:
    """Content loss per image: (B, C, H, W) vs (1 or B, C, H, W) -> (B,). ``denom``: as style_term."""
    return relative_sq_error(f_out, f_content, normalize, denom)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation per image: mean |dx| + mean |dy| over pixels and channels.

    (B, 3, H, W) -> (B,); units are intensity on [0, 1] per pixel step.
    """
    x = upcast_half(x)
    dims = tuple(range(1, x.dim()))  # a mean over the strided slices needs no flattening copy
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=dims)
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean(dim=dims)
    return dx + dy
