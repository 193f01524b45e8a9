"""VGG feature extractor with named taps.

Layers are named by block as in Gatys et al. (2015): ``conv{b}_{i}``, ``relu{b}_{i}`` and ``pool{b}``;
the indices match torchvision's ``vgg19().features`` / ``vgg16().features`` (VGG19: relu1_1 = 1,
relu2_1 = 6, relu3_1 = 11, relu4_1 = 20, relu4_2 = 22, relu5_1 = 29). The backbone is a registry entry
(:data:`~evostyle.network.backbones.BACKBONES`: ``vgg19``, ``vgg16``). Only the layers up to the
deepest requested tap are built and run. Inputs are RGB in [0, 1], shape (B, 3, H, W); the weights'
own preprocessing (torchvision's mean/std, or Caffe's BGR 0-255 minus the means) happens inside.
Under bf16/fp16 autocast each conv + ReLU pair runs as one operator (:mod:`evostyle.network.conv_relu`: one
fused cuDNN kernel on a GPU); a tap on a convolution keeps that convolution separate.

Weights (``weights=``) are resolved by :func:`evostyle.network.weights.resolve_weights`: ``auto``,
``imagenet``, ``offline``, ``random`` or a file. Every extractor carries ``weights_info``, a JSON-able
dict saying which weights, backbone and preprocessing were used.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from evostyle.errors import unknown
from evostyle.network.backbones import BACKBONES, POOLS, Backbone
from evostyle.network.conv_relu import conv3x3_relu, fusion_enabled
from evostyle.network.weights import DOWNLOAD_TIMEOUT_S, Weights, resolve_weights

_VGG19 = BACKBONES.get("vgg19")
LAYER_NAMES: tuple[str, ...] = _VGG19.layer_names
"""VGG19's layer names (the default backbone); other backbones: ``BACKBONES.get(name).layer_names``."""
LAYER_INDEX: dict[str, int] = _VGG19.layer_index
__all__ = ["VGGFeatures", "LAYER_NAMES", "LAYER_INDEX", "POOLS", "DOWNLOAD_TIMEOUT_S", "resolve_weights"]


def _autocast_half(x: torch.Tensor) -> torch.dtype | None:
    """The half dtype autocast runs convolutions in on x's device, or None (autocast off)."""
    kind = x.device.type
    if torch.is_autocast_enabled(kind):
        dtype = torch.get_autocast_dtype(kind)
        return dtype if dtype in (torch.bfloat16, torch.float16) else None
    return None


class VGGFeatures(nn.Module):
    """Frozen VGG trunk that returns named activations.

    Args:
        layers: names of the taps to return (layers of the backbone that is used).
        weights: ``auto`` | ``imagenet`` | ``offline`` | ``random`` | a file | a resolved
            :class:`~evostyle.network.weights.Weights` (see :mod:`evostyle.network.weights`).
        seed: seed for ``random`` init.
        pool: ``max`` (torchvision) or ``avg`` (Gatys et al. suggest average pooling).
        backbone: a :data:`~evostyle.network.backbones.BACKBONES` name, or ``auto``: the weights' own
            (VGG19 for weights that have none). ``auto`` weights may change it (to the offline VGG16).
    Forward: (B, 3, H, W) RGB in [0, 1] -> {name: (B, C_l, H_l, W_l)}.
    """

    def __init__(
        self,
        layers: Sequence[str] | None = None,
        weights: str | Weights = "auto",
        seed: int = 0,
        pool: str = "max",
        backbone: str = "auto",
    ):
        super().__init__()
        if pool not in POOLS:
            raise unknown("pooling", pool, POOLS)
        resolved = resolve_weights(weights, backbone, seed)
        self.backbone: Backbone = resolved.backbone
        self.preprocessing = resolved.preprocessing
        self.layers = self.backbone.check_layers(
            layers if layers is not None else self.backbone.style_layers + (self.backbone.content_layer,))
        depth = max(self.backbone.layer_index[n] for n in self.layers) + 1
        self.body = self.backbone.build(depth, pool)
        if resolved.state is None:
            gen = torch.Generator().manual_seed(int(seed))
            for m in self.body:
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
                    nn.init.zeros_(m.bias)
        else:
            self.body.load_state_dict({k: v for k, v in resolved.state.items() if int(k.split(".")[0]) < depth})
        self.weights_info = {**resolved.info, "pool": pool}
        self._resolved = resolved
        a, b, self._flip = self.preprocessing.affine()
        self.register_buffer("pre_scale", a)
        self.register_buffer("pre_shift", b)
        self._tap_at = {self.backbone.layer_index[n]: n for n in self.layers}
        self._half: dict = {}  # {(conv index, dtype): (stamp, weight, bias)}: see _half_params
        self.requires_grad_(False)
        self.eval()

    def with_layers(self, layers: Sequence[str]) -> VGGFeatures:
        """Another extractor with the same weights (resolved once), backbone and pooling, built up to
        other taps (for example a layer deeper than this one reaches)."""
        return VGGFeatures(layers, self._resolved, self.weights_info.get("seed", 0), self.weights_info["pool"])

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> the network's input convention (channel order, scale, mean)."""
        if self._flip:
            x = x.flip(1)
        return x * self.pre_scale.to(x.dtype) + self.pre_shift.to(x.dtype)

    @property
    def reach(self) -> tuple[str, ...]:
        """Every layer the built trunk computes (up to the deepest tap), in order."""
        return self.backbone.layer_names[:len(self.body)]

    def _half_params(self, i: int, half: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Conv ``body[i]``'s weight and bias cast to ``half``, cast once and reused while the
        parameters keep their storage, layout and version (cast in every eager forward pass they were
        26 extra kernels, each launch host time). Parameters that require a gradient, and traced code,
        are cast afresh each call."""
        mod = self.body[i]
        w, b = mod.weight, mod.bias
        if w.requires_grad or b.requires_grad or torch.compiler.is_compiling():
            return w.to(half), b.to(half)
        stamp = (w.data_ptr(), w.stride(), w._version, b.data_ptr(), b._version)
        hit = self._half.get((i, half))
        if hit is None or hit[0] != stamp:
            hit = self._half[(i, half)] = (stamp, w.to(half), b.to(half))
        return hit[1], hit[2]

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """(B, 3, H, W) in [0, 1] -> {tap: features}. ``layers`` returns those layers instead of the
        taps and stops after the deepest of them: any layer the built trunk reaches (the taps, or for
        example a convolution's output before its ReLU)."""
        if layers is None:
            tap_at = self._tap_at
        else:
            unknown_taps = [l for l in layers if l not in self.reach]
            if unknown_taps:
                raise unknown("layer this extractor reaches", unknown_taps[0], self.reach)
            tap_at = {self.backbone.layer_index[l]: l for l in layers}
        last = max(tap_at)
        x = self.preprocess(x)
        half = _autocast_half(x) if fusion_enabled() else None
        out, i = {}, 0
        while i <= last:
            mod = self.body[i]
            if half is not None and isinstance(mod, nn.Conv2d) and i < last and i not in tap_at:
                # the conv and the ReLU after it (every VGG conv has one) as one cuDNN kernel
                x = conv3x3_relu(x.to(half), *self._half_params(i, half))
                i += 1
            else:
                x = mod(x)
            if i in tap_at:
                out[tap_at[i]] = x
            i += 1
        return out

    def train(self, mode: bool = True) -> VGGFeatures:  # always frozen
        return super().train(False)
