"""Style targets: the measures (Gram, Euclidean, mean/std), the rotation modes and the per-row targets
built from style images (mixing, rotation, shuffling)."""

from evostyle.style.measures import MEASURES, Measure, gram, style_statistic
from evostyle.style.rotations import ROTATION_MODES, RotationMode, get_rotation_mode
from evostyle.style.targets import SHUFFLE_MODES, StyleTargets

__all__ = ["MEASURES", "Measure", "gram", "style_statistic", "ROTATION_MODES", "RotationMode",
           "get_rotation_mode", "SHUFFLE_MODES", "StyleTargets"]
