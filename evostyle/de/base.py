"""The base of the population optimisers in :mod:`evostyle.de`: an algorithm is sampling + variation +
survival, in the manner of pymoo, run by one loop that follows scipy's ``DifferentialEvolutionSolver``.

:class:`PopulationOptimizer` owns what the optimisers share: the bounds and the unit cube the
population lives in, the seeded CPU generator every random draw comes from, the initial population,
the one batched evaluation per generation, ``nit`` / ``nfev``, the solve loop with scipy's callback
rules and messages, and iteration. A subclass brings two objects and the reporting:

* a **variation** ``variation(optimizer) -> trials (T, D)`` in the unit cube, e.g.
  :class:`~evostyle.de.variation.DEVariation` (DE's mutation and crossover) or
  :class:`~evostyle.de.variation.UniformSampling` (random search);
* a **survival** ``survival(population (P, D), fitness, trials (T, D), trial_fitness) -> (population,
  fitness)``, e.g. :class:`~evostyle.de.survival.GreedySurvival` (DE),
  :class:`~evostyle.de.survival.GDE3Survival`, :class:`~evostyle.de.survival.ArchiveSurvival`;
* optionally, its own :meth:`PopulationOptimizer.result` fields, a stopping rule
  (:meth:`PopulationOptimizer.converged`) and a faster :meth:`PopulationOptimizer.incumbent`.

The base runs as it is, too: ``PopulationOptimizer(func, bounds, variation=..., survival=...).solve()``
with objects made outside this package.

Fitness is (P,) for a scalar objective or (P, M) for a multi-objective one (lower is better in every
column; NaN counts as +inf).
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from scipy.optimize import OptimizeResult

from evostyle.de.pareto import non_dominated
from evostyle.de.sampling import check_init, initial_population

from ..errors import EvostyleError

if TYPE_CHECKING:  # annotations only
    from evostyle.types import ArrayLike, SeedLike

MAXITER_MESSAGE = "Maximum number of iterations has been exceeded."
SUCCESS_MESSAGE = "Optimization terminated successfully."
CALLBACK_MESSAGE = "callback function requested stop early"
"""scipy's messages, so a result reads the same whichever solver made it."""


class Variation(Protocol):
    """Makes one generation's trials: ``variation(opt) -> (T, D)`` float64 in the unit cube, on
    ``opt.device``. It may read the optimiser's ``population``, ``fitness``, ``best``, ``size``,
    ``dim``, ``device``, ``gen`` / ``np_rng`` (draw only from these, for reproducibility) and
    ``scale_in`` / ``scale_out``. Optional attributes: ``min_population`` (int) and ``label`` (str,
    for the too-small-population error)."""

    def __call__(self, opt: PopulationOptimizer) -> torch.Tensor: ...


