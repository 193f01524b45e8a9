"""Rotation modes: how a style image's target statistics turn with an angle.

A mode maps one style image's features and (B,) angles in degrees to B rotated statistics per layer
({layer: (B, ...)}, shaped as the measure's statistic, see :mod:`evostyle.style.measures`). The modes live in
the :data:`ROTATION_MODES` registry; a user adds one from Python with
``ROTATION_MODES.register("name", MyMode())``, where ``MyMode`` subclasses :class:`RotationMode`.

Built-in modes (each measured in docs/rotation.md):

``none``       no rotation; the angle is ignored.
``channel``    an orthogonal rotation of every feature vector, R(a) = Q blockdiag(rot2(n_j a)) Q^T with a
               seeded random orthogonal Q per layer: continuous, norm-preserving, 360-periodic and the
               identity at 0. For ``gram`` it is applied to the Gram matrix, G' = R G R^T. From about 30
               degrees on a third or more of G' is negative, which no post-ReLU feature map can produce.
``rectified``  R(a) applied to the post-ReLU features, then a ReLU, then rescaled to the unrotated map's
               energy (Frobenius norm): F' = relu(R F) ||F|| / ||relu(R F)||. F' is non-negative, so its
               Gram is a Gram of non-negative features at every angle; identity at 0 (relu(F) = F).
``preact``     R(a) applied to the pre-activation features Z (the convolution's output before the style
               layer's ReLU), then the ReLU and the same energy rescaling: F' = relu(R Z) ||F|| /
               ||relu(R Z)|| with F = relu(Z). Signed features are what a rotation turns naturally; the
               result is non-negative and identity at 0.
``spatial``    rotate the feature maps about their centre (bilinear, zeros outside); exact ``rot90`` at
               multiples of 90 degrees, where a Gram or mean/std target is unchanged (blind).
``pixel``      rotate the style image before the network, zoomed just enough to leave no black corners.
``dfr``        the official Deep Feature Rotation code's ops (TensorFlow, NHWC): "90" = ``transpose(3,2,1,0)``
               then reshape back (a scramble, not a rotation), "180" = flip of the width axis (Gram-blind),
               "270" = the "90" result (as that code stores it). Angles must be 0/90/180/270.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn.functional as F

from evostyle.errors import EvostyleError
from evostyle.registry import Registry
from evostyle.style.measures import MEASURES, style_statistic

if TYPE_CHECKING:  # annotations only
    from evostyle.types import ArrayLike

ROWS_PER_CHUNK = 16
"""Angles turned at once by the feature-space modes: each keeps (rows, C, H, W) copies of a layer's
style features, so chunking bounds their memory at 256-512 px."""


# -- the rotation maths ------------------------------------------------------------------------------
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


def is_quarter(angles: torch.Tensor) -> torch.Tensor:
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
        for i in torch.nonzero(is_quarter(angles_deg)).flatten().tolist():
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

    The rotated image is zoomed (bilinear sampling) just enough that every output pixel comes from
    inside the source. 0 degrees is the identity.
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


def rectify_rotated(z: torch.Tensor, angles_deg: torch.Tensor, seed: int, energy: torch.Tensor) -> torch.Tensor:
    """relu(R(a) z) for a (1, C, H, W) map z, each row rescaled to Frobenius norm ``energy`` (0-d)
    -> (B, C, H, W), non-negative. (A row whose rotation rectifies to all zeros stays zero.)"""
    r = torch.relu(rotate_features_channels(z, angles_deg, seed))
    norm = r.flatten(1).norm(dim=1).clamp_min(1e-30)
    return r * (energy / norm).view(-1, 1, 1, 1)


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


def _chunked(angles: torch.Tensor, fn) -> torch.Tensor:
    """``fn(angles chunk) -> (b, ...)`` over chunks of :data:`ROWS_PER_CHUNK` angles, concatenated."""
    return torch.cat([fn(angles[i:i + ROWS_PER_CHUNK]) for i in range(0, angles.numel(), ROWS_PER_CHUNK)])


# -- the modes ---------------------------------------------------------------------------------------
class StyleSource(Protocol):
    """What a mode reads of the style images it turns (:class:`~evostyle.style.targets.StyleTargets`
    is one; the modes do not import it, so the dependency runs from the targets to the modes only)."""

    layers: list[str]
    """The style layers."""
    measure: str
    """The style statistic (:data:`~evostyle.style.measures.MEASURES`)."""
    styles: list[torch.Tensor]
    """S style images, each (3, H, W)."""
    feats: list[dict[str, torch.Tensor]]
    """Per style, {layer: (1, C, h, w)} features."""
    stats: list[dict[str, torch.Tensor]]
    """Per style, {layer: (1, ...)} statistics of those features."""

    def layer_seed(self, layer: str) -> int:
        """Seed of the layer's channel-rotation basis."""

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Style-layer features of images (B, 3, H, W): {layer: (B, C, h, w)}."""

    def preactivations(self, s: int) -> dict[str, torch.Tensor]:
        """Style ``s``'s features before each style layer's ReLU: {layer: (1, C, h, w)}."""


class RotationMode:
    """How one style's target statistics turn with an angle. Subclass and override :meth:`statistics`.

    Attributes:
        angle_step: accepted angles are multiples of this many degrees (the search space quantises
            its angle parameters to them); None accepts any angle.
        angle_rule: the error message's rule for other angles (default: "multiples of angle_step").
        rotates: False for a mode whose targets never change (the search then skips the fusion).
        nonnegative_gram: True if, for the Gram measure, every target is the Gram of a non-negative
            feature map at every angle (reachable in principle by post-ReLU features).
    """

    angle_step: float | None = None
    angle_rule: str = ""
    rotates: bool = True
    nonnegative_gram: bool = False

    def check_angles(self, angles: ArrayLike) -> None:
        """Raise a one-line error (:attr:`angle_rule`) for an angle this mode does not accept."""
        if self.angle_step is None:
            return
        for a in torch.as_tensor(angles, dtype=torch.float64).reshape(-1).tolist():
            q = a / self.angle_step
            if abs(q - round(q)) > 1e-6:
                rule = self.angle_rule or f"this rotation mode takes multiples of {self.angle_step:g} degrees"
                raise EvostyleError(f"{rule}, got {a:g}")

    def statistics(self, st: StyleSource, s: int, angles: torch.Tensor) -> dict[str, torch.Tensor]:
        """Statistics of style ``s`` of ``st`` rotated by each of the (B,) angles: {layer: (B, ...)}."""
        raise NotImplementedError


class NoRotation(RotationMode):
    """The unrotated target for every angle."""

    rotates = False
    nonnegative_gram = True

    def statistics(self, st: StyleSource, s: int, angles: ArrayLike) -> dict[str, torch.Tensor]:
        return {l: st.stats[s][l].expand(angles.numel(), *st.stats[s][l].shape[1:]) for l in st.layers}


class ChannelRotation(RotationMode):
    """Orthogonal rotation of the post-ReLU feature vectors (for Gram: R G R^T)."""

    def statistics(self, st: StyleSource, s: int, angles: ArrayLike) -> dict[str, torch.Tensor]:
        out = {}
        for l in st.layers:
            seed = st.layer_seed(l)
            if st.measure == "gram":
                out[l] = rotate_gram_channels(st.stats[s][l], angles, seed)
            else:
                f = st.feats[s][l]
                out[l] = _chunked(angles, lambda a, f=f, seed=seed: style_statistic(
                    rotate_features_channels(f, a, seed), st.measure))
        return out


class RectifiedRotation(RotationMode):
    """relu(R F), energy-preserving: a non-negative rotated feature map at every angle."""

    nonnegative_gram = True

    def _source(self, st, s, layer):
        return st.feats[s][layer]

    def statistics(self, st: StyleSource, s: int, angles: ArrayLike) -> dict[str, torch.Tensor]:
        out = {}
        for l in st.layers:
            z, seed = self._source(st, s, l), st.layer_seed(l)
            energy = st.feats[s][l].norm()
            out[l] = _chunked(angles, lambda a, z=z, seed=seed, energy=energy: style_statistic(
                rectify_rotated(z, a, seed, energy), st.measure))
        return out


class PreactivationRotation(RectifiedRotation):
    """relu(R Z) with Z the pre-activation features, energy-preserving and non-negative."""

    def _source(self, st, s, layer):
        return st.preactivations(s)[layer]


class SpatialRotation(RotationMode):
    """Rotate the feature maps about their centre (Gram-blind at multiples of 90 degrees)."""

    nonnegative_gram = True

    def statistics(self, st: StyleSource, s: int, angles: ArrayLike) -> dict[str, torch.Tensor]:
        out = {}
        for l in st.layers:
            f = st.feats[s][l]
            stat = _chunked(angles, lambda a, f=f: style_statistic(rotate_maps(f.expand(a.numel(), -1, -1, -1), a),
                                                                   st.measure))
            if not MEASURES.get(st.measure).spatial and f.shape[-1] != f.shape[-2]:
                # rotate_maps turns square maps exactly; shape-free statistics allow it on any map
                for i in torch.nonzero(is_quarter(angles)).flatten().tolist():
                    k = int(round(float(angles[i]) / 90.0)) % 4
                    stat[i] = style_statistic(torch.rot90(f, k, dims=(-2, -1)), st.measure)[0]
            out[l] = stat
        return out


class PixelRotation(RotationMode):
    """Rotate the style image itself (no black corners) and take its features."""

    nonnegative_gram = True

    def statistics(self, st: StyleSource, s: int, angles: ArrayLike) -> dict[str, torch.Tensor]:
        parts = [st.features(rotate_image(st.styles[s], angles[i:i + ROWS_PER_CHUNK]))
                 for i in range(0, angles.numel(), ROWS_PER_CHUNK)]
        return {l: torch.cat([style_statistic(p[l], st.measure) for p in parts]) for l in st.layers}


class DFRRotation(RotationMode):
    """The official DFR code's ops at 0/90/180/270 (for reproduction)."""

    angle_step = 90.0
    angle_rule = "rotation mode 'dfr' takes angles 0, 90, 180 or 270"
    nonnegative_gram = True

    def statistics(self, st: StyleSource, s: int, angles: ArrayLike) -> dict[str, torch.Tensor]:
        self.check_angles(angles)
        return {l: style_statistic(torch.cat([dfr_op(st.feats[s][l], float(a)) for a in angles.tolist()]),
                                   st.measure) for l in st.layers}


ROTATION_MODES: Registry[RotationMode] = Registry("rotation mode")
"""name -> :class:`RotationMode`; iterate for the names."""
DEFAULT_ROTATION_MODE = "pixel"
"""The default rotation mode: on ImageNet features its rotated outputs keep the painting, where the
channel-space modes' stay close to the photo (docs/rotation.md, results/calibration/rotation)."""
for _name, _mode in (("none", NoRotation()), ("channel", ChannelRotation()), ("rectified", RectifiedRotation()),
                     ("preact", PreactivationRotation()), ("spatial", SpatialRotation()),
                     ("pixel", PixelRotation()), ("dfr", DFRRotation())):
    ROTATION_MODES.register(_name, _mode)


def get_rotation_mode(name: str) -> RotationMode:
    """The registered mode ``name`` (an unknown name lists the known ones)."""
    return ROTATION_MODES.get(name)
