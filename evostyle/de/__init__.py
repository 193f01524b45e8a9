"""Differential evolution: a torch-batched solver and an adapter to scipy's.

>>> from evostyle.de import differential_evolution
>>> res = differential_evolution(lambda x: (x ** 2).sum(1), [(-5, 5)] * 3, seed=0, maxiter=200)
>>> bool(res.fun < 1e-6)
True
"""

from .scipy_adapter import scipy_differential_evolution
from .solver import BOUNDARY_MODES, INITS, DifferentialEvolution, check_bounds, differential_evolution
from .strategies import MUTATIONS, STRATEGIES, parse_strategy

__all__ = ["differential_evolution", "scipy_differential_evolution", "DifferentialEvolution", "STRATEGIES",
           "MUTATIONS", "INITS", "BOUNDARY_MODES", "check_bounds", "parse_strategy"]
