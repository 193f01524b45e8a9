"""GDE3: multi-objective differential evolution with a batched objective (P, D) -> (P, M).

Kukkonen & Lampinen 2005, "GDE3: the third evolution step of generalized differential evolution".
Each generation makes one trial per member with a ``rand`` strategy
(:class:`~evostyle.de.variation.DEVariation`, as :class:`~evostyle.de.DifferentialEvolution` does; one
batched call for all trials), then selects (:class:`~evostyle.de.survival.GDE3Survival`):

* the trial replaces its parent when it weakly dominates it (no worse in every objective);
* the parent stays and the trial is dropped when the parent dominates the trial;
* otherwise both stay, and the population grows.

When the population has grown past its size N it is cut back to N by non-dominated sorting and
crowding distance, removing the most crowded member of the last front one at a time (Kukkonen & Deb
2006; :func:`evostyle.de.pareto.prune`). Every objective is minimised; NaN counts as +inf.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.optimize import OptimizeResult

from evostyle.de.base import PopulationOptimizer
from evostyle.de.pareto import non_dominated
from evostyle.de.survival import GDE3Survival
from evostyle.de.variation import DEAttributes, DEVariation

from ..errors import EvostyleError

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

    from evostyle.types import ArrayLike, SeedLike

GDE3_STRATEGIES = ("rand1bin", "rand1exp", "rand2bin", "rand2exp")
"""Strategies whose mutation needs no single best member (GDE3 has none)."""


class GDE3(DEAttributes, PopulationOptimizer):
    """GDE3 over a batched objective returning (P, M) values; one generation per :meth:`step`.

    Arguments as :class:`~evostyle.de.DifferentialEvolution` (``strategy`` one of
    :data:`GDE3_STRATEGIES`, default ``rand1bin``), without ``tol``/``atol``: a front has no tolerance
    rule, so the run lasts ``maxiter`` generations or until the callback stops it (the callback's
    ``convergence`` is 0.0). Attributes: ``population`` (N, D) in the unit cube, ``objectives`` (N, M)
    once evaluated (the same tensor as ``fitness``), ``nit``, ``nfev``.

    :meth:`step` returns the current front as ``(points (F, D) in problem units, objectives (F, M))``,
    the ``x`` and ``fun`` of :meth:`result`.
    """

    objective_kind = "multi"

    def __init__(
        self,
        func: Callable,
        bounds: ArrayLike,
        *,
        strategy: str | Callable = "rand1bin",
        popsize: int = 15,
        maxiter: int | None = 1000,
        mutation: float | tuple[float, float] = (0.5, 1.0),
        recombination: float = 0.7,
        init: str | ArrayLike = "latinhypercube",
        seed: SeedLike = None,
        callback: Callable | None = None,
        x0: ArrayLike | None = None,
        device: torch.device | str = "cpu",
        boundary: str = "resample",
    ):
        if strategy not in GDE3_STRATEGIES:
            raise EvostyleError(f"GDE3 takes strategy {', '.join(GDE3_STRATEGIES)} (it has no single best "
                                f"member), got {strategy!r}")
        super().__init__(func, bounds, variation=DEVariation(strategy, mutation, recombination, boundary),
                         survival=GDE3Survival(), popsize=popsize, maxiter=maxiter, init=init, seed=seed,
                         callback=callback, x0=x0, device=device)

    @property
    def objectives(self) -> torch.Tensor | None:
        """(N, M) objective values of the population (None until :meth:`init`)."""
        return self.fitness

    @objectives.setter
    def objectives(self, value: torch.Tensor | None) -> None:
        self.fitness = value

    def front(self) -> np.ndarray:
        """Indices of the population's non-dominated members."""
        return np.flatnonzero(non_dominated(self.objectives.cpu()))

    def incumbent(self) -> tuple[np.ndarray, np.ndarray]:
        """The current front: (points (F, D) in problem units, objectives (F, M))."""
        front = self.front()
        return self.scale_out(self.population[front]).cpu().numpy(), self.objectives[front].cpu().numpy()

    def result(self, success: bool | None = None) -> OptimizeResult:
        """The front as an OptimizeResult: ``x`` (F, D) and ``fun`` (F, M) for the non-dominated
        members, ``front`` (F,) their indices, ``population`` (N, D), ``population_objectives`` (N, M),
        ``nit``, ``nfev``, ``success``, ``message``, ``elapsed``."""
        pop = self.scale_out(self.population).cpu().numpy()
        f = (self.objectives if self.objectives is not None
             else torch.full((pop.shape[0], 1), math.inf)).cpu().numpy()
        front = np.flatnonzero(non_dominated(f))
        return self._result(success, x=pop[front].copy(), fun=f[front].copy(), front=front, population=pop,
                            population_objectives=f)


def gde3(
    func: Callable,
    bounds: ArrayLike,
    *,
    strategy: str | Callable = "rand1bin",
    popsize: int = 15,
    maxiter: int | None = 1000,
    mutation: float | tuple[float, float] = (0.5, 1.0),
    recombination: float = 0.7,
    init: str | ArrayLike = "latinhypercube",
    seed: SeedLike = None,
    callback: Callable | None = None,
    x0: ArrayLike | None = None,
    device: torch.device | str = "cpu",
    boundary: str = "resample",
) -> OptimizeResult:
    """Minimise M objectives at once with GDE3; ``func`` maps a (P, D) float64 tensor in problem units
    to (P, M) values. Other arguments as :func:`evostyle.de.differential_evolution` (``popsize`` is the
    multiplier: N = max(5, popsize * number of non-fixed parameters) unless ``init`` is an array).
    Returns the final population's non-dominated members as ``x`` (F, D) and ``fun`` (F, M); see
    :meth:`GDE3.result`.

    >>> import torch
    >>> res = gde3(lambda x: torch.stack([x[:, 0] ** 2, (x[:, 0] - 2) ** 2], 1), [(-1, 3)], seed=0,
    ...            popsize=20, maxiter=50)
    >>> bool(((res.x >= -1e-3) & (res.x <= 2 + 1e-3)).all())   # the front of this problem is [0, 2]
    True
    """
    return GDE3(func, bounds, strategy=strategy, popsize=popsize, maxiter=maxiter, mutation=mutation,
                recombination=recombination, init=init, seed=seed, callback=callback, x0=x0, device=device,
                boundary=boundary).solve()
