"""DEHB: differential evolution inside Hyperband's brackets (Awad, Mallik & Hutter 2021, "DEHB:
evolutionary hyperband for scalable, robust and efficient hyperparameter optimization", IJCAI), batched
so that every rung is one call of the objective; a multi-objective fitness is ranked as MO-DEHB ranks it
(Awad et al. 2023, arXiv 2305.04502: non-dominated sorting, then crowding distance).

The objective is called as ``func(unit (N, D), budget, continue_from) -> fitness (N,) | (N, M)``, with
``continue_from`` None (every row from scratch) or (N,) row numbers of the previous call that row i
carries on (a promoted configuration: the same point at a higher budget, which a transfer continues from
where it stopped instead of starting over, :mod:`evostyle.transfer.state`).

Per bracket (:class:`~evostyle.de.schedule.Schedule`): in the first cycle of S brackets, Hyperband with
random configurations: the first rung samples uniformly, each later rung promotes the best of the
rung below, and every evaluation enters its level's subpopulation (the best of them kept, up to the
level's size). In later cycles, DE: every rung mutates ``rand1`` from a parent pool (the level's own
subpopulation at a bracket's first rung, at a later one the best n_i members of the level below as
they stand after that rung's selection, topped up from the level's subpopulation when fewer than the
mutation needs), crosses over with
target members of the level's subpopulation taken in turn (``bin``) and evaluates from scratch; a
trial replaces its target if no worse (scalar) or survives with the targets by non-dominated sorting
and crowding (multi-objective).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from scipy.optimize import OptimizeResult

from evostyle.de.base import check_bounds
from evostyle.de.pareto import non_dominated, prune
from evostyle.de.schedule import Schedule
from evostyle.de.strategies import crossover_mask, parse_strategy
from evostyle.de.variation import DEVariation

from ..errors import EvostyleError


def best_rows(fitness: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices of the ``keep`` best rows of (N,) or (N, M) fitness (lower is better, NaN as +inf):
    ascending fitness (stable) for a scalar, non-dominated sorting and crowding for several columns."""
    f = torch.nan_to_num(fitness.double().cpu(), nan=float("inf"))
    if f.dim() == 1:
        return torch.argsort(f, stable=True)[:keep]
    return torch.as_tensor(prune(f.numpy(), keep), dtype=torch.long)


def distinct_rows(points: torch.Tensor) -> torch.Tensor:
    """The rows of (N, D) ``points`` without repeats, each at its first occurrence, in order."""
    if len(points) < 2:
        return points
    _, inverse = torch.unique(points, dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), len(points), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(len(points)), reduce="amin")
    return points[first.sort().values]


@dataclass
class Level:
    """One budget level's subpopulation (unit-cube points and their fitness at that budget)."""

    size: int
    population: torch.Tensor
    fitness: torch.Tensor
    turn: int = 0
    """The next target member (DE takes targets in turn)."""
    evaluated: set = field(default_factory=set)
    """Every point evaluated at this budget (as tuples), so that no trial runs a transfer again."""

    def novel(self, points: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``points`` with each row that repeats a point evaluated here (or an earlier row) replaced by a
        uniform draw. In small subpopulations DE's parents share coordinates (binomial crossover copies
        them), so x_r1 + F (x_r2 - x_r3) can land exactly on the target on every coordinate crossed
        over, and the trial would repeat a transfer already run."""
        out, seen = points.clone(), set(self.evaluated)
        for i in range(len(out)):
            while tuple(out[i].tolist()) in seen:
                out[i] = torch.rand(out.shape[1], generator=gen, dtype=out.dtype)
            seen.add(tuple(out[i].tolist()))
        return out

    def add(self, points: torch.Tensor, fitness: torch.Tensor) -> None:
        """Hyperband's cycle: keep the best ``size`` of the members and the new points."""
        pop = torch.cat([self.population, points]) if len(self.population) else points
        fit = torch.cat([self.fitness, fitness]) if len(self.fitness) else fitness
        keep = best_rows(fit, self.size).sort().values
        self.population, self.fitness = pop[keep], fit[keep]

    def targets(self, n: int) -> torch.Tensor:
        """n member indices, in turn."""
        idx = (self.turn + torch.arange(n)) % len(self.population)
        self.turn = int((self.turn + n) % len(self.population))
        return idx


