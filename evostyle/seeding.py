"""The one rule for the seeds evostyle derives from a run's seed.

Output k of a candidate whose run seed is s starts from noise seed ``s * 1000 + k`` (its start noise, its
content perturbation's draw), and a style layer's channel-rotation basis uses ``s * 1000 + 17 + l``.
torch seeds a generator with an integer in [0, 2**64) (or a negative one of 64 bits), while the
settings accept any seed in [0, 2**63): the derived seed is therefore taken modulo 2**64. Below
s = 1.8e16 that changes nothing, so every run made before the rule keeps its seeds.
"""

from __future__ import annotations

SEED_MAX = 2**63 - 1
"""The largest run seed a setting or flag accepts (seeds are integers in [0, SEED_MAX])."""
SEED_STRIDE = 1000
"""Derived seeds per run seed (outputs and layers share it: a K of 1000 or more overlaps the next seed's)."""
TORCH_SEED_SPAN = 2**64
"""torch's seeds: integers modulo 2**64 (``torch.Generator.manual_seed``)."""


def derived_seed(seed: int, index: int) -> int:
    """``seed * SEED_STRIDE + index``, in torch's seed range (modulo 2**64); see the module docstring."""
    return (int(seed) * SEED_STRIDE + int(index)) % TORCH_SEED_SPAN


def check_seed(seed: int, name: str = "seed") -> int:
    """``seed`` if it is an integer in [0, SEED_MAX], else the one-line error naming setting ``name``."""
    from evostyle.errors import EvostyleError, flag
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise EvostyleError(f"{flag(name)} must be an integer from 0 to {SEED_MAX} (2**63 - 1), got {seed!r}")
    return seed
