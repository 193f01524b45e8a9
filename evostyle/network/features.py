"""VGG19 feature extractor with named taps.

Layers are named by block as in Gatys et al. (2015): ``conv{b}_{i}``, ``relu{b}_{i}`` and ``pool{b}``;
the indices match torchvision's ``vgg19().features`` (relu1_1 = 1, relu2_1 = 6, relu3_1 = 11,
relu4_1 = 20, relu4_2 = 22, relu5_1 = 29). Only the layers up to the deepest requested tap are built
and run. Inputs are RGB in [0, 1], shape (B, 3, H, W); ImageNet mean/std normalisation happens inside.
Under bf16/fp16 autocast each conv + ReLU pair runs as one operator (:mod:`evostyle.conv_relu`: one
fused cuDNN kernel on a GPU); a tap on a convolution keeps that convolution separate.

Weights (``weights=``):
    ``imagenet``  torchvision's ``VGG19_Weights.IMAGENET1K_V1`` (downloaded once into the torch hub cache)
    ``random``    Kaiming-normal init from a seeded generator (what tests and offline demos use)
    a path        a state dict loaded with ``torch.load(..., weights_only=True)``; keys may carry the
                  ``features.`` prefix of a full torchvision VGG19 or not
    ``auto``      ImageNet if it loads, else ``random`` with a warning
Every extractor carries ``weights_info``, a JSON-able dict saying which weights were used.
"""

from __future__ import annotations

import hashlib
import logging
import socket
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from evostyle.errors import EvostyleError, unknown
from evostyle.network.conv_relu import conv3x3_relu, fusion_enabled

_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
DEFAULT_CONTENT_LAYER = "relu4_2"
POOLS = ("max", "avg")
log = logging.getLogger("evostyle")
DOWNLOAD_TIMEOUT_S = 30.0
"""Socket timeout (seconds per blocking network operation, not for the whole download) while fetching
the ImageNet weights."""


def _layer_names() -> list[str]:
    names, block, conv = [], 1, 0
    for v in _CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
    return names


LAYER_NAMES: tuple[str, ...] = tuple(_layer_names())
LAYER_INDEX: dict[str, int] = {n: i for i, n in enumerate(LAYER_NAMES)}


def check_layers(layers: Iterable[str]) -> list[str]:
    """Return ``layers`` as a list, or raise listing the valid names for an unknown one."""
    layers = list(layers)
    if not layers:
        raise EvostyleError("at least one layer is needed")
    for name in layers:
        if name not in LAYER_INDEX:
            raise unknown("layer", name, LAYER_NAMES)
    return layers


def _autocast_half(x: torch.Tensor) -> torch.dtype | None:
    """The half dtype autocast runs convolutions in on x's device, or None (autocast off)."""
    kind = x.device.type
    if torch.is_autocast_enabled(kind):
        dtype = torch.get_autocast_dtype(kind)
        return dtype if dtype in (torch.bfloat16, torch.float16) else None
    return None


def activation_values(hw: tuple[int, int], deepest: str) -> int:
    """Values one image's forward pass produces up to and including layer ``deepest`` (every conv,
    ReLU and pooling output) at input size ``hw`` = (H, W): what a transfer keeps for its backward
    pass, per image."""
    h, w = hw
    c, total = 3, 0
    for name in LAYER_NAMES[:LAYER_INDEX[deepest] + 1]:
        if name.startswith("pool"):
            h, w = h // 2, w // 2
        elif name.startswith("conv"):
            c = _CFG[[i for i, v in enumerate(_CFG) if v != "M"][_conv_index(name)]]
        total += c * h * w
    return total


def _conv_index(name: str) -> int:
    """0-based position of a conv/relu layer among VGG19's 16 convolutions."""
    return sum(1 for n in LAYER_NAMES[:LAYER_INDEX[name] + 1] if n.startswith("conv")) - 1


def _build(n_modules: int, pool: str) -> nn.Sequential:
    mods: list[nn.Module] = []
    c_in = 3
    for v in _CFG:
        if v == "M":
            mods.append(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))
        else:
            mods += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=False)]
            c_in = v
    return nn.Sequential(*mods[:n_modules])


