"""The feature networks a transfer can use (:data:`BACKBONES`) and the input conventions their weights
were trained with (:data:`PREPROCESSINGS`).

A :class:`Backbone` is the convolutional trunk of a VGG net (Simonyan & Zisserman 2015, "Very Deep
Convolutional Networks for Large-Scale Image Recognition", configurations D = VGG16 and E = VGG19):
its channel plan, its layer names by block as in Gatys et al. (2015) (``conv{b}_{i}``, ``relu{b}_{i}``,
``pool{b}``, indices as in torchvision's ``vgg16().features`` / ``vgg19().features``) and its default
style and content layers. A :class:`Preprocessing` maps RGB images in [0, 1] to what a set of weights
expects: torchvision's ImageNet weights take RGB normalised by mean/std; the original Caffe weights take
BGR in 0-255 with the channel means subtracted and no division.

Both are registries: ``BACKBONES.register("vgg11", Backbone(...))`` adds a network every command can
name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

import torch
from torch import nn

from evostyle.errors import EvostyleError, unknown
from evostyle.registry import Registry

GATYS_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
GATYS_CONTENT_LAYER = "relu4_2"
POOLS = ("max", "avg")


@dataclass(frozen=True)
class Backbone:
    """A VGG trunk: ``plan`` lists each convolution's output channels, ``"M"`` for a 2x2 pooling.

    Attributes:
        name: registry name (``vgg19``).
        plan: channel plan of ``features`` (3x3 convolutions, padding 1, each followed by a ReLU).
        torchvision: (builder, weights enum) names in ``torchvision.models`` for its ImageNet weights.
        style_layers / content_layer: the defaults a transfer uses on this backbone.
    """

    name: str
    plan: tuple
    torchvision: tuple[str, str]
    style_layers: tuple[str, ...] = GATYS_STYLE_LAYERS
    content_layer: str = GATYS_CONTENT_LAYER
    description: str = field(default="", compare=False)

    @cached_property
    def layer_names(self) -> tuple[str, ...]:
        """Every module of ``features`` by name, in order (conv, relu, ..., pool)."""
        names, block, conv = [], 1, 0
        for v in self.plan:
            if v == "M":
                names.append(f"pool{block}")
                block, conv = block + 1, 0
            else:
                conv += 1
                names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
        return tuple(names)

    @cached_property
    def layer_index(self) -> dict[str, int]:
        """Layer name -> index in ``features`` (torchvision's numbering)."""
        return {n: i for i, n in enumerate(self.layer_names)}

    @cached_property
    def conv_shapes(self) -> tuple[tuple[int, int], ...]:
        """(out, in) channels of each convolution, in order."""
        shapes, c_in = [], 3
        for v in self.plan:
            if v != "M":
                shapes.append((v, c_in))
                c_in = v
        return tuple(shapes)

    @cached_property
    def conv_keys(self) -> tuple[int, ...]:
        """Index in ``features`` of each convolution (the ``N`` of a state dict's ``N.weight``)."""
        return tuple(i for i, n in enumerate(self.layer_names) if n.startswith("conv"))

    def check_layers(self, layers: Iterable[str]) -> list[str]:
        """``layers`` as a list, or the one-line error listing this backbone's names for an unknown one."""
        layers = list(layers)
        if not layers:
            raise EvostyleError("at least one layer is needed")
        for name in layers:
            if name not in self.layer_index:
                raise unknown(f"{self.name} layer", name, self.layer_names)
        return layers

    def deepest(self, layers: Iterable[str]) -> str:
        return max(layers, key=self.layer_index.__getitem__)

    def pools_before(self, layer: str) -> int:
        """How many poolings (each halving the map) run before ``layer``."""
        return sum(1 for n in self.layer_names[:self.layer_index[layer]] if n.startswith("pool"))

    def preceding(self, layer: str) -> str:
        """The module before ``layer`` (``relu3_1`` -> ``conv3_1``)."""
        return self.layer_names[self.layer_index[layer] - 1]

    def activation_values(self, hw: tuple[int, int], deepest: str) -> int:
        """Values one image's forward pass produces up to and including ``deepest`` (every conv, ReLU
        and pooling output) at input size ``hw`` = (H, W) px: what a transfer keeps for its backward
        pass, per image."""
        h, w = hw
        c, total, conv = 3, 0, 0
        for name in self.layer_names[:self.layer_index[deepest] + 1]:
            if name.startswith("pool"):
                h, w = h // 2, w // 2
            elif name.startswith("conv"):
                c = self.conv_shapes[conv][0]
                conv += 1
            total += c * h * w
        return total

    def build(self, n_modules: int | None = None, pool: str = "max") -> nn.Sequential:
        """``features`` (its first ``n_modules`` modules), freshly initialised."""
        if pool not in POOLS:
            raise unknown("pooling", pool, POOLS)
        mods: list[nn.Module] = []
        convs = iter(self.conv_shapes)
        for v in self.plan:
            if v == "M":
                mods.append(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))
            else:
                c_out, c_in = next(convs)
                mods += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=False)]
        return nn.Sequential(*mods[:n_modules])


BACKBONES: Registry[Backbone] = Registry("backbone")
BACKBONES.register("vgg19", Backbone(
    "vgg19", (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
    ("vgg19", "VGG19_Weights"), description="VGG19 (configuration E): Gatys et al.'s network"))
BACKBONES.register("vgg16", Backbone(
    "vgg16", (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    ("vgg16", "VGG16_Weights"), description="VGG16 (configuration D): Johnson et al.'s loss network"))


@dataclass(frozen=True)
class Preprocessing:
    """How a set of weights wants its input: ``x_net = (scale * x[order] - mean) / std`` per channel.

    ``order`` is ``RGB`` or ``BGR`` (the network's channel order); ``mean`` and ``std`` are given in the
    network's order and in the scaled units (0-255 for Caffe).
    """

    name: str
    order: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    description: str = field(default="", compare=False)

    def affine(self, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(a, b, flip) with ``x_net = a * x[:, ::-1 if flip] + b``; a, b of shape (1, 3, 1, 1)."""
        std = torch.tensor(self.std, dtype=dtype).view(1, 3, 1, 1)
        a = self.scale / std
        b = -torch.tensor(self.mean, dtype=dtype).view(1, 3, 1, 1) / std
        return a, b, self.order == "BGR"

    def describe(self) -> str:
        div = "" if self.std == (1.0, 1.0, 1.0) else f", divided by std {self.std}"
        return f"{self.order}, 0-{self.scale:g}, mean {self.mean} subtracted{div}"


PREPROCESSINGS: Registry[Preprocessing] = Registry("preprocessing")
PREPROCESSINGS.register("torchvision", Preprocessing(
    "torchvision", "RGB", 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
    description="torchvision's ImageNet weights: RGB in [0, 1], normalised by the ImageNet mean and std"))
PREPROCESSINGS.register("caffe", Preprocessing(
    "caffe", "BGR", 255.0, (103.939, 116.779, 123.68),
    description="the original Caffe VGG weights (and Keras' VGG16/VGG19): BGR in 0-255, channel means "
                "subtracted, no division"))


DEFAULT_BACKBONE = "vgg19"
"""What ``auto`` means for weights that bring no backbone of their own (``imagenet``, ``random``)."""


def backbone(name: str | Backbone) -> Backbone:
    """The registered backbone called ``name``, :data:`DEFAULT_BACKBONE` for ``auto`` (a
    :class:`Backbone` passes through)."""
    if isinstance(name, Backbone):
        return name
    return BACKBONES.get(DEFAULT_BACKBONE if name == "auto" else name)
