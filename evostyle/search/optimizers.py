"""The outer loop of a search: a registry of optimisers, each owning its checks and its solve.

An optimiser minimises the search's problem over the unit cube [0, 1]^D: called with a (P, D) float64
population it returns (P,) values for a scalar objective or (P, M) for a multi-objective one (the
problem evaluates, logs and saves the generation; see :class:`~evostyle.search.problem.SearchProblem`).
It starts from the (P, D) ``init`` the search gives every optimiser alike, makes one batched call per
generation, ``maxiter`` generations after the first, calls ``callback(intermediate_result)`` after
each generation after the first (a true return stops it) and returns a scipy ``OptimizeResult``
with at least ``nit``, ``success`` and ``message``.

To add one, subclass :class:`Optimizer` and register it; ``--optimizer NAME`` then runs it::

    from evostyle.search import OPTIMIZERS, Optimizer

    @OPTIMIZERS.register("my-es")
    class MyES(Optimizer):
        multi_objective = False
        def solve(self, problem, init, device, callback=None):
            ...   # one problem(pop) per generation; stop when callback(intermediate_result) is true
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from evostyle.errors import EvostyleError, flag
from evostyle.registry import Registry

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

    import torch
    from scipy.optimize import OptimizeResult

    from evostyle.search.settings import SearchConfig


logger = logging.getLogger("evostyle")


class Optimizer:
    """An outer loop for ``cfg`` (made once per search, after :meth:`check` passed)."""

    multi_objective = False
    """Whether it can minimise a multi-objective ``objective`` (values (P, M)); an optimiser that
    can must say so, else ``--objective pareto`` is refused before anything is written."""
    multi_fidelity = False
    """Whether it calls the problem with fewer transfer steps and continued transfers
    (:class:`~evostyle.search.problem.SearchProblem`); its runs' rows then carry ``steps`` columns
    and only full transfers count."""
    unused: tuple[str, ...] = ()
    """The de settings it does not read (a resume does not hold its generations to ``maxiter`` if
    that is one of them)."""

    @classmethod
    def check(cls, cfg: SearchConfig) -> None:
        """Refuse, in one line, settings it cannot run (called by the config's validation, after the
        de section's own rules, before anything is loaded or written). The base checks the
        objective's kind."""
        from evostyle.search.scoring import OBJECTIVES
        if not cls.multi_fidelity and (cfg.de.min_steps is not None or cfg.de.brackets is not None):
            raise EvostyleError(f"min-steps and brackets set a multi-fidelity search; {cfg.de.optimizer} runs every "
                                f"transfer in full: drop them or use {flag('optimizer', 'dehb')}")
        if OBJECTIVES.get(cfg.de.objective).multi and not cls.multi_objective:
            multi = [n for n, o in OPTIMIZERS.items() if o.multi_objective]
            raise EvostyleError(f"{cfg.de.optimizer} has no multi-objective mode; use "
                                f"{' or '.join(flag('optimizer', m) for m in multi)} with "
                                f"{flag('objective', cfg.de.objective)}")

    def __init__(self, cfg: SearchConfig):
        self.cfg = cfg

    @property
    def multi(self) -> bool:
        """Whether this search's objective has several values per candidate."""
        from evostyle.search.scoring import OBJECTIVES
        return OBJECTIVES.get(self.cfg.de.objective).multi

    def strategy(self) -> str | None:
        """The DE strategy it runs (recorded in the plan and the summary); None: it has none."""
        return None

    def solve(self, problem: Callable[[torch.Tensor], torch.Tensor], init: torch.Tensor, device: torch.device,
              callback: Callable | None = None) -> OptimizeResult:
        raise NotImplementedError


OPTIMIZERS: Registry[type[Optimizer]] = Registry("optimizer")


def _bounds(init: torch.Tensor) -> list[tuple[float, float]]:
    return [(0.0, 1.0)] * init.shape[1]


class _DEFamily(Optimizer):
    """The differential-evolution optimisers' settings: strategy (``auto``: best1bin, rand1bin for a
    multi-objective search), F, CR, the boundary repair, and a population the strategy can use."""

    @classmethod
    def strategies(cls) -> tuple[str, ...] | None:
        """The strategies it takes (None: every DE strategy)."""
        return None

    multi_objective = True

    @classmethod
    def check(cls, cfg: SearchConfig) -> None:
        from evostyle.de import DEVariation
        super().check(cfg)
        strategy, allowed = cls(cfg).strategy(), cls.strategies()
        if allowed is not None and strategy not in allowed:
            raise EvostyleError(f"objective {cfg.de.objective!r} runs GDE3, which takes strategy "
                                f"{', '.join(allowed)}; got {cfg.de.strategy!r}")
        need = DEVariation(strategy).min_population
        if cfg.de.population < need:
            raise EvostyleError(f"population {cfg.de.population} is too small for strategy {strategy!r}: it needs "
                                f"at least {need} members; raise {flag('population')}")

    def strategy(self) -> str:
        if self.cfg.de.strategy != "auto":
            return self.cfg.de.strategy
        return "rand1bin" if self.multi else "best1bin"

    def _settings(self) -> dict:
        de = self.cfg.de
        return dict(strategy=self.strategy(), maxiter=de.maxiter, recombination=de.recombination,
                    mutation=tuple(de.mutation) if isinstance(de.mutation, list) else de.mutation,
                    seed=self.cfg.run.seed)


class GDE3Optimizer(_DEFamily):
    """GDE3 (Kukkonen & Lampinen 2005): multi-objective DE with a ``rand`` strategy."""

    @classmethod
    def strategies(cls) -> tuple[str, ...]:
        from evostyle.de import GDE3_STRATEGIES
        return GDE3_STRATEGIES

    @classmethod
    def check(cls, cfg: SearchConfig) -> None:
        if not cls(cfg).multi:
            raise EvostyleError(f"gde3 minimises several objectives; use {flag('objective', 'pareto')}, or "
                                f"{flag('optimizer', 'torch-de')} for objective {cfg.de.objective!r}")
        super().check(cfg)

    def solve(self, problem, init, device, callback=None):
        from evostyle.de import GDE3
        return GDE3(problem, _bounds(init), init=init, boundary=self.cfg.de.boundary, device=device,
                    callback=callback, **self._settings()).solve()


class TorchDE(_DEFamily):
    """evostyle's torch-batched DE (scipy's rules, :class:`~evostyle.de.DifferentialEvolution`); for a
    multi-objective ``objective`` it runs :class:`GDE3Optimizer`."""

    @classmethod
    def check(cls, cfg: SearchConfig) -> None:
        if cls(cfg).multi:
            return GDE3Optimizer.check(cfg)
        super().check(cfg)

    def solve(self, problem, init, device, callback=None):
        from evostyle.de import DifferentialEvolution
        if self.multi:
            return GDE3Optimizer(self.cfg).solve(problem, init, device, callback)
        de = self.cfg.de
        return DifferentialEvolution(problem, _bounds(init), init=init, tol=de.tol, atol=de.atol, boundary=de.boundary,
                                     device=device, callback=callback, **self._settings()).solve()


class ScipyDE(_DEFamily):
    """``scipy.optimize.differential_evolution`` on the same batched problem (scalar objectives,
    scipy's out-of-bounds resampling)."""

    multi_objective = False

    @classmethod
    def check(cls, cfg: SearchConfig) -> None:
        super().check(cfg)
        if cfg.de.boundary != "resample":
            raise EvostyleError("scipy-de only supports boundary 'resample'")

    def solve(self, problem, init, device, callback=None):
        from evostyle.de import scipy_differential_evolution
        de = self.cfg.de
        return scipy_differential_evolution(problem, _bounds(init), init=init.numpy(), tol=de.tol, atol=de.atol,
                                            callback=callback, **self._settings())


class Random(Optimizer):
    """Random search at the same budget (the baseline): the initial population, then uniform draws."""

    multi_objective = True

    def solve(self, problem, init, device, callback=None):
        from evostyle.de import RandomSearch
        return RandomSearch(problem, _bounds(init), maxiter=self.cfg.de.maxiter, init=init, seed=self.cfg.run.seed,
                            device=device, callback=callback).solve()


def _ladder(cfg: SearchConfig) -> tuple[int, ...]:
    """The coarser scales of the search's transfers (empty: one scale, ``--scales`` naming only
    ``--size`` included)."""
    from evostyle.transfer.engine import coarse_scales
    return coarse_scales(cfg.transfer.scales, cfg.transfer.size)


MIN_STEPS_SHARE = 0.25
"""DEHB's lowest budget when ``min_steps`` is not set, as a share of the steps: the shortest transfer
whose fidelity and diversity rank candidates as the full one does (results/fidelity_correlation; a
tenth of the steps, DEHB's usual max / eta^2, does not)."""


class DEHBOptimizer(Optimizer):
    """DEHB (:class:`~evostyle.de.dehb.DEHB`): multi-fidelity DE over the transfer's steps, from
    ``min_steps`` to ``steps`` in budget levels eta apart; a promoted candidate's transfer continues
    where the rung below left it. With ``scales`` the budget levels are the coarse-to-fine ladder's
    scales instead: a rung's transfers stop where a scale ends and are scored at that scale, and a
    promotion continues them at the next (neural-style's multires recipe as a fidelity). Its budget is
    ``brackets`` (population and maxiter do not apply); a multi-objective ``objective`` is ranked as
    MO-DEHB ranks it."""

    multi_objective = True
    multi_fidelity = True
    unused = ("population", "maxiter", "init", "strategy")  # its brackets set its subpopulations and budget

    @classmethod
    def check(cls, cfg: SearchConfig) -> None:
        super().check(cfg)
        de, steps = cfg.de, cfg.transfer.steps
        if not de.eta > 1:
            raise EvostyleError(f"eta must be above 1 (the factor between budget levels), got {de.eta}")
        if de.min_steps is not None and de.min_steps > steps:
            raise EvostyleError(f"min-steps {de.min_steps} is more than steps {steps}; lower it or raise "
                                f"{flag('steps')}")
        if _ladder(cfg) and de.min_steps is not None:
            raise EvostyleError(f"with {flag('scales')} dehb's budget levels are the scales: drop "
                                f"{flag('min_steps')}, or drop {flag('scales')} to have levels over the steps")
        from evostyle.search.settings import DESection
        default = DESection()
        unused = [n for n in cls.unused if getattr(de, n) != getattr(default, n)]
        if unused:  # said, not refused: one config is often run under several optimisers (experiments)
            logger.warning("dehb sizes its subpopulations and its budget from the brackets and runs rand1bin: "
                           "%s %s not used", ", ".join(unused), "is" if len(unused) == 1 else "are")

    def schedule(self):
        """The :class:`~evostyle.de.schedule.Schedule` of this search's transfer steps: eta apart from
        ``min_steps``, or, with ``scales``, the steps at which each scale of the ladder ends."""
        from evostyle.de.schedule import Schedule
        from evostyle.transfer.engine import ladder_ends
        de, tr, ladder = self.cfg.de, self.cfg.transfer, _ladder(self.cfg)
        if ladder:
            return Schedule.over(ladder_ends(tr.steps, len(ladder) + 1), de.eta)
        low = de.min_steps if de.min_steps is not None else max(1, round(tr.steps * MIN_STEPS_SHARE))
        return Schedule(low, tr.steps, de.eta)

    def strategy(self) -> str:
        return "rand1bin"

    def solve(self, problem, init, device, callback=None):
        from evostyle.de.dehb import DEHB
        de = self.cfg.de
        schedule = self.schedule()
        func = lambda unit, budget, cont: problem(unit, steps=int(budget), continue_from=cont)
        return DEHB(func, _bounds(init), schedule.min_budget, schedule.max_budget, schedule.eta,
                    levels=schedule.given or None, brackets=de.brackets or schedule.levels,
                    mutation=0.5 if isinstance(de.mutation, list) else de.mutation, recombination=de.recombination,
                    boundary=de.boundary, seed=self.cfg.run.seed, device=device, callback=callback).solve()


for _name, _cls in (("torch-de", TorchDE), ("gde3", GDE3Optimizer), ("scipy-de", ScipyDE), ("random", Random),
                    ("dehb", DEHBOptimizer)):
    OPTIMIZERS.register(_name, _cls)  # in this order in --help and messages; torch-de is the default