def _features_state(sd: dict, source: str) -> dict[str, torch.Tensor]:
    """Extract the ``features`` part of a VGG19 state dict, keys like ``0.weight``."""
    if not isinstance(sd, dict):
        raise EvostyleError(f"{source} is not a VGG19 state dict (got {type(sd).__name__})")
    if "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    out = {}
    for k, v in sd.items():
        k2 = k[len("features."):] if k.startswith("features.") else k
        if k2.split(".")[0].isdigit() and isinstance(v, torch.Tensor):
            out[k2] = v
    ref = _build(len(LAYER_NAMES), "max").state_dict()
    missing = [k for k in ref if k not in out]
    bad = [k for k in ref if k in out and tuple(out[k].shape) != tuple(ref[k].shape)]
    if missing or bad:
        detail = f"missing {missing[:3]}" if missing else f"wrong shape for {bad[:3]}"
        raise EvostyleError(
            f"{source} is not a VGG19 state dict ({detail}); pass a torchvision vgg19 state dict, "
            "'imagenet' or 'random'"
        )
    bad = [k for k in ref if not torch.isfinite(out[k]).all()]
    if bad:
        raise EvostyleError(f"{source} has NaN or infinite values (in {', '.join(bad[:3])}); it is damaged, use "
                            "another weights file, 'imagenet' or 'random'")
    return {k: out[k].float() for k in ref}


def _imagenet_state() -> dict[str, torch.Tensor]:
    try:
        from torchvision.models import VGG19_Weights
    except ImportError as exc:  # pragma: no cover - torchvision is a dependency
        raise EvostyleError(f"torchvision is needed for ImageNet weights: {exc}") from None
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a firewalled network fails instead of hanging
    try:
        sd = VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
    except Exception as exc:  # network errors come in many types
        raise EvostyleError(
            "could not load ImageNet VGG19 weights (no network and not in the torch hub cache?): "
            f"{type(exc).__name__}; use --weights random or a local state-dict file"
        ) from None
    finally:
        socket.setdefaulttimeout(old_timeout)
    return _features_state(sd, "torchvision VGG19_Weights.IMAGENET1K_V1")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_weights(weights: str, seed: int) -> tuple[dict[str, torch.Tensor] | None, dict]:
    """Resolve a weights spec to (state dict or None for random init, info dict)."""
    if weights == "imagenet":
        return _imagenet_state(), {"spec": weights, "used": "imagenet",
                                   "source": "torchvision VGG19_Weights.IMAGENET1K_V1"}
    if weights == "auto":
        try:
            return _imagenet_state(), {"spec": weights, "used": "imagenet",
                                       "source": "torchvision VGG19_Weights.IMAGENET1K_V1"}
        except EvostyleError as exc:
            log.warning("%s; falling back to random weights (seed %d)", exc, seed)
            return None, {"spec": weights, "used": "random", "seed": seed,
                          "note": "ImageNet weights unavailable; seeded random init"}
    if weights == "random":
        return None, {"spec": weights, "used": "random", "seed": seed}
    path = Path(weights)
    if not path.is_file():
        raise EvostyleError(
            f"weights {weights!r} is neither 'imagenet', 'random', 'auto' nor an existing file"
        )
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EvostyleError(
            f"cannot load weights file {path} with weights_only=True ({type(exc).__name__}); "
            "save it with torch.save(model.state_dict(), path)"
        ) from None
    return _features_state(sd, f"weights file {path}"), {
        "spec": str(weights), "used": "file", "file": path.name, "sha256": _sha256(path)}


class VGGFeatures(nn.Module):
    """Frozen VGG19 trunk that returns named activations.

    Args:
        layers: names of the taps to return (any of :data:`LAYER_NAMES`).
        weights: ``auto`` | ``imagenet`` | ``random`` | path to a state dict.
        seed: seed for ``random`` init.
        pool: ``max`` (torchvision) or ``avg`` (Gatys et al. suggest average pooling).
    Forward: (B, 3, H, W) in [0, 1] -> {name: (B, C_l, H_l, W_l)}.
    """

    def __init__(
        self,
        layers: Sequence[str] = DEFAULT_STYLE_LAYERS + (DEFAULT_CONTENT_LAYER,),
        weights: str = "auto",
        seed: int = 0,
        pool: str = "max",
    ):
        super().__init__()
        if pool not in POOLS:
            raise unknown("pooling", pool, POOLS)
        self.layers = check_layers(layers)
        depth = max(LAYER_INDEX[n] for n in self.layers) + 1
        self.body = _build(depth, pool)
        state, info = resolve_weights(weights, seed)
        if state is None:
            gen = torch.Generator().manual_seed(int(seed))
            for m in self.body:
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
                    nn.init.zeros_(m.bias)
        else:
            self.body.load_state_dict({k: v for k, v in state.items() if int(k.split(".")[0]) < depth})
        info["pool"] = pool
        self.weights_info = info
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self._tap_at = {LAYER_INDEX[n]: n for n in self.layers}
        self._half: dict = {}  # {(conv index, dtype): (stamp, weight, bias)}: see _half_params
        self.requires_grad_(False)
        self.eval()

    @property
    def reach(self) -> tuple[str, ...]:
        """Every layer the built trunk computes (up to the deepest tap), in order."""
        return LAYER_NAMES[:len(self.body)]

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
            tap_at = {LAYER_INDEX[l]: l for l in layers}
        last = max(tap_at)
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
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
