"""Torch-batched differential evolution (Storn & Price 1997) that keeps the population on one device.

:class:`DifferentialEvolution` is :class:`~evostyle.de.base.PopulationOptimizer` (bounds, seeding,
initial population, one batched evaluation per generation, the solve loop) with DE's variation
(:class:`~evostyle.de.variation.DEVariation`: mutation, crossover, boundary repair) and its one-to-one
greedy survival (:class:`~evostyle.de.survival.GreedySurvival`), plus scipy's tolerance rule.

The objective takes a (P, D) tensor in the problem's units and returns (P,) values (lower is better).
Every generation makes one batched call (scipy's ``updating='deferred'``). Random numbers come from one
seeded CPU generator, so a run is reproducible and identical on CPU and GPU for the same objective
values.

The arguments and results follow ``scipy.optimize.differential_evolution`` (``vectorized=True,
updating='deferred'``, no polishing, no constraints): the strategies, dithering, the convergence rule
std(E) <= atol + tol |mean(E)|, the intermediate result a callback sees (message "in progress",
``convergence`` = tol / (std(E) / |mean(E)|)), a callable strategy, equal bounds for a fixed parameter
(the population is popsize x the number of varying parameters), ``maxiter=None``, and an int, None or
numpy Generator as the seed (``rng=`` as scipy >= 1.15 names it). Deliberate differences: the random
numbers come from torch (same seed, other stream than scipy's), ``boundary="reflect"`` is offered
beside scipy's resampling, and errors are :class:`~evostyle.errors.EvostyleError`, a ValueError.
tests/test_de_scipy.py runs scipy's own tests that apply.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.optimize import OptimizeResult

# the helpers below lived here before evostyle.de.base; they stay importable from this module
from evostyle.de.base import PopulationOptimizer, check_bounds, torch_seed, wrap_callback
from evostyle.de.sampling import INITS, initial_population, latin_hypercube
from evostyle.de.survival import GreedySurvival
from evostyle.de.variation import BOUNDARY_MODES, DEAttributes, DEVariation, check_de_settings

if TYPE_CHECKING:  # annotations only
    from evostyle.types import ArrayLike, SeedLike

__all__ = ["BOUNDARY_MODES", "INITS", "DifferentialEvolution", "check_bounds", "check_de_settings",
           "differential_evolution", "initial_population", "latin_hypercube", "torch_seed", "wrap_callback"]
_MACHEPS = float(np.finfo(np.float64).eps)


class DifferentialEvolution(DEAttributes, PopulationOptimizer):
    """Differential evolution (Storn & Price 1997) with a batched objective; one generation per
    :meth:`step`: :class:`~evostyle.de.variation.DEVariation` makes (P, D) trials, one call evaluates
    them, :class:`~evostyle.de.survival.GreedySurvival` keeps trial i where it is no worse than member i.

    Args mirror ``scipy.optimize.differential_evolution`` (see :func:`differential_evolution`).
    Attributes after construction: ``population`` (P, D) in the unit cube, ``energies`` (P,) (evaluated
    lazily on the first step; the same tensor as ``fitness``), ``best``, ``nit``, ``nfev``, ``tol``,
    ``atol``, and DE's settings (``strategy``, ``scale``, ``dither``, ... from the variation).

    :meth:`step` (and ``next(solver)``, as scipy's solver) returns ``(x (D,) in problem units, fun)``,
    the best member after the generation.
    """

    objective_kind = "scalar"
    default_maxiter = 1000  # scipy's default used to be maxiter=None

    def __init__(
        self,
        func: Callable,
        bounds: ArrayLike,
        *,
        strategy: str | Callable = "best1bin",
        popsize: int = 15,
        maxiter: int | None = 1000,
        mutation: float | tuple[float, float] = (0.5, 1.0),
        recombination: float = 0.7,
        init: str | ArrayLike = "latinhypercube",
        tol: float = 0.01,
        atol: float = 0.0,
        seed: SeedLike = None,
        callback: Callable | None = None,
        x0: ArrayLike | None = None,
        device: torch.device | str = "cpu",
        boundary: str = "resample",
        rng: SeedLike = None,
    ):
        variation = DEVariation(strategy, mutation, recombination, boundary)
        self.tol, self.atol = float(tol), float(atol)
        super().__init__(func, bounds, variation=variation, survival=GreedySurvival(), popsize=popsize,
                         maxiter=maxiter, init=init, seed=seed, callback=callback, x0=x0, device=device, rng=rng)

    @property
    def energies(self) -> torch.Tensor | None:
        """(P,) objective values of the population (None until :meth:`init`)."""
        return self.fitness

    @energies.setter
    def energies(self, value: torch.Tensor | None) -> None:
        self.fitness = value

    def incumbent(self) -> tuple[np.ndarray, float]:
        """The best member as ``(x (D,) in problem units, fun)``, as scipy's solver iterates."""
        b = self.best
        return self.scale_out(self.population[b]).cpu().numpy(), float(self.energies[b])

    def converged(self) -> bool:
        """scipy's rule: std(E) <= atol + tol * |mean(E)| over the population's energies."""
        e = self.energies
        if e is None or not torch.isfinite(e).all():
            return False
        return bool(e.std(unbiased=False) <= self.atol + self.tol * e.mean().abs())

    def convergence(self) -> float:
        """std(E) / |mean(E)| of the population's energies (inf while any is infinite), as scipy's
        solver defines its ``convergence`` property."""
        e = self.energies
        if e is None or not torch.isfinite(e).all():
            return math.inf
        return float(e.std(unbiased=False) / (e.mean().abs() + _MACHEPS))

    def convergence_fraction(self) -> float:
        """tol / (std(E) / |mean(E)|), which reaches 1 where the run would stop (scipy's callback
        ``convergence``)."""
        return self.tol / (self.convergence() + _MACHEPS)

    def result(self, success: bool | None = None) -> OptimizeResult:
        """The current state as an OptimizeResult (the same type the solve returns): x, fun, nfev, nit,
        success, message, population (P, D) in problem units, population_energies (P,), elapsed."""
        e = self.energies if self.energies is not None else torch.full((self.population.shape[0],), math.inf)
        pop = self.scale_out(self.population).cpu().numpy()
        b = self.best
        return self._result(success, x=pop[b].copy(), fun=float(e[b]), population=pop,
                            population_energies=e.cpu().numpy())


def differential_evolution(
    func: Callable,
    bounds: ArrayLike,
    *,
    strategy: str | Callable = "best1bin",
    popsize: int = 15,
    maxiter: int | None = 1000,
    mutation: float | tuple[float, float] = (0.5, 1.0),
    recombination: float = 0.7,
    init: str | ArrayLike = "latinhypercube",
    tol: float = 0.01,
    atol: float = 0.0,
    seed: SeedLike = None,
    callback: Callable | None = None,
    x0: ArrayLike | None = None,
    device: torch.device | str = "cpu",
    boundary: str = "resample",
    rng: SeedLike = None,
) -> OptimizeResult:
    """Minimise a batched objective with differential evolution (scipy's arguments; see the module doc
    for the differences).

    Args:
        func: callable (P, D) float64 tensor (problem units, on ``device``) -> (P,) values. NaN counts
            as +inf.
        bounds: (D, 2) sequence of finite (low, high) with low <= high (equal: the parameter is fixed).
        strategy: a name from :data:`evostyle.de.STRATEGIES`, e.g. ``best1bin``, ``rand1exp``, or a
            callable ``strategy(candidate: int, population: ndarray (P, D), rng=Generator) -> (D,)``
            that makes the trial vector of one member (no crossover follows; bounds are repaired).
        popsize: population multiplier as in scipy: P = max(5, popsize * (D - number of fixed
            parameters)); ignored when ``init`` is an array (then P = len(init)).
        maxiter: maximum number of generations after the initial population (None: 1000).
        mutation: F in [0, 2], or (low, high) to dither F per generation.
        recombination: crossover probability CR in [0, 1].
        init: ``latinhypercube`` | ``sobol`` | ``halton`` | ``random`` | an (N, D) array in problem units.
        tol, atol: stop when std(E) <= atol + tol * |mean(E)| (scipy's rule).
        seed / rng: an int for a reproducible run, None, or a numpy Generator (one draw seeds the run).
        callback: called after every generation with the intermediate OptimizeResult (see
            :meth:`DifferentialEvolution.intermediate_result`); returning True (or raising
            StopIteration) stops the run.
        x0: a point (D,) that replaces the first initial member.
        device: where the population lives.
        boundary: ``resample`` (scipy: out-of-bounds entries redrawn uniformly) or ``reflect``.
    Returns:
        scipy.optimize.OptimizeResult with x, fun, nfev, nit, success (False when maxiter ran out, as
        scipy), message, population (P, D) and population_energies (P,).
    """
    return DifferentialEvolution(func, bounds, strategy=strategy, popsize=popsize, maxiter=maxiter,
                                 mutation=mutation, recombination=recombination, init=init, tol=tol,
                                 atol=atol, seed=seed, callback=callback, x0=x0, device=device,
                                 boundary=boundary, rng=rng).solve()
