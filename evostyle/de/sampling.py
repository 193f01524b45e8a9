"""Initial populations in the unit cube: the "sampling" of a population optimiser (pymoo's term).

Every draw comes from the optimiser's seeded CPU ``torch.Generator``, so a run's initial population is
the same on CPU and GPU; the order of the draws is part of a run's reproducibility (a search's golden
output depends on it), so do not reorder them.
"""

from __future__ import annotations

import torch

from ..errors import EvostyleError

INITS = ("latinhypercube", "sobol", "halton", "random")
"""The initial populations a name can ask for (scipy's names); an (N, D) array is the other choice."""


def check_init(init: object) -> None:
    """A name from :data:`INITS`, or anything else (an array, checked where it is scaled)."""
    if isinstance(init, str) and init not in INITS:
        raise EvostyleError(f"unknown init {init!r}; valid: {', '.join(INITS)} or an (N, D) array")


def latin_hypercube(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    """(n, d) Latin hypercube sample in [0, 1) (one point per 1/n slab in every column)."""
    seg = torch.rand(n, d, generator=gen, dtype=torch.float64) / n
    pts = seg + torch.arange(n, dtype=torch.float64)[:, None] / n
    out = torch.empty_like(pts)
    for j in range(d):
        out[:, j] = pts[torch.randperm(n, generator=gen), j]
    return out


def initial_population(init: str, n: int, d: int, gen: torch.Generator, seed: int | None) -> torch.Tensor:
    """Unit-cube initial population (n, d) for a name from :data:`INITS`.

    ``seed`` seeds scrambled Sobol (None: one draw from ``gen``); Halton always takes one draw from
    ``gen``. Arrays are handled by :class:`~evostyle.de.base.PopulationOptimizer`, which knows the bounds.
    """
    if not isinstance(init, str):
        raise TypeError("initial_population needs a name; arrays are handled by the solver")
    check_init(init)
    if init == "latinhypercube":
        return latin_hypercube(n, d, gen)
    if init == "random":
        return torch.rand(n, d, generator=gen, dtype=torch.float64)
    if init == "sobol":
        s = int(torch.randint(0, 2**31 - 1, (1,), generator=gen)) if seed is None else int(seed)
        return torch.quasirandom.SobolEngine(d, scramble=True, seed=s).draw(n, dtype=torch.float64)
    from scipy.stats import qmc  # halton; scipy is only needed for this one
    s = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    return torch.from_numpy(qmc.Halton(d, scramble=True, seed=s).random(n))
