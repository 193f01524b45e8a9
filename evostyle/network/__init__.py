"""The VGG feature extractor (backbones, weights, named taps), its fused convolution + ReLU, and the
device and precision settings it runs with."""

from evostyle.network.backbones import BACKBONES, PREPROCESSINGS, Backbone, Preprocessing
from evostyle.network.device import PRECISIONS, resolve_device, resolve_precision
from evostyle.network.features import LAYER_NAMES, VGGFeatures
from evostyle.network.weights import WEIGHT_SOURCES, Weights, resolve_weights

__all__ = ["VGGFeatures", "LAYER_NAMES", "BACKBONES", "Backbone", "PREPROCESSINGS", "Preprocessing", "WEIGHT_SOURCES",
           "Weights", "resolve_weights", "PRECISIONS", "resolve_device", "resolve_precision"]
