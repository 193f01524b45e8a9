"""The baselines a reviewer expects beside DE, behind ``--optimizer`` on the same space, budget and CSV
schema: quasi-random ``sobol`` search, and Optuna's multi-objective ``tpe`` and ``nsga2`` (optional:
``pip install 'evostyle[optuna]'``).

Each is :class:`~evostyle.de.RandomSearch` with another sampler: it starts from the search's shared
initial population (generation 0, as DE and random search do, so all spend their first evaluations
alike), keeps every point, and draws P points per generation for one batched problem call; Optuna's
samplers by ask-and-tell, a batch of P asks before the P tells. With the run's seed every proposal is
reproducible, so a resumed run replays its logged generations and goes on exactly.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING

import torch

from evostyle.errors import EvostyleError, flag
from evostyle.search.optimizers import OPTIMIZERS, Optimizer

if TYPE_CHECKING:  # annotations only

    from evostyle.search.settings import SearchConfig


class SamplingOptimizer(Optimizer):
    """Random search (:class:`~evostyle.de.RandomSearch`: the shared start as generation 0, every point
    kept, the loop, callback and result of :mod:`evostyle.de`) with another sampler for the later
    generations, made by :meth:`sampling`."""

    multi_objective = True

    def sampling(self):
        """The variation that draws each later generation (see :class:`~evostyle.de.base.Variation`)."""
        raise NotImplementedError

    def solve(self, problem, init, device, callback=None):
        from evostyle.de import RandomSearch
        return RandomSearch(problem, [(0.0, 1.0)] * init.shape[1], maxiter=self.cfg.de.maxiter, init=init,
                            seed=self.cfg.run.seed, device=device, callback=callback,
                            sampling=self.sampling()).solve()


class SobolSampling:
    """The points of one scrambled Sobol sequence (Sobol 1967; Owen's scrambling), seeded by the run's
    seed, P per generation: they cover the cube more evenly than uniform draws at the same budget."""

    label = "Sobol sampling"

    def __init__(self, seed: int):
        self.seed, self.engine = int(seed), None

    def __call__(self, opt) -> torch.Tensor:
        if self.engine is None:
            self.engine = torch.quasirandom.SobolEngine(opt.dim, scramble=True, seed=self.seed)
        return self.engine.draw(opt.size, dtype=torch.float64).to(opt.device)


class Sobol(SamplingOptimizer):
    """Quasi-random search: after the shared initial population, the points of a scrambled Sobol
    sequence."""

    def sampling(self):
        return SobolSampling(self.cfg.run.seed)


@contextlib.contextmanager
def _optuna_quiet():
    """Optuna logs every told trial at INFO on its own handler: quiet it while the search asks and
    tells, then give back the caller's level (``set_verbosity`` is process-wide, and a notebook's own
    studies keep theirs)."""
    import optuna
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(before, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


class OptunaSampling:
    """One of Optuna's samplers over the unit cube by ask-and-tell (each coordinate an ``x<j>``
    FloatDistribution(0, 1)), as a variation: each call first tells the trials it asked last time the
    values the search gave them (the archive's last rows; the first call enqueues and tells the shared
    initial population), then asks P new ones. Values are minimised, (fidelity, -diversity) for
    ``pareto``; a candidate whose values are not finite is told as a failed trial."""

    label = "Optuna sampling"

    def __init__(self, sampler, objectives: int):
        self.sampler, self.objectives, self.study = sampler, objectives, None

    def _start(self, opt) -> None:
        import optuna
        self.names = [f"x{j}" for j in range(opt.dim)]
        self.space = {n: optuna.distributions.FloatDistribution(0.0, 1.0) for n in self.names}
        self.study = optuna.create_study(directions=["minimize"] * self.objectives, sampler=self.sampler)
        for row in opt.population.cpu().tolist():  # generation 0 is the shared init: enqueued, so the asks
            self.study.enqueue_trial(dict(zip(self.names, row)))  # return it
        self.asked = [self.study.ask(self.space) for _ in range(opt.size)]
        if hasattr(self.sampler, "get_trial_generation"):  # a genetic sampler (NSGA-II) numbers its
            trials = self.study.get_trials(deepcopy=False)  # generations when it samples, which an enqueued
            for t in self.asked:  # trial skips: without a number the initial population is not generation 0
                self.sampler.get_trial_generation(self.study, trials[t.number])

    def __call__(self, opt) -> torch.Tensor:
        from optuna.trial import TrialState
        with _optuna_quiet():
            if self.study is None:
                self._start(opt)
            values = opt.fitness[-len(self.asked):].reshape(len(self.asked), -1).cpu().tolist()
            for trial, v in zip(self.asked, values):
                if all(math.isfinite(x) for x in v):
                    self.study.tell(trial, v)
                else:
                    self.study.tell(trial, state=TrialState.FAIL)
            self.asked = [self.study.ask(self.space) for _ in range(opt.size)]
        return torch.tensor([[t.params[n] for n in self.names] for t in self.asked], dtype=torch.float64,
                            device=opt.device)


class OptunaSampler(SamplingOptimizer):
    """An Optuna sampler (:meth:`sampler`) by :class:`OptunaSampling`."""

    @classmethod
    def check(cls, cfg: SearchConfig) -> None:
        super().check(cfg)
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise EvostyleError(f"{flag('optimizer', cfg.de.optimizer)} needs Optuna: pip install "
                                "'evostyle[optuna]'") from None

    def sampler(self, optuna, p: int):
        raise NotImplementedError

    def sampling(self):
        import optuna
        return OptunaSampling(self.sampler(optuna, self.cfg.de.population), 2 if self.multi else 1)


class TPE(OptunaSampler):
    """Optuna's TPE (Bergstra et al. 2011; multi-objective as Ozaki et al. 2020), multivariate, with
    the constant liar for batches of asks before their tells; the shared initial population is its
    start-up sample."""

    def sampler(self, optuna, p: int):
        return optuna.samplers.TPESampler(seed=self.cfg.run.seed, n_startup_trials=p, multivariate=True,
                                          constant_liar=True)


class NSGA2(OptunaSampler):
    """Optuna's NSGA-II (Deb et al. 2002) with population P: crowded tournament, crossover and mutation
    as Optuna's defaults."""

    def sampler(self, optuna, p: int):
        return optuna.samplers.NSGAIISampler(population_size=p, seed=self.cfg.run.seed)


for _name, _cls in (("sobol", Sobol), ("tpe", TPE), ("nsga2", NSGA2)):
    OPTIMIZERS.register(_name, _cls)
