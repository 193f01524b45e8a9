"""Torch-batched differential evolution that keeps the population on one device.

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

import inspect
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.optimize import OptimizeResult

from evostyle.de.strategies import crossover_mask, parse_strategy

from ..errors import EvostyleError, unknown

if TYPE_CHECKING:  # annotations only
    from evostyle.types import ArrayLike, SeedLike

INITS = ("latinhypercube", "sobol", "halton", "random")
_MACHEPS = float(np.finfo(np.float64).eps)
BOUNDARY_MODES = ("resample", "reflect")


def check_bounds(bounds: ArrayLike) -> torch.Tensor:
    """Validate bounds as a (D, 2) float64 tensor with finite low <= high (equal: a fixed parameter)."""
    try:
        b = torch.as_tensor(np.asarray(bounds, dtype=np.float64))
    except (TypeError, ValueError):
        raise EvostyleError("bounds must be a sequence of (low, high) pairs") from None
    if b.dim() != 2 or b.shape[1] != 2 or b.shape[0] < 1:
        raise EvostyleError(f"bounds must have shape (D, 2), got {tuple(b.shape)}")
    if not torch.isfinite(b).all():
        raise EvostyleError("bounds must be finite numbers (got NaN or inf)")
    bad = torch.nonzero(b[:, 0] > b[:, 1]).flatten().tolist()
    if bad:
        i = bad[0]
        raise EvostyleError(f"bounds[{i}] has low > high ({b[i, 0]:g} > {b[i, 1]:g}); need low <= high")
    return b


def torch_seed(seed: SeedLike) -> int:
    """An int seed for torch's generator from an int, None (fresh entropy) or a numpy Generator /
    RandomState (one draw from it, as scipy derives its streams)."""
    if seed is None:
        return int(np.random.default_rng().integers(2**62))
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**62))
    if isinstance(seed, np.random.RandomState):
        return int(seed.randint(2**31 - 1))
    if isinstance(seed, (bool, float)) or not isinstance(seed, (int, np.integer)):
        raise EvostyleError(f"seed must be an int, None or a numpy Generator, got {seed!r}")
    return int(seed)


def check_de_settings(
    strategy: str | Callable,
    mutation: float | tuple[float, float],
    recombination: float,
    maxiter: int | None,
    init: str | ArrayLike = "latinhypercube",
    boundary: str = "resample",
) -> None:
    """The rules of DE's settings, checked before a solver (or a search that will make one) starts: a
    known or callable strategy, F in [0, 2] or a dithering range inside it, CR in [0, 1], maxiter >= 0
    (or None), a known init name (or an array) and boundary mode."""
    if not callable(strategy):
        parse_strategy(strategy)
    if isinstance(mutation, (tuple, list)):
        if len(mutation) != 2 or not 0 <= mutation[0] <= mutation[1] <= 2:
            raise EvostyleError(f"mutation must be [low, high] with 0 <= low <= high <= 2, got {list(mutation)}")
    elif not 0 <= float(mutation) <= 2:
        raise EvostyleError(f"mutation must be in [0, 2], got {mutation}")
    if not 0 <= float(recombination) <= 1:
        raise EvostyleError(f"recombination must be in [0, 1], got {recombination}")
    if maxiter is not None and int(maxiter) < 0:
        raise EvostyleError(f"maxiter must be >= 0, got {maxiter}")
    if isinstance(init, str) and init not in INITS:
        raise EvostyleError(f"unknown init {init!r}; valid: {', '.join(INITS)} or an (N, D) array")
    if boundary not in BOUNDARY_MODES:
        raise unknown("boundary mode", boundary, BOUNDARY_MODES)


def wrap_callback(callback: Callable | None) -> Callable[[OptimizeResult], bool] | None:
    """scipy's rules for a callback: one parameter named ``intermediate_result`` receives the
    intermediate OptimizeResult; any other signature is called as ``callback(x, convergence)``; a
    true return value or a raised StopIteration stops the run. Returns ``stop(result) -> bool`` (or
    None)."""
    if callback is None:
        return None
    try:
        params = set(inspect.signature(callback).parameters)
    except (TypeError, ValueError):  # a builtin without a signature
        params = set()
    call = ((lambda res: callback(intermediate_result=res)) if params == {"intermediate_result"}
            else (lambda res: callback(np.copy(res.x), res.get("convergence", 0.0))))

    def stop(res: OptimizeResult) -> bool:
        try:
            return bool(call(res))
        except StopIteration:
            return True
    return stop


def latin_hypercube(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    """(n, d) Latin hypercube sample in [0, 1) (one point per 1/n slab in every column)."""
    seg = torch.rand(n, d, generator=gen, dtype=torch.float64) / n
    pts = seg + torch.arange(n, dtype=torch.float64)[:, None] / n
    out = torch.empty_like(pts)
    for j in range(d):
        out[:, j] = pts[torch.randperm(n, generator=gen), j]
    return out


def initial_population(init: str, n: int, d: int, gen: torch.Generator, seed: int | None) -> torch.Tensor:
    """Unit-cube initial population: a name from :data:`INITS` or an (n, d) array already in [0, 1]."""
    if isinstance(init, str):
        if init == "latinhypercube":
            return latin_hypercube(n, d, gen)
        if init == "random":
            return torch.rand(n, d, generator=gen, dtype=torch.float64)
        if init == "sobol":
            s = int(torch.randint(0, 2**31 - 1, (1,), generator=gen)) if seed is None else int(seed)
            return torch.quasirandom.SobolEngine(d, scramble=True, seed=s).draw(n, dtype=torch.float64)
        if init == "halton":
            from scipy.stats import qmc
            s = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
            return torch.from_numpy(qmc.Halton(d, scramble=True, seed=s).random(n))
        raise EvostyleError(f"unknown init {init!r}; valid: {', '.join(INITS)} or an (N, D) array")
    raise TypeError("initial_population needs a name; arrays are handled by the solver")


class DifferentialEvolution:
    """Differential evolution with a batched objective; one generation per :meth:`step`.

    Args mirror ``scipy.optimize.differential_evolution`` (see :func:`differential_evolution`).
    Attributes after construction: ``population`` (P, D) in the unit cube, ``energies`` (P,) (evaluated
    lazily on the first step), ``nit``, ``nfev``.
    """

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
        self.func = func
        self.bounds = check_bounds(bounds)
        d = self.bounds.shape[0]
        if callable(strategy):  # scipy's custom strategy: strategy(candidate, population, rng=) -> trial
            self.mutation_fn, self.crossover = None, None
        else:
            self.mutation_fn, self.crossover = parse_strategy(strategy)
        self.strategy = strategy
        self.device = torch.device(device)
        self.lo = self.bounds[:, 0].to(self.device)
        self.span = (self.bounds[:, 1] - self.bounds[:, 0]).to(self.device)
        self.fixed = self.span == 0  # equal bounds: the parameter never moves
        check_de_settings(strategy, mutation, recombination, maxiter, init, boundary)
        if isinstance(mutation, (tuple, list)):
            self.dither = (float(mutation[0]), float(mutation[1]))
            self.scale = self.dither[0]
        else:
            self.dither, self.scale = None, float(mutation)
        self.cr = float(recombination)
        self.boundary = boundary
        maxiter = 1000 if maxiter is None else maxiter  # scipy's default used to be None
        self.maxiter, self.tol, self.atol = int(maxiter), float(tol), float(atol)
        self.callback = wrap_callback(callback)
        if rng is not None and seed is not None:
            raise EvostyleError("give seed or rng, not both")
        seed = rng if rng is not None else seed
        self.seed = torch_seed(seed)
        self.gen = torch.Generator().manual_seed(self.seed)
        self.np_rng = np.random.default_rng(self.seed)  # what a callable strategy receives
        if isinstance(init, str):
            n = max(5, int(popsize) * max(1, d - int(self.fixed.sum())))
            pop = initial_population(init, n, d, self.gen, self.seed)
        else:
            pop = torch.as_tensor(np.asarray(init, dtype=np.float64))
            if pop.dim() != 2 or pop.shape[1] != d:
                raise EvostyleError(f"init array must have shape (N, {d}), got {tuple(pop.shape)}")
            if not torch.isfinite(pop).all():
                raise EvostyleError("init array contains NaN or inf")
            pop = self.scale_in(pop).clamp(0, 1)
        need = (self.mutation_fn.n_random if self.mutation_fn is not None else 0) + 1
        if pop.shape[0] < max(need, 5):
            raise EvostyleError(f"population of {pop.shape[0]} is too small for strategy {strategy!r}: "
                                f"it needs at least {max(need, 5)} members; raise popsize")
        if x0 is not None:
            x0t = torch.as_tensor(np.asarray(x0, dtype=np.float64)).reshape(-1)
            if x0t.numel() != d or not torch.isfinite(x0t).all():
                raise EvostyleError(f"x0 must be {d} finite numbers, got {np.asarray(x0).tolist()}")
            if ((x0t < self.bounds[:, 0]) | (x0t > self.bounds[:, 1])).any():
                raise EvostyleError("x0 lies outside the bounds")
            pop[0] = self.scale_in(x0t)
        self.population = pop.to(self.device)
        self.energies: torch.Tensor | None = None
        self.nit = self.nfev = 0
        self.best = 0
        self.t0 = time.perf_counter()
        self.message = ""

    # -- helpers --------------------------------------------------------------------------------------
    def scale_out(self, unit: torch.Tensor) -> torch.Tensor:
        """Unit cube -> problem units."""
        return self.lo + unit * self.span

    def scale_in(self, x: torch.Tensor) -> torch.Tensor:
        """Problem units -> unit cube (the inverse of :meth:`scale_out`), on ``x``'s device; a fixed
        parameter (equal bounds) maps to 0.5, as in scipy."""
        fixed = self.fixed.to(x.device)
        span = torch.where(fixed, torch.ones_like(self.span), self.span).to(x.device)
        return torch.where(fixed, torch.full_like(x, 0.5), (x - self.lo.to(x.device)) / span)

    def _evaluate(self, unit: torch.Tensor) -> torch.Tensor:
        out = self.func(self.scale_out(unit))
        e = torch.as_tensor(np.asarray(out.detach().cpu() if torch.is_tensor(out) else out, dtype=np.float64))
        e = e.reshape(-1).to(self.device)
        if e.numel() != unit.shape[0]:
            raise EvostyleError(f"objective returned {e.numel()} values for {unit.shape[0]} candidates; "
                                "it must map (P, D) to (P,)")
        self.nfev += unit.shape[0]
        return torch.nan_to_num(e, nan=math.inf)  # NaN counts as the worst value

    def _rand(self, *shape) -> torch.Tensor:
        return torch.rand(*shape, generator=self.gen, dtype=torch.float64)

    def _samples(self, p: int, n: int) -> torch.Tensor:
        """(P, n) distinct member indices per row, none equal to the row's own index."""
        keys = self._rand(p, p)
        keys.fill_diagonal_(2.0)
        return keys.argsort(dim=1)[:, :n]

    def _ensure_bounds(self, trial: torch.Tensor) -> torch.Tensor:
        if self.boundary == "reflect":
            trial = trial.abs()
            trial = torch.where(trial > 1, 2 - trial, trial)
            return trial.clamp(0, 1)
        bad = (trial < 0) | (trial > 1)
        fresh = self._rand(*trial.shape).to(self.device)
        return torch.where(bad, fresh, trial)

    def converged(self) -> bool:
        """scipy's rule: std(E) <= atol + tol * |mean(E)| over the population's energies."""
        e = self.energies
        if e is None or not torch.isfinite(e).all():
            return False
        return bool(e.std(unbiased=False) <= self.atol + self.tol * e.mean().abs())

    def result(self, success: bool | None = None) -> OptimizeResult:
        """The current state as an OptimizeResult (the same type the solve returns): x, fun, nfev, nit,
        success, message, population (P, D) in problem units and population_energies (P,)."""
        e = self.energies if self.energies is not None else torch.full((self.population.shape[0],), math.inf)
        pop = self.scale_out(self.population).cpu().numpy()
        return OptimizeResult(
            x=pop[self.best].copy(), fun=float(e[self.best]), nfev=self.nfev, nit=self.nit,
            success=bool(success) if success is not None else False, message=self.message,
            population=pop, population_energies=e.cpu().numpy(), elapsed=time.perf_counter() - self.t0)

    def convergence(self) -> float:
        """std(E) / |mean(E)| of the population's energies (inf while any is infinite), as scipy's
        solver defines its ``convergence`` property."""
        e = self.energies
        if e is None or not torch.isfinite(e).all():
            return math.inf
        return float(e.std(unbiased=False) / (e.mean().abs() + _MACHEPS))

    def intermediate_result(self) -> OptimizeResult:
        """What a callback receives after each generation, as scipy gives it: the current state with
        message "in progress", success True and ``convergence`` = tol / (std(E) / |mean(E)|), which
        reaches 1 where the run would stop."""
        res = self.result(success=True)
        res.message = "in progress"
        res.convergence = self.tol / (self.convergence() + _MACHEPS)
        return res

    # -- the algorithm --------------------------------------------------------------------------------
    def init(self) -> None:
        """Evaluate the initial population (one batched call)."""
        if self.energies is None:
            self.energies = self._evaluate(self.population)
            self.best = int(torch.argmin(self.energies))

    def _trials(self) -> torch.Tensor:
        """One generation's (P, D) trial vectors in the unit cube: mutate, cross over, repair bounds.

        The random draws, in this order: the dithered F (if any), the mutation's members, the
        crossover's uniforms and start columns, then the boundary repair's uniforms."""
        p, d = self.population.shape
        if self.mutation_fn is None:  # a callable strategy makes each trial itself, in problem units
            pop = self.scale_out(self.population).cpu().numpy()
            trial = np.stack([np.asarray(self.strategy(i, pop, rng=self.np_rng), dtype=np.float64)
                              for i in range(p)])
            if trial.shape != (p, d):
                raise EvostyleError(f"strategy must return an array of shape ({d},) for each candidate")
            return self._ensure_bounds(self.scale_in(torch.from_numpy(trial).to(self.device)))
        if self.dither is not None:
            self.scale = float(self.dither[0] + (self.dither[1] - self.dither[0]) * self._rand(1))
        dev = self.device  # random draws come from the CPU generator; the arithmetic runs on ``dev``
        idx = torch.arange(p, device=dev)
        r = self._samples(p, self.mutation_fn.n_random).to(dev)
        mutant = self.mutation_fn.fn(self.population, self.best, idx, r, self.scale)
        u = self._rand(p, d).to(dev)
        pos = torch.randint(0, d, (p,), generator=self.gen).to(dev)
        mask = crossover_mask(self.crossover, u, pos, self.cr)
        return self._ensure_bounds(torch.where(mask, mutant, self.population))

    def step(self) -> tuple[np.ndarray, float]:
        """One generation: mutate, cross over, evaluate all trials in one call, select. Returns best."""
        self.init()
        trial = self._trials()
        e = self._evaluate(trial)
        better = e <= self.energies
        self.population = torch.where(better[:, None], trial, self.population)
        self.energies = torch.where(better, e, self.energies)
        self.best = int(torch.argmin(self.energies))
        self.nit += 1
        return self.scale_out(self.population[self.best]).cpu().numpy(), float(self.energies[self.best])

    def __iter__(self):
        return self

    def __next__(self):
        if self.nit >= self.maxiter:
            raise StopIteration
        return self.step()

    def solve(self) -> OptimizeResult:
        """Run until convergence, ``maxiter`` generations, or the callback asks to stop."""
        self.init()
        success = False
        self.message = "Maximum number of iterations has been exceeded."
        if self.converged():
            success, self.message = True, "Optimization terminated successfully."
        while not success and self.nit < self.maxiter:
            self.step()
            if self.callback is not None and self.callback(self.intermediate_result()):
                self.message = "callback function requested stop early"
                break
            if self.converged():
                success, self.message = True, "Optimization terminated successfully."
        return self.result(success)


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
