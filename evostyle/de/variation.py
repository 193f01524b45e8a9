"""Variation operators: how a population optimiser turns its population into one generation's trials.

* :class:`DEVariation`: differential evolution's mutation, crossover and boundary repair (Storn &
  Price 1997, "Differential evolution - a simple and efficient heuristic for global optimization over
  continuous spaces"; strategy names, dithering and repair as ``scipy.optimize.differential_evolution``).
  Used by :class:`~evostyle.de.DifferentialEvolution` and :class:`~evostyle.de.GDE3`.
* :class:`UniformSampling`: random search's "variation", P fresh uniform points.

A variation is called as ``variation(opt) -> (T, D)`` float64 trials in the unit cube, on
``opt.device`` (see :class:`~evostyle.de.base.Variation`); it draws only from ``opt.gen`` (and
``opt.np_rng``), so a run is reproducible and the same on CPU and GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from evostyle.de.base import check_maxiter
from evostyle.de.sampling import check_init
from evostyle.de.strategies import crossover_mask, parse_strategy

from ..errors import EvostyleError, unknown

if TYPE_CHECKING:  # annotations only
    from evostyle.de.base import PopulationOptimizer
    from evostyle.types import ArrayLike

BOUNDARY_MODES = ("resample", "reflect")


def check_variation_settings(strategy: str | Callable, mutation: float | tuple[float, float],
                             recombination: float, boundary: str = "resample") -> None:
    """A known or callable strategy, F in [0, 2] or a dithering range inside it, CR in [0, 1] and a
    known boundary mode."""
    if not callable(strategy):
        parse_strategy(strategy)
    if isinstance(mutation, (tuple, list)):
        if len(mutation) != 2 or not 0 <= mutation[0] <= mutation[1] <= 2:
            raise EvostyleError(f"mutation must be [low, high] with 0 <= low <= high <= 2, got {list(mutation)}")
    elif not 0 <= float(mutation) <= 2:
        raise EvostyleError(f"mutation must be in [0, 2], got {mutation}")
    if not 0 <= float(recombination) <= 1:
        raise EvostyleError(f"recombination must be in [0, 1], got {recombination}")
    if boundary not in BOUNDARY_MODES:
        raise unknown("boundary mode", boundary, BOUNDARY_MODES)


def check_de_settings(
    strategy: str | Callable,
    mutation: float | tuple[float, float],
    recombination: float,
    maxiter: int | None,
    init: str | ArrayLike = "latinhypercube",
    boundary: str = "resample",
) -> None:
    """The rules of DE's settings, checked before a solver (or a search that will make one) starts:
    :func:`check_variation_settings`, maxiter >= 0 (or None) and a known init name (or an array)."""
    check_variation_settings(strategy, mutation, recombination, boundary)
    check_maxiter(maxiter)
    check_init(init)


class DEVariation:
    """DE's variation (Storn & Price 1997): for every member i, a mutant from distinct random members
    (and the best, for ``best`` / ``*tobest`` strategies; :mod:`evostyle.de.strategies`), crossed over
    with x_i (``bin`` or ``exp``), with out-of-bounds entries repaired.

    Args:
        strategy: a name from :data:`evostyle.de.STRATEGIES`, or a callable ``strategy(candidate: int,
            population: ndarray (P, D) in problem units, rng=numpy Generator) -> (D,)`` that makes the
            trial of one member itself (no crossover follows; bounds are repaired).
        mutation: F in [0, 2], or (low, high) to dither: F is drawn anew every generation.
        recombination: the crossover probability CR in [0, 1].
        boundary: ``resample`` (scipy: an out-of-bounds entry is redrawn uniformly) or ``reflect``
            (mirrored at the violated bound).

    Attributes: ``strategy``, ``mutation_fn`` / ``crossover`` (None for a callable strategy),
    ``dither`` ((low, high) or None), ``scale`` (the F of the last generation), ``cr``, ``boundary``.
    """

    def __init__(self, strategy: str | Callable = "best1bin", mutation: float | tuple[float, float] = (0.5, 1.0),
                 recombination: float = 0.7, boundary: str = "resample"):
        check_variation_settings(strategy, mutation, recombination, boundary)
        self.strategy = strategy
        self.mutation_fn, self.crossover = (None, None) if callable(strategy) else parse_strategy(strategy)
        if isinstance(mutation, (tuple, list)):
            self.dither: tuple[float, float] | None = (float(mutation[0]), float(mutation[1]))
            self.scale = self.dither[0]
        else:
            self.dither, self.scale = None, float(mutation)
        self.cr = float(recombination)
        self.boundary = boundary

    @property
    def min_population(self) -> int:
        """The members a generation needs: the mutation's distinct random ones plus i, and at least 5."""
        return max((self.mutation_fn.n_random if self.mutation_fn is not None else 0) + 1, 5)

    @property
    def label(self) -> str:
        return f"strategy {self.strategy!r}"

    def samples(self, p: int, n: int, gen: torch.Generator) -> torch.Tensor:
        """(P, n) distinct member indices per row, none equal to the row's own index (scipy's
        ``_select_samples``, batched: sort a row of uniforms with the own index pushed last)."""
        keys = torch.rand(p, p, generator=gen, dtype=torch.float64)
        keys.fill_diagonal_(2.0)
        return keys.argsort(dim=1)[:, :n]

    def repair(self, trial: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """(P, D) trial entries outside [0, 1] reflected back or redrawn (``boundary``), on
        ``trial``'s device. ``resample`` draws a full (P, D) block every generation, used or not, so
        the number of draws never depends on the trial values."""
        if self.boundary == "reflect":
            trial = trial.abs()
            trial = torch.where(trial > 1, 2 - trial, trial)
            return trial.clamp(0, 1)
        bad = (trial < 0) | (trial > 1)
        fresh = torch.rand(*trial.shape, generator=gen, dtype=torch.float64).to(trial.device)
        return torch.where(bad, fresh, trial)

    def __call__(self, opt: PopulationOptimizer) -> torch.Tensor:
        """One generation's (P, D) trials in the unit cube: mutate, cross over, repair bounds.

        The random draws, in this order (a search's golden output depends on it): the dithered F (if
        any), the mutation's members, the crossover's uniforms and start columns, then the repair's
        uniforms."""
        pop, gen = opt.population, opt.gen
        p, d = pop.shape
        if self.mutation_fn is None:  # a callable strategy makes each trial itself, in problem units
            x = opt.scale_out(pop).cpu().numpy()
            trial = np.stack([np.asarray(self.strategy(i, x, rng=opt.np_rng), dtype=np.float64)
                              for i in range(p)])
            if trial.shape != (p, d):
                raise EvostyleError(f"strategy must return an array of shape ({d},) for each candidate")
            return self.repair(opt.scale_in(torch.from_numpy(trial).to(pop.device)), gen)
        if self.dither is not None:
            self.scale = float(self.dither[0] + (self.dither[1] - self.dither[0])
                               * torch.rand(1, generator=gen, dtype=torch.float64))
        dev = pop.device  # random draws come from the CPU generator; the arithmetic runs on ``dev``
        idx = torch.arange(p, device=dev)
        r = self.samples(p, self.mutation_fn.n_random, gen).to(dev)
        mutant = self.mutation_fn.fn(pop, opt.best, idx, r, self.scale)
        u = torch.rand(p, d, generator=gen, dtype=torch.float64).to(dev)
        pos = torch.randint(0, d, (p,), generator=gen).to(dev)
        mask = crossover_mask(self.crossover, u, pos, self.cr)
        return self.repair(torch.where(mask, mutant, pop), gen)


class UniformSampling:
    """Random search's variation: ``opt.size`` points drawn independently and uniformly in the unit
    cube (P, D), whatever the population (as Optuna's RandomSampler and Ray Tune's random search)."""

    min_population = 1
    label = "uniform sampling"

    def __call__(self, opt: PopulationOptimizer) -> torch.Tensor:
        return opt.rand(opt.size, opt.dim).to(opt.device)


class DEAttributes:
    """DE's settings read through the optimiser, as scipy's solver offers them (``solver.scale`` ...),
    for a class whose ``variation`` is a :class:`DEVariation`."""

    variation: DEVariation
    strategy = property(lambda self: self.variation.strategy, doc="The strategy name or callable.")
    mutation_fn = property(lambda self: self.variation.mutation_fn, doc="The Mutation (None if callable).")
    crossover = property(lambda self: self.variation.crossover, doc="``bin`` or ``exp`` (None if callable).")
    dither = property(lambda self: self.variation.dither, doc="(low, high) of a dithered F, or None.")
    scale = property(lambda self: self.variation.scale, doc="F of the last generation.")
    cr = property(lambda self: self.variation.cr, doc="The crossover probability CR.")
    boundary = property(lambda self: self.variation.boundary, doc="``resample`` or ``reflect``.")

    def _samples(self, p: int, n: int) -> torch.Tensor:
        return self.variation.samples(p, n, self.gen)

    def _ensure_bounds(self, trial: torch.Tensor) -> torch.Tensor:
        return self.variation.repair(trial, self.gen)
