"""GDE3: multi-objective differential evolution with a batched objective (P, D) -> (P, M).

Kukkonen & Lampinen 2005, "GDE3: the third evolution step of generalized differential evolution".
Each generation makes one trial per member with a ``rand`` strategy (as
:class:`~evostyle.de.DifferentialEvolution` does, one batched call for all trials), then selects:

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

from evostyle.de.pareto import non_dominated, prune
from evostyle.de.solver import DifferentialEvolution

from ..errors import EvostyleError

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

    from evostyle.types import ArrayLike, SeedLike

GDE3_STRATEGIES = ("rand1bin", "rand1exp", "rand2bin", "rand2exp")
"""Strategies whose mutation needs no single best member (GDE3 has none)."""


class GDE3(DifferentialEvolution):
    """GDE3 over a batched objective returning (P, M) values; one generation per :meth:`step`.

    Arguments as :class:`~evostyle.de.DifferentialEvolution` (``strategy`` one of
    :data:`GDE3_STRATEGIES`, default ``rand1bin``), without ``tol``/``atol``: the run lasts ``maxiter``
    generations or until the callback stops it. Attributes: ``population`` (N, D) in the unit cube,
    ``objectives`` (N, M) once evaluated, ``nit``, ``nfev``.
    """

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
        super().__init__(func, bounds, strategy=strategy, popsize=popsize, maxiter=maxiter, mutation=mutation,
                         recombination=recombination, init=init, tol=0.0, atol=0.0, seed=seed,
                         callback=callback, x0=x0, device=device, boundary=boundary)
        self.objectives: torch.Tensor | None = None

    def _evaluate(self, unit: torch.Tensor) -> torch.Tensor:
        out = self.func(self.scale_out(unit))
        f = torch.as_tensor(np.asarray(out.detach().cpu() if torch.is_tensor(out) else out, dtype=np.float64))
        if f.dim() != 2 or f.shape[0] != unit.shape[0]:
            raise EvostyleError(f"objective returned shape {tuple(f.shape)} for {unit.shape[0]} candidates; "
                                "a multi-objective function must map (P, D) to (P, M)")
        if self.objectives is not None and f.shape[1] != self.objectives.shape[1]:
            raise EvostyleError(f"objective returned {f.shape[1]} objectives, earlier {self.objectives.shape[1]}")
        self.nfev += unit.shape[0]
        return torch.nan_to_num(f, nan=math.inf).to(self.device)

    def init(self) -> None:
        """Evaluate the initial population (one batched call)."""
        if self.objectives is None:
            self.objectives = self._evaluate(self.population)
            self.energies = self.objectives[:, 0]  # the first objective, for DifferentialEvolution's helpers

    def select(self, trial: torch.Tensor, f_trial: torch.Tensor) -> None:
        """GDE3's selection of the (N, D) trials with objectives (N, M) against their parents, then the
        cut back to N members (see the module doc). Updates ``population`` and ``objectives``."""
        pop, f = self.population, self.objectives
        n = pop.shape[0]
        replace = (f_trial <= f).all(1)
        parent_wins = (f <= f_trial).all(1) & (f < f_trial).any(1)
        both = ~replace & ~parent_wins
        pop = torch.cat([torch.where(replace[:, None], trial, pop), trial[both]])
        f = torch.cat([torch.where(replace[:, None], f_trial, f), f_trial[both]])
        keep = torch.as_tensor(prune(f.cpu(), n), device=pop.device)
        self.population, self.objectives = pop[keep], f[keep]
        self.energies = self.objectives[:, 0]

    def step(self) -> tuple[np.ndarray, np.ndarray]:
        """One generation: make the trials, evaluate them in one call, select. Returns the current
        front as (points (F, D) in problem units, objectives (F, M))."""
        self.init()
        trial = self._trials()
        self.select(trial, self._evaluate(trial))
        self.nit += 1
        front = self.front()
        return self.scale_out(self.population[front]).cpu().numpy(), self.objectives[front].cpu().numpy()

    def front(self) -> np.ndarray:
        """Indices of the population's non-dominated members."""
        return np.flatnonzero(non_dominated(self.objectives.cpu()))

    def converged(self) -> bool:
        return False  # no tolerance rule for a front: the run lasts maxiter generations

    def result(self, success: bool | None = None) -> OptimizeResult:
        """The front as an OptimizeResult: ``x`` (F, D) and ``fun`` (F, M) for the non-dominated
        members, ``population`` (N, D), ``population_objectives`` (N, M), ``nit``, ``nfev``."""
        pop = self.scale_out(self.population).cpu().numpy()
        f = (self.objectives if self.objectives is not None
             else torch.full((pop.shape[0], 1), math.inf)).cpu().numpy()
        front = np.flatnonzero(non_dominated(f))
        return OptimizeResult(x=pop[front].copy(), fun=f[front].copy(), front=front, population=pop,
                              population_objectives=f, nfev=self.nfev, nit=self.nit,
                              success=bool(success) if success is not None else False, message=self.message)


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
    multiplier: N = max(5, popsize * D) unless ``init`` is an array). Returns the final population's
    non-dominated members as ``x`` (F, D) and ``fun`` (F, M); see :meth:`GDE3.result`.

    >>> import torch
    >>> res = gde3(lambda x: torch.stack([x[:, 0] ** 2, (x[:, 0] - 2) ** 2], 1), [(-1, 3)], seed=0,
    ...            popsize=20, maxiter=50)
    >>> bool(((res.x >= -1e-3) & (res.x <= 2 + 1e-3)).all())   # the front of this problem is [0, 2]
    True
    """
    return GDE3(func, bounds, strategy=strategy, popsize=popsize, maxiter=maxiter, mutation=mutation,
                recombination=recombination, init=init, seed=seed, callback=callback, x0=x0, device=device,
                boundary=boundary).solve()
