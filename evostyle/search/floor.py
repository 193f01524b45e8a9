"""The noise floor of a diversity figure: how far a candidate's outputs move when only its seed changes.

K outputs that differ by 0.05 say little until one knows what the same candidate gives under another
seed. The seed reaches an output through its start (``noise``, an ``init`` with noise) and its
content-target perturbation (``perturb``); rotation angles, mixing and layer weights do not depend on
it. So the candidate is run again with R other seeds, and for every diversity metric the floor is
that metric's distance between output k under one seed and output k under another (averaged over k
and the seed pairs). Diversity at the floor is what a re-run would give anyway; diversity above it
comes from the candidate's parameters. A candidate nothing seeds has a floor of 0 up to the
device's non-determinism.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from evostyle.search.evaluator import Evaluator
from evostyle.search.scoring import DIVERSITY_METRICS

SEEDS = 2
"""How many other seeds a search runs its best candidate with (one more transfer of 2 candidates)."""


@dataclass(frozen=True)
class NoiseFloor:
    """A candidate re-run with other seeds."""

    seeds: tuple[int, ...]
    """The run seeds it was re-run with (output k of seed s has noise seed ``derived_seed(s, k)``)."""
    floor: dict[str, float]
    """metric -> mean distance between the same output under two of the seeds (NaN if a re-run failed)."""
    diversity: dict[str, tuple[float, ...]]
    """metric -> the candidate's diversity (among its K outputs) under each seed."""

    def as_dict(self) -> dict:
        """JSON-able, as summary.json keeps it."""
        return {"seeds": list(self.seeds), "floor": dict(self.floor),
                "diversity": {m: list(v) for m, v in self.diversity.items()}}


def noise_floor(evaluator: Evaluator, values: dict[str, float], seeds: Sequence[int]) -> NoiseFloor:
    """Run the candidate ``values`` ({name: value}) once per seed in ``seeds`` (at least 2), as one
    batch in this process, eager like the same-target baseline; see the module docstring."""
    r = len(seeds)
    if r < 2 or len(set(seeds)) != r:
        raise ValueError(f"a noise floor needs at least two different seeds, got {list(seeds)}")
    batch = {n: torch.full((r,), float(x), dtype=torch.float64) for n, x in values.items()}
    ev = evaluator.evaluate_here(batch, compile=False, noise_seeds=seeds)
    k = evaluator.k
    # (K, R, 3, H, W): "candidate" k holds output k under each seed, so a metric's diversity among a
    # candidate's outputs becomes its distance between seeds.
    by_output = ev.images.transpose(0, 1).contiguous()
    mix = evaluator.rows({n: v[:1] for n, v in batch.items()}).mix[:1].expand(k * r, -1)
    across = evaluator.score_images(by_output, mix)
    failed = bool(ev.failed.any())
    floor = {m: float("nan") if failed else float(across[f"diversity_{m}"].mean()) for m in DIVERSITY_METRICS}
    diversity = {m: tuple(float(x) for x in ev.terms[f"diversity_{m}"]) for m in DIVERSITY_METRICS}
    return NoiseFloor(tuple(int(s) for s in seeds), floor, diversity)
