"""The same batched objective through ``scipy.optimize.differential_evolution``.

scipy's vectorized objective receives (D, S) arrays; :func:`scipy_differential_evolution` transposes to
our (S, D) tensors and back. With ``workers == 1`` it uses ``vectorized=True, updating='deferred'``
(one call per generation, like the torch solver). With ``workers != 1`` scipy evaluates points one at a
time in a pool (``vectorized`` would override ``workers``), so the objective must then be picklable.
The style search always uses ``workers=1``: it evaluates a whole generation as one GPU batch and logs
it as one generation, which a pool of per-point calls cannot do.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.optimize import differential_evolution as _scipy_de

from evostyle.de.base import check_bounds
from evostyle.de.strategies import parse_strategy

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

    from scipy.optimize import OptimizeResult

    from evostyle.types import ArrayLike, SeedLike


class _Vectorized:
    def __init__(self, func):
        self.func = func

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        out = self.func(torch.from_numpy(np.ascontiguousarray(x.T)))
        out = out.detach().cpu().numpy() if torch.is_tensor(out) else np.asarray(out)
        return np.nan_to_num(np.asarray(out, dtype=np.float64).reshape(-1), nan=np.inf)


class _Pointwise(_Vectorized):
    def __call__(self, x: np.ndarray) -> float:
        return float(super().__call__(np.asarray(x, dtype=np.float64)[:, None])[0])


def _seed_kwargs(seed):
    params = inspect.signature(_scipy_de).parameters
    return {"rng": seed} if "rng" in params else {"seed": seed}


def scipy_differential_evolution(
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
    workers: int = 1,
    polish: bool = False,
) -> OptimizeResult:
    """scipy's DE on a batched objective (P, D) -> (P,). Arguments as :func:`evostyle.de.differential_evolution`.

    ``polish`` defaults to False (scipy's default is True) so that both solvers spend the same budget.
    """
    check_bounds(bounds)
    parse_strategy(strategy)
    vectorized = workers == 1
    wrapped = _Vectorized(func) if vectorized else _Pointwise(func)
    return _scipy_de(wrapped, bounds=[tuple(map(float, b)) for b in np.asarray(bounds, dtype=float)],
                     strategy=strategy, popsize=popsize, maxiter=maxiter, mutation=mutation,
                     recombination=recombination, init=init, tol=tol, atol=atol,
                     callback=callback, x0=x0,
                     polish=polish, updating="deferred", vectorized=vectorized, workers=workers,
                     **_seed_kwargs(seed))