@dataclass
class Call:
    """One rung as run: its bracket and rung, budget, points and fitness."""

    bracket: int
    rung: int
    budget: float
    points: torch.Tensor
    fitness: torch.Tensor
    continued: bool
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


class DEHB:
    """Multi-fidelity DE over ``[min_budget, max_budget]`` (see the module docstring).

    Args:
        func: the objective (module docstring); fitness is lower-is-better in every column.
        bounds: (D, 2) bounds of the problem's units; ``func`` receives unit-cube points.
        min_budget / max_budget / eta: the :class:`~evostyle.de.schedule.Schedule` (budgets rounded to
            whole numbers unless ``integer`` is False).
        levels: the budget levels themselves, rising from ``min_budget`` to ``max_budget``
            (:meth:`~evostyle.de.schedule.Schedule.over`), instead of eta apart (``integer`` then
            does not apply: the levels are taken as given).
        brackets: how many brackets to run (a cycle is S of them).
        mutation / recombination: DE's F and CR (DEHB's defaults 0.5, 0.5).
        boundary: repair of out-of-bounds trial entries, as :class:`~evostyle.de.variation.DEVariation`.
        seed: seeds the CPU generator every draw comes from.
        callback: ``callback(call: Call) -> bool | None`` after every rung; True stops the run.
    """

    def __init__(self, func: Callable, bounds, min_budget: float, max_budget: float, eta: float = 3.0, *,
                 brackets: int = 4, mutation: float = 0.5, recombination: float = 0.5, boundary: str = "resample",
                 seed: int | None = None, device: torch.device | str | None = None,
                 callback: Callable[[Call], bool | None] | None = None, integer: bool = True,
                 levels: Sequence[float] | None = None):
        self.func, self.callback = func, callback
        self.bounds = check_bounds(bounds)
        self.dim = self.bounds.shape[0]
        self.schedule = (Schedule(float(min_budget), float(max_budget), float(eta), integer) if levels is None else
                         Schedule.over(levels, float(eta)))
        if (self.schedule.min_budget, self.schedule.max_budget) != (float(min_budget), float(max_budget)):
            raise EvostyleError(f"levels {list(levels)} must rise from min_budget {min_budget} to max_budget "
                                f"{max_budget}")
        if int(brackets) < 1:
            raise EvostyleError(f"brackets must be at least 1, got {brackets}")
        self.brackets = int(brackets)
        self.variation = DEVariation("rand1bin", float(mutation), float(recombination), boundary)
        self.gen = torch.Generator().manual_seed(int(seed) if seed is not None else
                                                 int(torch.randint(0, 2**62, (1,)).item()))
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        sizes = self.schedule.population_sizes()
        self.levels = [Level(n, torch.empty(0, self.dim, dtype=torch.float64), torch.empty(0)) for n in sizes]
        self.calls: list[Call] = []
        self.spent = 0.0
        """Budget spent: a row from scratch costs its budget, a continued one the step up."""

    def _mutants(self, pool: torch.Tensor, targets: torch.Tensor, level: Level) -> torch.Tensor:
        """rand1bin trials: mutants from the distinct points of ``pool`` (topped up from the level when
        it has fewer than 3), crossed over with ``targets`` (T, D), repaired. Distinct, because the
        level below's best is often a member of the level too (a first-cycle promotion): a pool holding
        one point twice gives x_r2 - x_r3 = 0, and a trial that repeats a transfer already run."""
        mutation, crossover = parse_strategy("rand1bin")
        need = mutation.n_random
        pool = distinct_rows(pool)
        if len(pool) < need:
            extra = level.population[torch.randperm(len(level.population), generator=self.gen)]
            pool = distinct_rows(torch.cat([pool, extra]))[: max(need, len(pool))]
        if len(pool) < need:  # still too few: fresh uniform points
            pool = torch.cat([pool, torch.rand(need - len(pool), self.dim, generator=self.gen, dtype=torch.float64)])
        t = len(targets)
        r = torch.stack([torch.randperm(len(pool), generator=self.gen)[:need] for _ in range(t)])
        mutant = mutation.fn(pool, None, None, r, self.variation.scale)
        u = torch.rand(t, self.dim, generator=self.gen, dtype=torch.float64)
        pos = torch.randint(0, self.dim, (t,), generator=self.gen)
        trial = torch.where(crossover_mask(crossover, u, pos, self.variation.cr), mutant, targets)
        return self.variation.repair(trial, self.gen)

    def _evaluate(self, b: int, i: int, budget: float, points: torch.Tensor, cont: torch.Tensor | None,
                  lower: float) -> Call:
        t0 = time.perf_counter()
        fit = torch.as_tensor(self.func(points.to(self.device), budget, cont)).double().cpu()
        if fit.shape[0] != points.shape[0]:
            raise EvostyleError(f"the objective returned {fit.shape[0]} values for {points.shape[0]} points")
        self.spent += len(points) * (budget - lower if cont is not None else budget)
        call = Call(b, i, budget, points, fit, cont is not None, time.perf_counter() - t0)
        self.calls.append(call)
        return call

    def run_bracket(self, b: int) -> bool:
        """Run bracket ``b``; True if the callback asked to stop."""
        first_cycle = b < self.schedule.levels
        prev: Call | None = None
        for i, rung in enumerate(self.schedule.bracket(b)):
            level = self.levels[rung.level]
            cont = None
            if prev is None and first_cycle:
                points = torch.rand(rung.size, self.dim, generator=self.gen, dtype=torch.float64)
            elif first_cycle:
                cont = best_rows(prev.fitness, rung.size)
                points = prev.points[cont]
            else:  # parents: this level's members, or the best of the level below (after its selection)
                below = self.levels[rung.level - 1] if prev is not None else level
                pool = below.population[best_rows(below.fitness, rung.size)] if prev is not None else level.population
                tgt = level.targets(rung.size)
                points = level.novel(self._mutants(pool, level.population[tgt], level), self.gen)
            call = self._evaluate(b, i, rung.budget, points, cont, prev.budget if prev is not None else 0.0)
            level.evaluated.update(tuple(p) for p in points.tolist())
            if first_cycle:
                level.add(points, call.fitness)
            else:
                self._select(level, tgt, points, call.fitness)
            prev = call
            if self.callback is not None and self.callback(call):
                return True
        return False

    def _select(self, level: Level, targets: torch.Tensor, trials: torch.Tensor, fitness: torch.Tensor) -> None:
        if fitness.dim() == 1:  # DE's one-to-one greedy selection
            better = torch.nan_to_num(fitness, nan=float("inf")) <= torch.nan_to_num(level.fitness[targets],
                                                                                      nan=float("inf"))
            level.population[targets[better]] = trials[better]
            level.fitness[targets[better]] = fitness[better]
            return
        level.add(trials, fitness)  # MO-DEHB: the level's members and the trials ranked together

    def solve(self) -> OptimizeResult:
        """Run the brackets; the result's ``x`` / ``fun`` are the best at the top budget (for a
        multi-objective fitness, ``front`` / ``front_fun`` its non-dominated set there)."""
        t0 = time.perf_counter()
        stopped = False
        for b in range(self.brackets):
            if self.run_bracket(b):
                stopped = True
                break
        return self.result(stopped, time.perf_counter() - t0)

    def result(self, stopped: bool, seconds: float) -> OptimizeResult:
        top = [c for c in self.calls if c.budget == self.schedule.budgets[-1]] or self.calls
        pts = torch.cat([c.points for c in top])
        fit = torch.cat([c.fitness for c in top])
        x_unit = lambda u: self.bounds[:, 0] + u * (self.bounds[:, 1] - self.bounds[:, 0])
        res = OptimizeResult(nit=len({c.bracket for c in self.calls}), nfev=sum(len(c.points) for c in self.calls),
                             budget=self.spent, success=not stopped, seconds=seconds,
                             message="callback function requested stop early" if stopped else
                             f"Ran {self.brackets} bracket(s).")
        if fit.dim() == 1:
            i = int(best_rows(fit, 1)[0])
            res.x, res.fun = x_unit(pts[i]).numpy(), float(fit[i])
        else:
            nd = non_dominated(torch.nan_to_num(fit, nan=float("inf")).numpy())
            res.front, res.front_fun = x_unit(pts[nd]).numpy(), fit[nd].numpy()
            res.x, res.fun = res.front[0], res.front_fun[0]
        return res
