"""Random search with the solvers' interface: the baseline any search method has to beat.

Generation 0 is the given initial population (the same one DE starts from, so both spend their first
evaluations alike); every later generation draws P points independently and uniformly in the bounds
(as Optuna's RandomSampler and Ray Tune's random search do). One batched call per generation, for a
scalar objective (P, D) -> (P,) or a multi-objective one (P, D) -> (P, M).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.optimize import OptimizeResult

from evostyle.de.pareto import non_dominated
from evostyle.de.solver import check_bounds, initial_population, wrap_callback

from ..errors import EvostyleError

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

    from evostyle.types import ArrayLike, SeedLike


class RandomSearch:
    """Evaluate ``maxiter + 1`` batches of ``popsize`` points; keep everything evaluated.

    Args:
        func: (P, D) float64 tensor in problem units -> (P,) or (P, M) values (NaN counts as +inf).
        bounds: (D, 2) finite (low, high) pairs.
        popsize: points per generation, P (the total, not a multiplier); ignored when ``init`` is an
            array (then P = len(init)).
        maxiter: generations after the first.
        init: ``latinhypercube`` | ``sobol`` | ``random`` | an (P, D) array in problem units, for
            generation 0.
        seed: int for a reproducible run; callback: called after every generation with the
            intermediate OptimizeResult, returning True (or raising StopIteration) stops the run.
    """

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
    ):
        self.func, self.bounds = func, check_bounds(bounds)
        d = self.bounds.shape[0]
        if int(maxiter) < 0:
            raise EvostyleError(f"maxiter must be >= 0, got {maxiter}")
        self.maxiter, self.callback, self.device = int(maxiter), wrap_callback(callback), torch.device(device)
        self.gen = torch.Generator().manual_seed(int(seed) if seed is not None else
                                                 int(torch.randint(0, 2**62, (1,))))
        lo, span = self.bounds[:, 0], self.bounds[:, 1] - self.bounds[:, 0]
        self._scale_out = lambda u: (lo.to(u.device) + u * span.to(u.device))
        if isinstance(init, str):
            if int(popsize) < 1:
                raise EvostyleError(f"popsize must be >= 1, got {popsize}")
            first = initial_population(init, int(popsize), d, self.gen, seed)
        else:
            x = torch.as_tensor(np.asarray(init, dtype=np.float64))
            if x.dim() != 2 or x.shape[1] != d or not torch.isfinite(x).all():
                raise EvostyleError(f"init array must be finite with shape (N, {d}), got {tuple(x.shape)}")
            first = ((x - lo) / span).clamp(0, 1)
        self.popsize = first.shape[0]
        self._next = first
        self.points: list[torch.Tensor] = []  # unit-cube batches evaluated so far
        self.values: list[torch.Tensor] = []
        self.nit = self.nfev = 0
        self.message = ""

    def _evaluate(self, unit: torch.Tensor) -> torch.Tensor:
        out = self.func(self._scale_out(unit.to(self.device)))
        v = torch.as_tensor(np.asarray(out.detach().cpu() if torch.is_tensor(out) else out, dtype=np.float64))
        if v.shape[0] != unit.shape[0] or v.dim() > 2:
            raise EvostyleError(f"objective returned shape {tuple(v.shape)} for {unit.shape[0]} candidates")
        self.nfev += unit.shape[0]
        return torch.nan_to_num(v, nan=math.inf)

    def step(self) -> None:
        """Evaluate the next batch: the initial population first, then uniform draws."""
        unit = self._next
        self.values.append(self._evaluate(unit))
        self.points.append(unit)
        self.nit = len(self.points) - 1  # generations after the first
        self._next = torch.rand(self.popsize, unit.shape[1], generator=self.gen, dtype=torch.float64)

    def result(self, success: bool | None = None) -> OptimizeResult:
        """Everything evaluated: ``x`` / ``fun`` the best point (scalar objective) or the non-dominated
        points (multi-objective); ``points`` (n, D) and ``values`` (n,) or (n, M) all evaluations."""
        x = self._scale_out(torch.cat(self.points)).cpu().numpy() if self.points else np.zeros((0, len(self.bounds)))
        v = torch.cat(self.values).numpy() if self.values else np.zeros(0)
        if v.ndim == 1:
            i = int(np.argmin(v)) if len(v) else 0
            best_x, best_f = (x[i].copy(), float(v[i])) if len(v) else (None, math.inf)
        else:
            front = np.flatnonzero(non_dominated(v))
            best_x, best_f = x[front].copy(), v[front].copy()
        return OptimizeResult(x=best_x, fun=best_f, points=x, values=v, nfev=self.nfev, nit=self.nit,
                              success=bool(success), message=self.message)

    def solve(self) -> OptimizeResult:
        """Run all generations (or until the callback stops the run)."""
        self.message = "Maximum number of iterations has been exceeded."
        self.step()
        while self.nit < self.maxiter:
            self.step()
            if self.callback is not None:
                res = self.result(True)
                res.message = "in progress"
                if self.callback(res):
                    self.message = "callback function requested stop early"
                    break
        return self.result(False)


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
    """Random search over ``bounds`` with ``(maxiter + 1) * popsize`` evaluations; see :class:`RandomSearch`."""
    return RandomSearch(func, bounds, popsize=popsize, maxiter=maxiter, init=init, seed=seed,
                        callback=callback, device=device).solve()
