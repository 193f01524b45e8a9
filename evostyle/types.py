"""Type aliases of the public API (for annotations; nothing here runs)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor | Sequence
"""Numbers as a numpy array, a torch tensor or a (nested) sequence."""
SeedLike = int | np.random.Generator | np.random.RandomState | None
"""A seed: an int, a numpy Generator (one draw seeds the run), a RandomState or None (fresh entropy)."""
