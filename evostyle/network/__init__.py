"""The VGG19 feature extractor (named taps, weights), its fused convolution + ReLU, and the device and
precision settings it runs with."""

from evostyle.network.device import PRECISIONS, resolve_device, resolve_precision
from evostyle.network.features import LAYER_NAMES, VGGFeatures

__all__ = ["VGGFeatures", "LAYER_NAMES", "PRECISIONS", "resolve_device", "resolve_precision"]
