"""Readers for VGG convolutional bases exported by other frameworks: ONNX graphs and Keras HDF5 files.

Each returns the 3x3 convolutions in order as (weight (O, I, 3, 3), bias (O,) or None) pairs, how they
were found, and the preprocessing the export's names suggest; :func:`evostyle.network.weights.import_weights`
matches them to a backbone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import torch

from evostyle.errors import EvostyleError

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
