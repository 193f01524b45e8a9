"""Style targets per output: mixing, rotation and fusion, and shuffling.

For output row b, layer l and style images s = 1..S the target statistic is

    T[b, l] = sum_s m[b, s] * ((1 - w[b]) * stat(F[s, l]) + w[b] * stat(rot(F[s, l], angle[b])))

with convex mixing weights m (a row of the simplex, as neural-style mixes styles), the rotation weight
w (DFR's fusion weight; 1 = fully rotated), ``stat`` the measure's statistic
(:mod:`evostyle.style.measures`) and ``rot`` a rotation mode from :mod:`evostyle.style.rotations`. The
*unrotated* target of a row is the same sum with w = 0 (:meth:`StyleTargets.unrotated`): what a
candidate's outputs are scored against.

Shuffle (a fixed, seeded transform of every style feature map, applied before the statistic):
    ``channel``  permute channels (changes a Gram target: G' = P G P^T).
    ``spatial``  permute spatial positions (a Gram matrix is exactly invariant: Gram-blind).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from evostyle.errors import EvostyleError, unknown
from evostyle.network.backbones import Backbone, backbone
from evostyle.seeding import derived_seed
from evostyle.style.measures import MEASURES, style_statistic
from evostyle.style.rotations import ROTATION_MODES, RotationMode

if TYPE_CHECKING:  # annotations only
    from collections.abc import Sequence

    from torch import nn

SHUFFLE_MODES = ("none", "channel", "spatial")


def preactivation_layer(layer: str, net: str | Backbone = "auto") -> str:
    """The convolution whose output a ReLU tap of ``net`` rectifies (``relu3_1`` -> ``conv3_1``)."""
    if not layer.startswith("relu"):
        raise EvostyleError(f"rotation mode 'preact' needs ReLU style layers, got {layer!r}")
    return backbone(net).preceding(layer)


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
        extractor: a :class:`~evostyle.network.features.VGGFeatures` (any module mapping (B, 3, H, W)
            images and a tuple of layer names to {name: features}).
        styles: list of S style images, each (3, H, W) at the output size.
        layers: style layer names.
        measure: ``gram`` | ``euclidean`` | ``meanstd``.
        rotation_mode: a name in :data:`~evostyle.style.rotations.ROTATION_MODES` (or a RotationMode
            object).
        shuffle: one of :data:`SHUFFLE_MODES`, applied to every style feature map.
        seed: seeds the channel rotation bases and the shuffles.
    """

    def __init__(
        self,
        extractor: nn.Module,
        styles: Sequence[torch.Tensor],
        layers: Sequence[str],
        measure: str = "gram",
        rotation_mode: str | RotationMode = "rectified",
        shuffle: str = "none",
        seed: int = 0,
        device: torch.device | None = None,
    ):
        self.mode: RotationMode = (rotation_mode if isinstance(rotation_mode, RotationMode)
                                   else ROTATION_MODES.get(rotation_mode))
        if shuffle not in SHUFFLE_MODES:
            raise unknown("shuffle mode", shuffle, SHUFFLE_MODES)
        MEASURES.check(measure)
        if not styles:
            raise EvostyleError("at least one style image is needed")
        self.extractor, self.layers, self.measure = extractor, list(layers), measure
        self.rotation_mode, self.shuffle, self.seed = rotation_mode, shuffle, int(seed)
        self.device = device or next(extractor.parameters()).device
        self.styles = [s.to(self.device).float() for s in styles]
        self._preact: dict[int, dict[str, torch.Tensor]] = {}
        with torch.no_grad():
            self.feats = [self.features(s[None]) for s in self.styles]  # S x {layer: (1,C,h,w)}
            self.stats = [{l: style_statistic(fs[l], measure) for l in self.layers} for fs in self.feats]

    def _shuffle(self, maps: dict[str, torch.Tensor], names) -> dict[str, torch.Tensor]:
        """{style layer: maps[name]} shuffled with the layer's seeded permutation (float32)."""
        return {l: shuffle_features(maps[n].float(), self.shuffle, self.seed + i)
                for i, (l, n) in enumerate(zip(self.layers, names))}

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Style-layer features of images x (B, 3, H, W), shuffled: {layer: (B, C, h, w)} float32."""
        return self._shuffle(self.extractor(x, tuple(self.layers)), self.layers)

    @torch.no_grad()
    def preactivations(self, s: int) -> dict[str, torch.Tensor]:
        """Style ``s``'s pre-activation features (each style layer's convolution output, before its
        ReLU), shuffled like the features: {layer: (1, C, h, w)}. Computed once, on first use."""
        if s not in self._preact:
            net = getattr(self.extractor, "backbone", "auto")
            names = [preactivation_layer(l, net) for l in self.layers]
            self._preact[s] = self._shuffle(self.extractor(self.styles[s][None], tuple(names)), names)
        return self._preact[s]

    def layer_seed(self, layer: str) -> int:
        """Seed of the layer's channel-rotation basis."""
        return derived_seed(self.seed, 17 + self.layers.index(layer))

    @torch.no_grad()
    def rotated(self, s: int, angles: torch.Tensor) -> dict[str, torch.Tensor]:
        """Statistics of style ``s`` rotated by each angle: {layer: (B, ...)}."""
        angles = torch.as_tensor(angles, dtype=torch.float64).reshape(-1).cpu()
        return self.mode.statistics(self, s, angles)

    def _rows(self, mix) -> torch.Tensor:
        """(B, S) mixing weights, checked and renormalised to rows of the simplex, on the device."""
        mix = torch.as_tensor(mix, dtype=torch.float32).reshape(-1, len(self.styles))
        if not torch.isfinite(mix).all() or (mix < 0).any():
            raise EvostyleError("style mixing weights must be finite and non-negative")
        return (mix / mix.sum(dim=1, keepdim=True).clamp_min(1e-12)).to(self.device)

    @torch.no_grad()
    def unrotated(self, mix: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-row unrotated (mixed) targets for (B, S) weights: {layer: (B, ...)} float32."""
        mix = self._rows(mix)
        return {l: sum(mix[:, s].view(-1, *(1,) * (self.stats[s][l].dim() - 1)) * self.stats[s][l]
                       for s in range(len(self.styles))) for l in self.layers}

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
        mix = self._rows(mix)
        b = mix.shape[0]
        angles = torch.as_tensor(angles, dtype=torch.float64).reshape(-1).cpu()
        wrot = torch.as_tensor(rotation_weight, dtype=torch.float32).reshape(-1)
        if angles.numel() != b or wrot.numel() != b:
            raise ValueError("mix, angles and rotation_weight need the same number of rows")
        if not torch.isfinite(angles).all() or not torch.isfinite(wrot).all():
            raise EvostyleError("rotation angles and weights must be finite")
        self.mode.check_angles(angles)
        wrot = wrot.to(self.device)
        targets = {}
        for s in range(len(self.styles)):
            rot = self.rotated(s, angles) if self.mode.rotates else None
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


