"""Checks on a VGG ``features`` state dict: which backbone it is, whether it is whole and finite, which
known weights it holds (their fingerprint) and so which input preprocessing it needs; and the digests
that name weights in a run's record.

A ``features`` state dict maps ``N.weight`` / ``N.bias`` (N: the module's index in torchvision's
``vgg16().features`` / ``vgg19().features``) to tensors of shape (O, I, 3, 3) / (O,).
"""

from __future__ import annotations

import hashlib
import math
import os

import torch

from evostyle.errors import EvostyleError, flag
from evostyle.network.backbones import BACKBONES, PREPROCESSINGS, Backbone, backbone

CAFFE_VGG16_FIRST_BIASES = (0.73429835, -0.30912212, -0.04577766, -0.06418542, -0.074358866, 0.019675018,
                            0.035415243, 0.013485669, 0.023680462, 0.03757768, 0.09722325, 0.21327873, 0.18837857)
"""bias[0] of each of the original ImageNet VGG16's 13 convolutions (conv1_1 ... conv5_3), as published:
the fingerprint of those weights."""
FINGERPRINTS = {"caffe-vgg16": ("vgg16", "caffe", CAFFE_VGG16_FIRST_BIASES)}
"""Known weights: name -> (backbone, the preprocessing they need, bias[0] of every convolution)."""


def features_sha256(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the tensors themselves (key, shape and float32 bytes, in key order): the same for the
    same weights whatever file carried them."""
    h = hashlib.sha256()
    for k in sorted(state, key=lambda k: (int(k.split(".")[0]), k)):
        t = state[k].detach().to("cpu", torch.float32).contiguous()
        h.update(f"{k}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def conv_list(state: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, bias) of each convolution in a ``features`` state dict, by module index."""
    idx = sorted({int(k.split(".")[0]) for k in state if k.endswith(".weight")})
    return [(state[f"{i}.weight"], state.get(f"{i}.bias")) for i in idx]


def to_state(convs: list[tuple[torch.Tensor, torch.Tensor]], net: Backbone) -> dict[str, torch.Tensor]:
    """A ``features`` state dict of ``net`` from its convolutions' (weight (O, I, 3, 3), bias (O,))."""
    return {f"{i}.{part}": t.detach().float().contiguous()
            for i, (w, b) in zip(net.conv_keys, convs) for part, t in (("weight", w), ("bias", b))}


def match_backbone(convs: list[tuple[torch.Tensor, torch.Tensor | None]], source: str,
                   wanted: str | Backbone = "auto") -> Backbone:
    """The backbone whose convolutions ``convs`` are (``wanted``, or found by their count and shapes);
    refuses, in one line, anything that is not a whole VGG convolutional base."""
    shapes = [tuple(w.shape) for w, _ in convs]
    candidates = list(BACKBONES.names()) if wanted == "auto" else [backbone(wanted).name]
    for name in sorted(candidates, key=lambda n: -len(BACKBONES.get(n).conv_shapes)):
        net = BACKBONES.get(name)
        if [(o, i, 3, 3) for o, i in net.conv_shapes] == shapes[:len(net.conv_shapes)]:
            n = len(net.conv_shapes)
            if any(b is None or tuple(b.shape) != (s[0],) for (_, b), s in zip(convs[:n], shapes)):
                raise EvostyleError(f"{source} has a {net.name} convolution without a matching bias; give the "
                                    "whole convolutional base")
            return net
    found = f"{len(shapes)} convolutions" + (f", the first {shapes[0]}" if shapes else "")
    want = " or ".join(c.upper() for c in candidates)
    raise EvostyleError(f"{source} is not a {want} convolutional base ({found}); give weights of that "
                        f"architecture{'' if wanted == 'auto' else ' or another ' + flag('backbone')}")


def check_finite(state: dict[str, torch.Tensor], source: str) -> None:
    bad = [k for k, v in state.items() if not torch.isfinite(v).all()]
    if bad:
        raise EvostyleError(f"{source} has NaN or infinite values (in {', '.join(bad[:3])}); it is damaged, use "
                            "another weights file, 'imagenet', 'offline' or 'random'")


def first_mismatch(state: dict[str, torch.Tensor], ref: tuple[float, ...]) -> int | None:
    """0-based index of the first convolution whose bias[0] differs from ``ref`` (by more than 1e-6
    relative; a missing convolution differs), or None where every one matches."""
    firsts = [float(b[0]) for _, b in conv_list(state)]
    return next((i for i, r in enumerate(ref)
                 if i >= len(firsts) or not math.isclose(firsts[i], r, rel_tol=1e-6, abs_tol=1e-9)), None)


def identify(state: dict[str, torch.Tensor], net: Backbone) -> str | None:
    """The :data:`FINGERPRINTS` name these weights match (:func:`first_mismatch` finds none), or None."""
    return next((name for name, (bb, _, ref) in FINGERPRINTS.items()
                 if bb == net.name and first_mismatch(state, ref) is None), None)


def check_preprocessing(state: dict[str, torch.Tensor], net: Backbone, declared: str | None, source: str) -> str:
    """The preprocessing these weights need: a fingerprint decides where one matches (a declaration
    that contradicts it is refused), else ``declared``, else torchvision's."""
    known = identify(state, net)
    if declared is not None:
        PREPROCESSINGS.check(declared)
    if known is not None:
        need = FINGERPRINTS[known][1]
        if declared not in (None, need):
            raise EvostyleError(f"{source} holds the {known} weights, which need {need!r} preprocessing, but it "
                                f"declares {declared!r}; convert it again with evostyle weights import "
                                f"--preprocessing {need}")
        return need
    return declared or "torchvision"


def _trim(state: dict[str, torch.Tensor], net: Backbone) -> dict[str, torch.Tensor]:
    return {f"{i}.{p}": state[f"{i}.{p}"] for i in net.conv_keys for p in ("weight", "bias")}


def from_state_dict(sd: object, source: str, wanted: str | Backbone = "auto") -> tuple[dict, Backbone]:
    """(``features`` state, backbone) of a torchvision-style state dict (a full ``vgg16()``/``vgg19()``
    one with the ``features.`` prefix, or ``features`` alone; nested under ``state_dict`` too)."""
    if not isinstance(sd, dict):
        raise EvostyleError(f"{source} is not a VGG state dict (got {type(sd).__name__})")
    if isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    state = {}
    for k, v in sd.items():
        k2 = k[len("features."):] if isinstance(k, str) and k.startswith("features.") else k
        if isinstance(k2, str) and k2.split(".")[0].isdigit() and isinstance(v, torch.Tensor):
            if not v.is_floating_point() or v.layout != torch.strided or v.is_meta:
                raise EvostyleError(f"{source} holds {k} as {v.dtype}, {v.layout}{' on meta' if v.is_meta else ''}; "
                                    "weights must be dense floating-point tensors")
            state[k2] = v
    convs = conv_list(state)
    net = match_backbone(convs, source, wanted)
    expect = set(net.conv_keys)
    have = sorted({int(k.split(".")[0]) for k in state if k.endswith(".weight")})[:len(expect)]
    if set(have) != expect:  # right shapes at the wrong module indices: another layout than features
        raise EvostyleError(f"{source} has its convolutions at features indices {have[:4]}..., not "
                            f"{net.name}'s {sorted(expect)[:4]}...; it is not a torchvision {net.name} state dict")
    state = _trim(state, net)
    check_finite(state, source)
    return {k: v.float() for k, v in state.items()}, net
