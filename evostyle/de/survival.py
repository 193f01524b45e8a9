"""Survival: how a population optimiser chooses its next population from the current one and the
evaluated trials.

A survival is called as ``survival(population (P, D), fitness, trials (T, D), trial_fitness) ->
(population, fitness)`` (see :class:`~evostyle.de.base.Survival`); fitness is (P,) for a scalar
objective or (P, M) for a multi-objective one, lower is better. None of these draws random numbers.
"""

from __future__ import annotations

import torch

from evostyle.de.pareto import prune


class GreedySurvival:
    """DE's one-to-one selection (Storn & Price 1997): trial i replaces member i when its fitness is
    no worse (``<=``, so DE can drift across plateaus, as scipy). Scalar fitness (P,), T == P."""

    def __call__(self, population: torch.Tensor, fitness: torch.Tensor, trials: torch.Tensor,
                 trial_fitness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        better = trial_fitness <= fitness
        return (torch.where(better[:, None], trials, population),
                torch.where(better, trial_fitness, fitness))


class GDE3Survival:
    """GDE3's selection (Kukkonen & Lampinen 2005, "GDE3: the third evolution step of generalized
    differential evolution") on (N, M) objectives, T == N:

    * the trial replaces its parent when it weakly dominates it (no worse in every objective);
    * the parent stays and the trial is dropped when the parent dominates the trial;
    * otherwise both stay, and the population grows;

    then the population is cut back to N by non-dominated sorting and crowding distance, removing the
    most crowded member of the last front one at a time (Kukkonen & Deb 2006;
    :func:`evostyle.de.pareto.prune`). Replaced members keep their row; kept trials follow in order.
    """

    def __call__(self, population: torch.Tensor, fitness: torch.Tensor, trials: torch.Tensor,
                 trial_fitness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = population.shape[0]
        replace = (trial_fitness <= fitness).all(1)
        parent_wins = (fitness <= trial_fitness).all(1) & (fitness < trial_fitness).any(1)
        both = ~replace & ~parent_wins
        pop = torch.cat([torch.where(replace[:, None], trials, population), trials[both]])
        f = torch.cat([torch.where(replace[:, None], trial_fitness, fitness), trial_fitness[both]])
        keep = torch.as_tensor(prune(f.cpu(), n), device=pop.device)
        return pop[keep], f[keep]


class ArchiveSurvival:
    """Random search's survival: keep everything. The population becomes the archive of every point
    evaluated, in order (the initial population first), with its (n,) or (n, M) values.

    The archive grows in a buffer of doubling capacity and the returned tensors are views of its first
    n rows, so a long run appends in amortised O(T) rather than copying the whole archive each
    generation; rows already returned are never written again."""

    def __init__(self):
        self._x: torch.Tensor | None = None
        self._f: torch.Tensor | None = None

    def __call__(self, population: torch.Tensor, fitness: torch.Tensor, trials: torch.Tensor,
                 trial_fitness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, m = population.shape[0], population.shape[0] + trials.shape[0]
        ours = (self._x is not None and population.data_ptr() == self._x.data_ptr()
                and fitness.data_ptr() == self._f.data_ptr() and m <= self._x.shape[0])
        if not ours:  # the first call, another population, or the buffer is full: copy into a new one
            cap = max(2 * m, 16)
            self._x = population.new_empty((cap, *population.shape[1:]))
            self._f = fitness.new_empty((cap, *fitness.shape[1:]))
            self._x[:n], self._f[:n] = population, fitness
        self._x[n:m], self._f[n:m] = trials, trial_fitness
        return self._x[:m], self._f[:m]
