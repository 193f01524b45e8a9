"""Keeping the photo's colours (Gatys, Ecker, Bethge, Hertzmann & Shechtman 2017, "Controlling
perceptual factors in neural style transfer", CVPR, section 5): two ways, registered in
:data:`ORIGINAL_COLOURS`.

* ``luminance``: transfer in full, then keep the output's luminance and the content's chroma (YIQ
  colour space: Y from the output, I and Q from the photo); neural-style's ``-original_colors 1``.
* ``histogram``: before the transfer, recolour each painting so that its pixels' mean and covariance
  in RGB are the photo's (an affine map x -> A x + b with A = S_c^(1/2) S_s^(-1/2), the symmetric
  square roots of the two covariances, and b = mu_c - A mu_s); the painting's strokes stay and its
  palette becomes the photo's.

Images are (3, H, W) or (B, 3, H, W) float tensors in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from evostyle.registry import Registry

RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                           [0.595716, -0.274453, -0.321263],
                           [0.211456, -0.522591, 0.311135]], dtype=torch.float64)
"""The NTSC YIQ transform (rows: Y, I, Q) of linear RGB in [0, 1]."""
EPS = 1e-5
"""Added to a covariance's eigenvalues, relative to their mean (absolute for an all-zero covariance), so
that a painting of one colour or one hue stays invertible."""


def _apply(matrix: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """matrix (3, 3) applied to every pixel of a (..., 3, H, W) image."""
    return torch.einsum("ij,...jhw->...ihw", matrix.to(img.dtype), img)


def luminance_only(outputs: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """``outputs`` (B, 3, H, W) with their YIQ chroma replaced by ``content``'s (3, H, W): the outputs'
    luminance (their strokes and shading) in the photo's colours; clamped to [0, 1]."""
    yiq = _apply(RGB_TO_YIQ, outputs.double())
    yiq[:, 1:] = _apply(RGB_TO_YIQ, content.double())[1:]
    return _apply(torch.linalg.inv(RGB_TO_YIQ), yiq).clamp(0, 1).to(outputs.dtype)


def _sqrt_psd(cov: torch.Tensor, power: float) -> torch.Tensor:
    """cov ** power for a symmetric positive semi-definite (3, 3) matrix (its eigenvalues + EPS)."""
    vals, vecs = torch.linalg.eigh(cov)
    vals = vals.clamp_min(0)
    eps = EPS * float(vals.mean()) if float(vals.mean()) > 0 else EPS
    return vecs @ torch.diag((vals + eps) ** power) @ vecs.T


def match_colour(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """``style`` (3, H, W) recoloured so that its pixels' RGB mean and covariance are ``content``'s (up
    to EPS and the clamp to [0, 1]); see the module docstring."""
    s, c = style.double().reshape(3, -1), content.double().reshape(3, -1)
    mu_s, mu_c = s.mean(1, keepdim=True), c.mean(1, keepdim=True)
    a = _sqrt_psd(torch.cov(c), 0.5) @ _sqrt_psd(torch.cov(s), -0.5)
    return (a @ (s - mu_s) + mu_c).reshape(style.shape).clamp(0, 1).to(style.dtype)


ORIGINAL_COLOURS: Registry[tuple[str, Callable]] = Registry("original-colors mode")
"""How a transfer keeps the photo's colours: name -> (when: ``after`` the transfer, on its outputs, or
``before`` it, on each painting; the function)."""
ORIGINAL_COLOURS.register("luminance", ("after", luminance_only))
ORIGINAL_COLOURS.register("histogram", ("before", match_colour))
