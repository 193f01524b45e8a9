"""Style targets per output: mixing, rotation modes, fusion and shuffling.

For output row b, layer l and style images s = 1..S the target statistic is

    T[b, l] = sum_s m[b, s] * ((1 - w[b]) * stat(F[s, l]) + w[b] * stat(rot(F[s, l], angle[b])))

with convex mixing weights m (a row of the simplex, as neural-style mixes styles), the rotation weight
w (DFR's fusion weight; 1 = fully rotated) and ``stat`` the measure's statistic (see measures.py).

Rotation modes (DESIGN.md, facts 1-3 and 6):
    ``none``     no rotation; the angle is ignored.
    ``channel``  orthogonal rotation of every feature vector, R(a) = Q diag(rot2(a), ...) Q^T with a
                 seeded random orthogonal Q per layer: continuous, norm-preserving, 360-periodic and the
                 identity at 0. For ``gram`` it is applied to the Gram matrix directly, G' = R G R^T.
    ``spatial``  rotate the feature maps about their centre (bilinear, zeros outside). Exact ``rot90``
                 at multiples of 90 degrees (for ``euclidean`` only on square maps, which keep their
                 shape), where a Gram or mean/std target is unchanged (blind).
    ``pixel``    rotate the style image before the network, zoomed just enough to leave no black corners.
    ``dfr``      the official DFR code's ops (TensorFlow, NHWC): "90" = ``transpose(3,2,1,0)`` then
                 reshape back (a scramble, not a rotation), "180" = flip of the width axis (Gram-blind),
                 "270" = the "90" result (as that code stores it). Angles must be 0/90/180/270.
Shuffle (a fixed, seeded transform of every style feature map, applied before the statistic):
    ``channel``  permute channels (changes a Gram target: G' = P G P^T).
    ``spatial``  permute spatial positions (a Gram matrix is exactly invariant: Gram-blind).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from .errors import EvostyleError, unknown
from .measures import style_statistic

ROTATION_MODES = ("none", "channel", "spatial", "pixel", "dfr")
SHUFFLE_MODES = ("none", "channel", "spatial")


def _rot_affine(angles_deg: torch.Tensor, h: int, w: int, zoom: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) angles -> (B, 2, 3) affine matrices for ``F.affine_grid`` (output -> input coordinates).

    Positive angles rotate counter-clockwise as displayed. ``zoom`` (B,) <= 1 shrinks the sampled area.
    """
    a = torch.deg2rad(angles_deg.double())
    c, s = torch.cos(a), torch.sin(a)
    k = torch.ones_like(a) if zoom is None else zoom.double()
    theta = torch.zeros(a.shape[0], 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = k * c
    theta[:, 0, 1] = -k * s * h / w
    theta[:, 1, 0] = k * s * w / h
    theta[:, 1, 1] = k * c
    return theta


def _is_quarter(angles: torch.Tensor) -> torch.Tensor:
    """(B,) bool: angle is a multiple of 90 degrees (within 1e-6)."""
    q = angles.double() / 90.0
    return (q - q.round()).abs() < 1e-6


def rotate_maps(x: torch.Tensor, angles_deg: torch.Tensor, zoom: torch.Tensor | None = None,
                padding: str = "zeros") -> torch.Tensor:
    """Rotate (B, C, H, W) maps, row b by ``angles_deg[b]`` degrees about the centre -> (B, C, H, W).

    Multiples of 90 degrees on square maps use ``torch.rot90`` (exact, no interpolation).
    """
    b, _, h, w = x.shape
    angles_deg = angles_deg.reshape(-1).to("cpu")
    if angles_deg.numel() != b:
        raise ValueError(f"need {b} angles, got {angles_deg.numel()}")
    theta = _rot_affine(angles_deg, h, w, zoom).to(device=x.device, dtype=torch.float32)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode=padding, align_corners=False)
    if h == w and (zoom is None or bool((zoom == 1).all())):
        quarter = _is_quarter(angles_deg)
        for i in torch.nonzero(quarter).flatten().tolist():
            k = int(round(float(angles_deg[i]) / 90.0)) % 4
            out[i] = torch.rot90(x[i].float(), k, dims=(-2, -1))
    return out.to(x.dtype)


