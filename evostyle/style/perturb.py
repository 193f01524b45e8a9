"""Deep feature perturbation of the content target (Wang et al. 2020, "Diversified arbitrary style
transfer via deep feature perturbation", CVPR): a lever for diverse outputs that leaves the painting's
targets alone.

The content features f (C channels over N positions) are whitened, turned by a random orthogonal
matrix Q, and recoloured with their own covariance: f' = Sigma^(1/2) Q Sigma^(-1/2) (f - mu) + mu.
Q turns each position's whitened C-vector (its length, so where the energy is, stays) and keeps their
identity covariance, so f' has f's mean and covariance, hence its Gram matrix (up to the
regularisation :data:`EPS`), while which channel carries what at each position is scrambled. At
strength s the target is (1 - s) f + s f' (0: the content's own features). Each output draws its own
Q from its seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

EPS = 1e-5
"""Added to the covariance's eigenvalues (relative to their mean) so whitening stays finite."""


def random_orthogonal(c: int, seed: int) -> torch.Tensor:
    """A (c, c) float64 orthogonal matrix drawn uniformly (Haar measure: QR of a Gaussian matrix with
    the signs of R's diagonal folded into Q; Mezzadri 2007)."""
    g = torch.Generator().manual_seed(int(seed))
    q, r = torch.linalg.qr(torch.randn(c, c, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def perturb_features(features: torch.Tensor, strength: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
    """Per-row perturbed copies of one image's features.

    Args:
        features: (1, C, H, W) content features at the content layer.
        strength: (B,) in [0, 1]; 0 leaves a row's target the features themselves (bit for bit).
        seeds: B ints, each row's orthogonal matrix.
    Returns:
        (B, C, H, W) targets, in ``features``' dtype and device.
    """
    _, c, h, w = features.shape
    x = features[0].reshape(c, h * w).double().cpu()
    mu = x.mean(1, keepdim=True)
    xc = x - mu
    cov = xc @ xc.T / max(1, xc.shape[1] - 1)
    evals, evecs = torch.linalg.eigh(cov)
    evals = evals.clamp_min(0) + EPS * evals.clamp_min(0).mean().clamp_min(1e-12)
    z = (evecs * evals.rsqrt()) @ evecs.T @ xc  # whitened: identity covariance
    colour = (evecs * evals.sqrt()) @ evecs.T
    rows, turned_by_seed = [], {}  # a population's outputs share K seeds: one matrix per seed
    for s, seed in zip(strength.tolist(), seeds):
        if s == 0:
            rows.append(features[0])
            continue
        if seed not in turned_by_seed:
            turned_by_seed[seed] = colour @ random_orthogonal(c, seed) @ z + mu
        turned = turned_by_seed[seed]
        mixed = (1 - s) * x + s * turned
        rows.append(mixed.reshape(c, h, w).to(dtype=features.dtype, device=features.device))
    return torch.stack(rows)
