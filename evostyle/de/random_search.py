"""Random search with the solvers' interface: the baseline any search method has to beat.

Generation 0 is the given initial population (the same one DE starts from, so both spend their first
evaluations alike); every later generation draws P points independently and uniformly in the bounds
(as Optuna's RandomSampler and Ray Tune's random search do:
:class:`~evostyle.de.variation.UniformSampling`), and every point evaluated is kept
(:class:`~evostyle.de.survival.ArchiveSurvival`). One batched call per generation, for a scalar
objective (P, D) -> (P,) or a multi-objective one (P, D) -> (P, M).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.optimize import OptimizeResult

from evostyle.de.base import PopulationOptimizer, Variation, best_or_front
from evostyle.de.survival import ArchiveSurvival
from evostyle.de.variation import UniformSampling

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

    from evostyle.types import ArrayLike, SeedLike


class RandomSearch(PopulationOptimizer):
    """Evaluate ``maxiter + 1`` batches of P points; keep everything evaluated.

    Args:
        func: (P, D) float64 tensor in problem units -> (P,) or (P, M) values (the first call decides
            which; NaN counts as +inf).
        bounds: (D, 2) finite (low, high) pairs; equal bounds fix a parameter.
        popsize: scipy's multiplier, as in :class:`~evostyle.de.DifferentialEvolution`: P = max(5,
            popsize * number of non-fixed parameters) points per generation; ignored when ``init`` is
            an array (then P = len(init)).
        maxiter: generations after the first (None: 100).
        init: ``latinhypercube`` | ``sobol`` | ``halton`` | ``random`` | a (P, D) array in problem
            units, for generation 0.
        seed: an int for a reproducible run, None, or a numpy Generator; callback: called after every
            generation with the intermediate OptimizeResult, returning True (or raising StopIteration)
            stops the run.
        device: where the points live.
        sampling: the variation that draws each later generation's (P, D) points in the unit cube
            (default :class:`~evostyle.de.variation.UniformSampling`; a quasi-random sequence or a
            model-based sampler plugs in here and keeps the archive, loop and result).

    ``population`` / ``fitness`` are the archive: every point evaluated (n, D) in the unit cube, in
    order, with its (n,) or (n, M) values. :meth:`step` returns the result's ``(x, fun)``: the best
    point and value so far (scalar objective) or the non-dominated points and their values.
    """

    objective_kind = "either"
    default_maxiter = 100

    def __init__(
        self,
        func: Callable,
        bounds: ArrayLike,
        *,
        popsize: int = 15,
        maxiter: int | None = 100,
        init: str | ArrayLike = "latinhypercube",
        seed: SeedLike = None,
        callback: Callable | None = None,
        device: torch.device | str = "cpu",
        sampling: Variation | None = None,
    ):
        super().__init__(func, bounds, variation=sampling or UniformSampling(), survival=ArchiveSurvival(),
                         popsize=popsize, maxiter=maxiter, init=init, seed=seed, callback=callback, device=device)

    def result(self, success: bool | None = None) -> OptimizeResult:
        """Everything evaluated: ``x`` / ``fun`` the best point (scalar objective) or the non-dominated
        points (multi-objective); ``points`` (n, D) and ``values`` (n,) or (n, M) all evaluations;
        ``nfev``, ``nit``, ``success``, ``message``, ``elapsed``."""
        if self.fitness is None:
            x, v = np.zeros((0, self.dim)), np.zeros(0)
        else:  # a copy of the values: on the CPU .numpy() would share memory with the archive
            x, v = self.scale_out(self.population).cpu().numpy(), self.fitness.cpu().numpy().copy()
        best_x, best_f = best_or_front(x, v)
        return self._result(success, x=best_x, fun=best_f, points=x, values=v)


def random_search(
    func: Callable,
    bounds: ArrayLike,
    *,
    popsize: int = 15,
    maxiter: int | None = 100,
    init: str | ArrayLike = "latinhypercube",
    seed: SeedLike = None,
    callback: Callable | None = None,
    device: torch.device | str = "cpu",
) -> OptimizeResult:
    """Random search over ``bounds`` with ``(maxiter + 1) * P`` evaluations, P = max(5, popsize * number
    of non-fixed parameters) or len(init); see :class:`RandomSearch`."""
    return RandomSearch(func, bounds, popsize=popsize, maxiter=maxiter, init=init, seed=seed,
                        callback=callback, device=device).solve()