def no_corner_zoom(angles_deg: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B,) largest zoom k <= 1 such that an image rotated by the angle covers the whole frame."""
    a = torch.deg2rad(angles_deg.double().reshape(-1))
    c, s = torch.cos(a).abs(), torch.sin(a).abs()
    return torch.minimum(w / (w * c + h * s), h / (w * s + h * c)).clamp(max=1.0)


def rotate_image(img: torch.Tensor, angles_deg: torch.Tensor) -> torch.Tensor:
    """Rotate an image (3, H, W) or (B, 3, H, W) by each angle with no black corners -> (B, 3, H, W).

    The rotated image is zoomed (bicubic-free bilinear sampling) just enough that every output pixel
    comes from inside the source. 0 degrees is the identity.
    """
    angles_deg = angles_deg.reshape(-1).to("cpu")
    x = img[None] if img.dim() == 3 else img
    if x.shape[0] == 1:
        x = x.expand(angles_deg.numel(), -1, -1, -1)
    h, w = x.shape[-2:]
    zoom = no_corner_zoom(angles_deg, h, w)
    return rotate_maps(x, angles_deg, zoom=zoom, padding="border").clamp(0, 1)


@functools.lru_cache(maxsize=64)
def _seeded_orthogonal(c: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(int(seed))
    a = torch.randn(c, c, generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    return q * torch.sign(torch.diagonal(r))[None, :]


def _plane_angles(c: int, angles_deg: torch.Tensor) -> torch.Tensor:
    """(B,) degrees -> (B, c // 2) radians per rotation plane (frequencies alternate 1, 2)."""
    a = torch.deg2rad(angles_deg.double().reshape(-1))
    freq = (1 + torch.arange(c // 2) % 2).double()
    return a[:, None] * freq[None, :]


def channel_rotation(c: int, angles_deg: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Orthogonal rotations of R^c, one per angle: (B,) degrees -> (B, c, c) float64.

    R(a) = Q blockdiag(rot2(n_1 a), rot2(n_2 a), ..., [1]) Q^T with a seeded random orthogonal Q and
    plane frequencies n_j alternating 1, 2. So R(0) = I, R(a + 360) = R(a), R(a) R(b) = R(a + b) and R
    is orthogonal for every angle. (With one frequency R(180) would be -I, which leaves a Gram matrix
    unchanged; mixing frequencies keeps 180 degrees distinct from 0.)
    """
    q = _seeded_orthogonal(c, seed)
    eye = torch.eye(c, dtype=torch.float64).expand(angles_deg.numel(), c, c)
    return q[None] @ _rotate_pairs(eye, _plane_angles(c, angles_deg), dim=1) @ q.T[None]


def _rotate_pairs(x: torch.Tensor, theta: torch.Tensor, dim: int) -> torch.Tensor:
    """Apply blockdiag(rot2(theta_j)) along ``dim`` (1 or 2) of (B, c, m) or (B, m, c)^T: O(B c m) work.

    ``dim=1`` left-multiplies (D X); ``dim=2`` right-multiplies by D^T (X D^T).
    """
    c = x.shape[dim]
    n = c // 2
    cos = torch.cos(theta).to(x.dtype)
    sin = torch.sin(theta).to(x.dtype)
    out = x.clone()
    if dim == 1:
        a, b = x[:, 0:2 * n:2, :], x[:, 1:2 * n:2, :]
        cs, sn = cos[:, :, None], sin[:, :, None]
        out[:, 0:2 * n:2, :] = cs * a - sn * b
        out[:, 1:2 * n:2, :] = sn * a + cs * b
    else:
        a, b = x[:, :, 0:2 * n:2], x[:, :, 1:2 * n:2]
        cs, sn = cos[:, None, :], sin[:, None, :]
        out[:, :, 0:2 * n:2] = cs * a - sn * b
        out[:, :, 1:2 * n:2] = sn * a + cs * b
    return out


def rotate_gram_channels(g: torch.Tensor, angles_deg: torch.Tensor, seed: int) -> torch.Tensor:
    """R(a) G R(a)^T for a (1, C, C) Gram and (B,) angles -> (B, C, C), without forming R.

    Uses R = Q D Q^T: R G R^T = Q D (Q^T G Q) D^T Q^T with D block-diagonal (cheap to apply).
    """
    c = g.shape[-1]
    q = _seeded_orthogonal(c, seed).to(device=g.device, dtype=g.dtype)
    h = (q.T @ g[0] @ q)[None].expand(angles_deg.numel(), c, c)
    theta = _plane_angles(c, angles_deg).to(g.device)
    m = _rotate_pairs(_rotate_pairs(h, theta, dim=1), theta, dim=2)
    return q[None] @ m @ q.T[None]


def rotate_features_channels(f: torch.Tensor, angles_deg: torch.Tensor, seed: int) -> torch.Tensor:
    """R(a) applied to every feature vector of a (1, C, H, W) map -> (B, C, H, W)."""
    _, c, h, w = f.shape
    q = _seeded_orthogonal(c, seed).to(device=f.device, dtype=f.dtype)
    z = (q.T @ f[0].reshape(c, -1))[None].expand(angles_deg.numel(), c, h * w)
    theta = _plane_angles(c, angles_deg).to(f.device)
    return (q[None] @ _rotate_pairs(z, theta, dim=1)).view(-1, c, h, w)


def dfr_op(f: torch.Tensor, angle: float) -> torch.Tensor:
    """The DFR code's "rotation" of one NCHW feature map (1 or B, C, H, W) by 0/90/180/270."""
    k = int(round(angle / 90.0)) % 4
    if abs(angle / 90.0 - round(angle / 90.0)) > 1e-6:
        raise EvostyleError(f"rotation mode 'dfr' takes angles 0, 90, 180 or 270, got {angle:g}")
    if k == 0:
        return f
    nhwc = f.permute(0, 2, 3, 1)
    b, h, w, c = nhwc.shape
    if k == 2:
        return nhwc.flip(2).permute(0, 3, 1, 2)
    # "90" (and "270", which the official code stores as the 90 result): for each image,
    # transpose (H, W, C) -> (C, W, H) and reshape the memory back to (H, W, C).
    scrambled = nhwc.permute(0, 3, 2, 1).contiguous().reshape(b, h, w, c)
    return scrambled.permute(0, 3, 1, 2)


def shuffle_features(f: torch.Tensor, mode: str, seed: int = 0) -> torch.Tensor:
    """Apply a fixed seeded permutation to (B, C, H, W) maps: of channels or of spatial positions."""
    if mode == "none":
        return f
    gen = torch.Generator().manual_seed(int(seed))
    b, c, h, w = f.shape
    if mode == "channel":
        return f[:, torch.randperm(c, generator=gen).to(f.device)]
    if mode == "spatial":
        perm = torch.randperm(h * w, generator=gen).to(f.device)
        return f.flatten(2)[:, :, perm].reshape(b, c, h, w)
    raise unknown("shuffle mode", mode, SHUFFLE_MODES)


class StyleTargets:
    """Builds per-row style targets from a few style images.

    Args:
        extractor: a :class:`~evostyle.features.VGGFeatures` (any module returning named features).
        styles: list of S style images, each (3, H, W) at the output size.
        layers: style layer names.
        measure: ``gram`` | ``euclidean`` | ``meanstd``.
        rotation_mode: one of :data:`ROTATION_MODES`.
        shuffle: one of :data:`SHUFFLE_MODES`, applied to every style feature map.
        seed: seeds the channel rotation bases and the shuffles.
    """

    def __init__(self, extractor, styles, layers, measure="gram", rotation_mode="channel",
                 shuffle="none", seed=0, device=None):
        if rotation_mode not in ROTATION_MODES:
            raise unknown("rotation mode", rotation_mode, ROTATION_MODES)
        if shuffle not in SHUFFLE_MODES:
            raise unknown("shuffle mode", shuffle, SHUFFLE_MODES)
        style_statistic(torch.zeros(1, 1, 1, 1), measure)  # validates the measure name
        if not styles:
            raise EvostyleError("at least one style image is needed")
        self.extractor, self.layers, self.measure = extractor, list(layers), measure
        self.rotation_mode, self.shuffle, self.seed = rotation_mode, shuffle, int(seed)
        self.device = device or next(extractor.parameters()).device
        self.styles = [s.to(self.device).float() for s in styles]
        with torch.no_grad():
            self.feats = [self._features(s[None]) for s in self.styles]  # S x {layer: (1,C,h,w)}
            self.stats = [{l: style_statistic(fs[l], measure) for l in self.layers} for fs in self.feats]

    def _features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.extractor(x)
        return {l: shuffle_features(out[l].float(), self.shuffle, self.seed + i)
                for i, l in enumerate(self.layers)}

    def _layer_seed(self, layer: str) -> int:
        return self.seed * 1000 + self.layers.index(layer) + 17

    @torch.no_grad()
    def rotated(self, s: int, angles: torch.Tensor) -> dict[str, torch.Tensor]:
        """Statistics of style ``s`` rotated by each angle: {layer: (B, ...)}."""
        mode, b = self.rotation_mode, angles.numel()
        if mode == "none":
            return {l: self.stats[s][l].expand(b, *self.stats[s][l].shape[1:]) for l in self.layers}
        if mode == "pixel":
            feats = self._features(rotate_image(self.styles[s], angles))
            return {l: style_statistic(feats[l], self.measure) for l in self.layers}
        out = {}
        for l in self.layers:
            f = self.feats[s][l]
            if mode == "channel":
                if self.measure == "gram":
                    out[l] = rotate_gram_channels(self.stats[s][l], angles, self._layer_seed(l))
                else:
                    out[l] = style_statistic(rotate_features_channels(f, angles, self._layer_seed(l)),
                                             self.measure)
            elif mode == "spatial":
                stat = style_statistic(rotate_maps(f.expand(b, -1, -1, -1), angles), self.measure)
                if self.measure != "euclidean" and f.shape[-1] != f.shape[-2]:
                    # rotate_maps turns square maps exactly; shape-free statistics allow it on any map
                    for i in torch.nonzero(_is_quarter(angles)).flatten().tolist():
                        k = int(round(float(angles[i]) / 90.0)) % 4
                        stat[i] = style_statistic(torch.rot90(f, k, dims=(-2, -1)), self.measure)[0]
                out[l] = stat
            else:  # dfr
                ops = torch.cat([dfr_op(f, float(a)) for a in angles.reshape(-1).tolist()])
                out[l] = style_statistic(ops, self.measure)
        return out

    @torch.no_grad()
    def build(self, mix: torch.Tensor, angles: torch.Tensor, rotation_weight: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-row targets.

        Args:
            mix: (B, S) convex weights (rows are renormalised to sum 1; must be >= 0).
            angles: (B,) degrees.
            rotation_weight: (B,) in [0, 1]; 0 = unrotated target, 1 = fully rotated.
        Returns:
            {layer: (B, ...)} float32 targets on the extractor's device.
        """
        mix = torch.as_tensor(mix, dtype=torch.float32).reshape(-1, len(self.styles))
        b = mix.shape[0]
        angles = torch.as_tensor(angles, dtype=torch.float64).reshape(-1).cpu()
        wrot = torch.as_tensor(rotation_weight, dtype=torch.float32).reshape(-1)
        if angles.numel() != b or wrot.numel() != b:
            raise ValueError("mix, angles and rotation_weight need the same number of rows")
        if not torch.isfinite(mix).all() or (mix < 0).any():
            raise EvostyleError("style mixing weights must be finite and non-negative")
        if not torch.isfinite(angles).all() or not torch.isfinite(wrot).all():
            raise EvostyleError("rotation angles and weights must be finite")
        mix = mix / mix.sum(dim=1, keepdim=True).clamp_min(1e-12)
        mix, wrot = mix.to(self.device), wrot.to(self.device)
        targets = {}
        for s in range(len(self.styles)):
            rot = self.rotated(s, angles) if self.rotation_mode != "none" else None
            for l in self.layers:
                base = self.stats[s][l]
                shape = (b,) + (1,) * (base.dim() - 1)
                t = base.expand(b, *base.shape[1:])
                if rot is not None:
                    w = wrot.view(shape)
                    t = (1 - w) * t + w * rot[l]
                t = mix[:, s].view(shape) * t
                targets[l] = t if l not in targets else targets[l] + t
        return targets


def relative_change(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| as a float (how much a transform changed a target)."""
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