class Survival(Protocol):
    """Chooses the next population: ``survival(population (P, D), fitness (P,) | (P, M), trials (T, D),
    trial_fitness (T,) | (T, M)) -> (population, fitness)`` (any number of rows)."""

    def __call__(self, population: torch.Tensor, fitness: torch.Tensor, trials: torch.Tensor,
                 trial_fitness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


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


def check_maxiter(maxiter: int | None) -> None:
    """maxiter >= 0, or None (the optimiser's default)."""
    if maxiter is not None and int(maxiter) < 0:
        raise EvostyleError(f"maxiter must be >= 0, got {maxiter}")


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


def best_or_front(x: np.ndarray, f: np.ndarray) -> tuple:
    """A result's ``(x, fun)`` from points (n, D) and their values: the best point (D,) and its value
    for a scalar objective (n,) (None and inf when n is 0); the non-dominated points (F, D) and their
    values (F, M) for a multi-objective one (n, M)."""
    if f.ndim == 1:
        if not len(f):
            return None, math.inf
        i = int(np.argmin(f))
        return x[i].copy(), float(f[i])
    front = np.flatnonzero(non_dominated(f))
    return x[front].copy(), f[front].copy()


_WANT = {"scalar": "(P,)", "multi": "(P, M)", "either": "(P,) or (P, M)"}


class PopulationOptimizer:
    """A population optimiser over a batched objective; one generation per :meth:`step`.

    Args:
        func: (P, D) float64 tensor in problem units, on ``device`` -> (P,) values
            (``objective_kind`` "scalar"), (P, M) ("multi"), or either ("either"; the first call
            decides). NaN counts as +inf. Called once per generation.
        bounds: (D, 2) finite (low, high) pairs; equal bounds fix a parameter.
        variation, survival: the objects that make trials and choose the next population (module doc).
        popsize: scipy's multiplier: P = max(5, popsize * number of non-fixed parameters); ignored
            when ``init`` is an array (then P = len(init)).
        maxiter: generations after the initial population (None: ``default_maxiter``).
        init: a name from :data:`~evostyle.de.sampling.INITS` or an (N, D) array in problem units
            (clipped into the bounds).
        seed / rng: an int, None or a numpy Generator (one draw seeds the run); give one of them.
        callback: scipy's callback (see :func:`wrap_callback`), called after every generation.
        x0: a point (D,) that replaces the first initial member.
        device: where the population lives; the random draws are made on the CPU either way.

    Attributes: ``population`` (P, D) in the unit cube, ``fitness`` (P,) or (P, M) (None until
    :meth:`init`), ``size`` P, ``dim`` D, ``nit`` (generations after the initial population), ``nfev``
    (points evaluated), ``gen`` (the seeded CPU torch.Generator), ``np_rng`` (a numpy Generator from the
    same seed, for callables that draw with numpy), ``message``.

    The contract of :meth:`step`, kept by every subclass: evaluate the initial population first if
    :meth:`init` has not, then run exactly one generation (``trials = variation(self)``, one call of
    ``func`` on them, ``population, fitness = survival(...)``), add 1 to ``nit`` and return
    :meth:`incumbent`, the pair ``(x, fun)`` that :meth:`result` would report now.
    """

    objective_kind = "scalar"
    """What ``func`` returns: "scalar" (P,), "multi" (P, M), or "either" (fixed by the first call)."""
    default_maxiter = 1000

    def __init__(
        self,
        func: Callable,
        bounds: ArrayLike,
        *,
        variation: Variation,
        survival: Survival,
        popsize: int = 15,
        maxiter: int | None = None,
        init: str | ArrayLike = "latinhypercube",
        seed: SeedLike = None,
        callback: Callable | None = None,
        x0: ArrayLike | None = None,
        device: torch.device | str = "cpu",
        rng: SeedLike = None,
    ):
        self.func = func
        self.bounds = check_bounds(bounds)
        self.variation, self.survival = variation, survival
        self.device = torch.device(device)
        self.lo = self.bounds[:, 0].to(self.device)
        self.span = (self.bounds[:, 1] - self.bounds[:, 0]).to(self.device)
        self.fixed = self.span == 0  # equal bounds: the parameter never moves
        check_maxiter(maxiter)
        check_init(init)
        self.maxiter = int(self.default_maxiter if maxiter is None else maxiter)
        self.callback = wrap_callback(callback)
        if rng is not None and seed is not None:
            raise EvostyleError("give seed or rng, not both")
        self.seed = torch_seed(rng if rng is not None else seed)
        self.gen = torch.Generator().manual_seed(self.seed)
        self.np_rng = np.random.default_rng(self.seed)  # what a callable (numpy) component receives
        pop = self._initial_population(init, popsize)
        need = int(getattr(variation, "min_population", 1))
        if pop.shape[0] < need:
            what = getattr(variation, "label", type(variation).__name__)
            raise EvostyleError(f"population of {pop.shape[0]} is too small for {what}: it needs at least "
                                f"{need} members; raise popsize")
        if x0 is not None:
            x0t = torch.as_tensor(np.asarray(x0, dtype=np.float64)).reshape(-1)
            if x0t.numel() != self.dim or not torch.isfinite(x0t).all():
                raise EvostyleError(f"x0 must be {self.dim} finite numbers, got {np.asarray(x0).tolist()}")
            if ((x0t < self.bounds[:, 0]) | (x0t > self.bounds[:, 1])).any():
                raise EvostyleError("x0 lies outside the bounds")
            pop[0] = self.scale_in(x0t)
        self.population = pop.to(self.device)
        self.size = int(pop.shape[0])
        self.fitness: torch.Tensor | None = None
        self.nit = self.nfev = 0
        self.t0 = time.perf_counter()
        self.message = ""

    def _initial_population(self, init: str | ArrayLike, popsize: int) -> torch.Tensor:
        """(P, D) on the CPU in the unit cube, from a name (P from ``popsize``) or an array."""
        d = self.dim
        if isinstance(init, str):
            # scipy's rule: the multiplier counts only the parameters that can move
            n = max(5, int(popsize) * max(1, d - int(self.fixed.sum())))
            return initial_population(init, n, d, self.gen, self.seed)
        pop = torch.as_tensor(np.asarray(init, dtype=np.float64))
        if pop.dim() != 2 or pop.shape[1] != d:
            raise EvostyleError(f"init array must have shape (N, {d}), got {tuple(pop.shape)}")
        if not torch.isfinite(pop).all():
            raise EvostyleError("init array contains NaN or inf")
        return self.scale_in(pop).clamp(0, 1)

    # -- units ----------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """D, the number of parameters (fixed ones included)."""
        return int(self.bounds.shape[0])

    def scale_out(self, unit: torch.Tensor) -> torch.Tensor:
        """Unit cube -> problem units, on ``unit``'s device."""
        return self.lo.to(unit.device) + unit * self.span.to(unit.device)

    def scale_in(self, x: torch.Tensor) -> torch.Tensor:
        """Problem units -> unit cube (the inverse of :meth:`scale_out`), on ``x``'s device; a fixed
        parameter (equal bounds) maps to 0.5, as in scipy."""
        fixed = self.fixed.to(x.device)
        span = torch.where(fixed, torch.ones_like(self.span), self.span).to(x.device)
        return torch.where(fixed, torch.full_like(x, 0.5), (x - self.lo.to(x.device)) / span)

    def rand(self, *shape: int) -> torch.Tensor:
        """Uniform [0, 1) float64 draws of ``shape`` from the run's CPU generator."""
        return torch.rand(*shape, generator=self.gen, dtype=torch.float64)

    # -- evaluation -----------------------------------------------------------------------------------
    def _evaluate(self, unit: torch.Tensor) -> torch.Tensor:
        """Evaluate (P, D) unit-cube points in one call of ``func``; (P,) or (P, M) on ``device``."""
        out = self.func(self.scale_out(unit))
        f = torch.as_tensor(np.asarray(out.detach().cpu() if torch.is_tensor(out) else out, dtype=np.float64))
        f = self._check_shape(f, unit.shape[0])
        self.nfev += unit.shape[0]
        return torch.nan_to_num(f, nan=math.inf).to(self.device)  # NaN counts as the worst value

    def _check_shape(self, f: torch.Tensor, p: int) -> torch.Tensor:
        """``f`` as (P,) or (P, M) per ``objective_kind`` and earlier calls, or one clear error."""
        kind, want = self.objective_kind, _WANT[self.objective_kind]
        if kind == "scalar" and f.dim() == 2 and f.shape[1] == 1:
            f = f[:, 0]  # a column of values, as a network's head often returns, is still scalar
        ok = f.dim() >= 1 and f.shape[0] == p and (f.dim() == 1 if kind == "scalar" else
                                                   f.dim() == 2 if kind == "multi" else f.dim() <= 2)
        if ok and self.fitness is not None and f.shape[1:] != self.fitness.shape[1:]:
            ok, want = False, "(P,)" if self.fitness.dim() == 1 else f"(P, {self.fitness.shape[1]})"
            want += " as on its first call"
        if not ok:
            raise EvostyleError(f"objective returned shape {tuple(f.shape)} for {p} candidates; it must map "
                                f"(P, D) to {want}")
        return f

    # -- the algorithm --------------------------------------------------------------------------------
    @property
    def best(self) -> int | None:
        """Index of the member with the lowest scalar fitness (0 before :meth:`init`; None for a
        multi-objective fitness, which has no single best)."""
        if self.fitness is None:
            return 0
        return int(torch.argmin(self.fitness)) if self.fitness.dim() == 1 else None

    def init(self) -> None:
        """Evaluate the initial population (one batched call), once."""
        if self.fitness is None:
            self.fitness = self._evaluate(self.population)

    def select(self, trials: torch.Tensor, trial_fitness: torch.Tensor) -> None:
        """Apply the survival to the evaluated trials: updates ``population`` and ``fitness``."""
        self.population, self.fitness = self.survival(self.population, self.fitness, trials, trial_fitness)

    def step(self) -> tuple:
        """One generation (see the class doc for the contract); returns :meth:`incumbent`."""
        self._generation()
        return self.incumbent()

    def _generation(self) -> None:
        """:meth:`step` without building its return value, which :meth:`solve` does not need (random
        search's front of the whole archive is quadratic in its size)."""
        self.init()
        trials = self.variation(self)
        self.select(trials, self._evaluate(trials))
        self.nit += 1

    def incumbent(self) -> tuple:
        """``(x, fun)`` as :meth:`result` reports them now (subclasses may compute it faster)."""
        res = self.result()
        return res.x, res.fun

    def converged(self) -> bool:
        """The stopping rule checked after :meth:`init` and every generation; none by default."""
        return False

    def convergence_fraction(self) -> float:
        """The ``convergence`` a callback sees: 1 or more where :meth:`converged` stops the run (scipy's
        tol / (std / |mean|)); 0.0 for an optimiser without a stopping rule."""
        return 0.0

    def result(self, success: bool | None = None) -> OptimizeResult:
        """The current state as an OptimizeResult (subclasses name their fields their way): ``x`` /
        ``fun`` as :func:`best_or_front`, ``population`` (P, D) in problem units, ``population_fitness``
        (P,) or (P, M) (None before :meth:`init`), ``nfev``, ``nit``, ``success``, ``message``,
        ``elapsed``."""
        pop = self.scale_out(self.population).cpu().numpy()
        if self.fitness is None:
            return self._result(success, x=None, fun=math.inf, population=pop, population_fitness=None)
        f = self.fitness.cpu().numpy().copy()  # a copy: on the CPU .numpy() would share the tensor's memory
        x, fun = best_or_front(pop, f)
        return self._result(success, x=x, fun=fun, population=pop, population_fitness=f)

    def _result(self, success: bool | None, **fields) -> OptimizeResult:
        """An OptimizeResult of ``fields`` and the common nfev, nit, success, message, elapsed."""
        return OptimizeResult(**fields, nfev=self.nfev, nit=self.nit, success=bool(success),
                              message=self.message, elapsed=time.perf_counter() - self.t0)

    def intermediate_result(self) -> OptimizeResult:
        """What a callback receives after each generation, as scipy gives it: the current state with
        message "in progress", success True and ``convergence`` (:meth:`convergence_fraction`)."""
        res = self.result(success=True)
        res.message = "in progress"
        res.convergence = self.convergence_fraction()
        return res

    def __iter__(self):
        return self

    def __next__(self):
        if self.nit >= self.maxiter:
            raise StopIteration
        return self.step()

    def solve(self) -> OptimizeResult:
        """Run until :meth:`converged`, ``maxiter`` generations, or the callback asks to stop (scipy's
        order: the callback sees a generation before the stopping rule is checked)."""
        self.init()
        success = False
        self.message = MAXITER_MESSAGE
        if self.converged():
            success, self.message = True, SUCCESS_MESSAGE
        while not success and self.nit < self.maxiter:
            self._generation()
            if self.callback is not None and self.callback(self.intermediate_result()):
                self.message = CALLBACK_MESSAGE
                break
            if self.converged():
                success, self.message = True, SUCCESS_MESSAGE
        return self.result(success)
