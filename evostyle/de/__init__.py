"""Differential evolution: a torch-batched solver, an adapter to scipy's, the multi-objective GDE3,
random search (the baseline) and Pareto utilities (:mod:`evostyle.de.pareto`).

The three population optimisers share one base, :class:`PopulationOptimizer` (:mod:`evostyle.de.base`):
each is a variation (:mod:`evostyle.de.variation`) and a survival (:mod:`evostyle.de.survival`) run by
the same loop, so a custom variation or survival can be plugged into the base from outside.

>>> from evostyle.de import differential_evolution
>>> res = differential_evolution(lambda x: (x ** 2).sum(1), [(-5, 5)] * 3, seed=0, maxiter=200)
>>> bool(res.fun < 1e-6)
True
"""

from evostyle.de.base import PopulationOptimizer, Survival, Variation, check_bounds
from evostyle.de.gde3 import GDE3, GDE3_STRATEGIES, gde3
from evostyle.de.pareto import (
           crowding_distance,
           dominates,
           hypervolume_2d,
           non_dominated,
           non_dominated_sort,
           prune,
           weakly_dominates,
)
from evostyle.de.random_search import RandomSearch, random_search
from evostyle.de.sampling import INITS
from evostyle.de.scipy_adapter import scipy_differential_evolution
from evostyle.de.solver import DifferentialEvolution, differential_evolution
from evostyle.de.strategies import MUTATIONS, STRATEGIES, parse_strategy
from evostyle.de.survival import ArchiveSurvival, GDE3Survival, GreedySurvival
from evostyle.de.variation import BOUNDARY_MODES, DEVariation, UniformSampling, check_de_settings

__all__ = ["differential_evolution", "scipy_differential_evolution", "DifferentialEvolution", "STRATEGIES",
           "MUTATIONS", "INITS", "BOUNDARY_MODES", "check_bounds", "check_de_settings", "parse_strategy", "gde3",
           "GDE3", "GDE3_STRATEGIES", "random_search", "RandomSearch", "dominates", "weakly_dominates", "non_dominated",
           "non_dominated_sort", "crowding_distance", "prune", "hypervolume_2d", "PopulationOptimizer", "Variation",
           "Survival", "DEVariation", "UniformSampling", "GreedySurvival", "GDE3Survival", "ArchiveSurvival"]
