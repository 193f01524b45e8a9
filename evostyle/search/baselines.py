"""The baselines a reviewer expects beside DE, behind ``--optimizer`` on the same space, budget and CSV
schema: quasi-random ``sobol`` search, and Optuna's multi-objective ``tpe`` and ``nsga2`` (optional:
``pip install 'evostyle[optuna]'``).

Every one starts from the search's shared initial population (generation 0, as DE and random search
do, so all spend their first evaluations alike), then proposes P points per generation and evaluates
them in one batched problem call: Optuna's ask-and-tell with a batch of P asks before the P tells. A
candidate whose objective is not finite (a failed transfer) is told to Optuna as a failed trial.
With the run's seed every proposal is reproducible, so a resumed run replays its logged generations
and goes on exactly.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.optimize import OptimizeResult

from evostyle.errors import EvostyleError
from evostyle.search.optimizers import OPTIMIZERS, Optimizer

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

    from evostyle.search.settings import SearchConfig


class BatchOptimizer(Optimizer):
    """An optimiser that proposes whole generations: generation 0 is ``init``, then
    :meth:`propose` gives each next (P, D) batch and :meth:`observe` hears its values. The loop, the
    callback and the result (best point, or the front of everything evaluated) are shared."""

    multi_objective = True

    def start(self, init: torch.Tensor) -> None:
        """Prepare for a search from ``init`` (P, D) in the unit cube."""

    def propose(self, p: int, d: int) -> torch.Tensor:
        raise NotImplementedError

    def observe(self, batch: torch.Tensor, values: torch.Tensor) -> None:
        """Hear a batch's (P,) or (P, M) values (float64, CPU)."""

    def solve(self, problem: Callable, init: torch.Tensor, device, callback: Callable | None = None) -> OptimizeResult:
        from evostyle.de.pareto import non_dominated
        self.start(init)
        points, values = [init], [_values(problem(init), init.shape[0])]
        self.observe(init, values[0])
        nit, message = 0, "Maximum number of iterations has been exceeded."
        while nit < self.cfg.de.maxiter:
            batch = self.propose(*init.shape).to(torch.float64)
            v = _values(problem(batch), batch.shape[0])
            self.observe(batch, v)
            points.append(batch)
            values.append(v)
            nit += 1
            if callback is not None and callback(OptimizeResult(message="in progress", nit=nit)):
                message = "callback function requested stop early"
                break
        x, f = torch.cat(points).numpy(), torch.cat(values).numpy()
        if f.ndim == 1:
            i = int(np.argmin(f))
            best_x, best_f = x[i].copy(), float(f[i])
        else:
            front = np.flatnonzero(non_dominated(f))
            best_x, best_f = x[front].copy(), f[front].copy()
        return OptimizeResult(x=best_x, fun=best_f, nit=nit, nfev=len(x), success=False, message=message)


def _values(out, p: int) -> torch.Tensor:
    v = torch.as_tensor(np.asarray(out.detach().cpu() if torch.is_tensor(out) else out, dtype=np.float64))
    if v.shape[0] != p:
        raise EvostyleError(f"the problem returned shape {tuple(v.shape)} for {p} candidates")
    return torch.nan_to_num(v, nan=math.inf)


class Sobol(BatchOptimizer):
    """Quasi-random search: after the shared initial population, the points of one scrambled Sobol
    sequence (Sobol 1967; Owen's scrambling, seeded by the run's seed), which cover the cube more
    evenly than uniform draws at the same budget."""

    def start(self, init: torch.Tensor) -> None:
        self.engine = torch.quasirandom.SobolEngine(init.shape[1], scramble=True, seed=self.cfg.run.seed)

    def propose(self, p: int, d: int) -> torch.Tensor:
        return self.engine.draw(p, dtype=torch.float64)


class OptunaSampler(BatchOptimizer):
    """One of Optuna's samplers over the unit cube, by ask-and-tell (each coordinate an
    ``x<j>`` FloatDistribution(0, 1)); the objective's values are minimised, (quality, -diversity)
    for ``pareto``."""

    @classmethod
    def check(cls, cfg: SearchConfig) -> None:
        super().check(cfg)
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise EvostyleError(f"--optimizer {cfg.de.optimizer} needs Optuna: pip install "
                                "'evostyle[optuna]'") from None

    def sampler(self, optuna, p: int):
        raise NotImplementedError

    def start(self, init: torch.Tensor) -> None:
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        p, d = init.shape
        self.names = [f"x{j}" for j in range(d)]
        self.space = {n: optuna.distributions.FloatDistribution(0.0, 1.0) for n in self.names}
        directions = ["minimize"] * (2 if self.multi else 1)
        self.study = optuna.create_study(directions=directions, sampler=self.sampler(optuna, p))
        for row in init.tolist():  # generation 0 is the shared init: enqueued, so the asks return it
            self.study.enqueue_trial(dict(zip(self.names, row)))
        self.asked = [self.study.ask(self.space) for _ in range(p)]
        sampler = self.study.sampler
        if hasattr(sampler, "get_trial_generation"):  # a genetic sampler (NSGA-II) numbers its generations
            trials = self.study.get_trials(deepcopy=False)  # when it samples, which an enqueued trial skips:
            for t in self.asked:  # without a number the initial population is not its generation 0
                sampler.get_trial_generation(self.study, trials[t.number])

    def propose(self, p: int, d: int) -> torch.Tensor:
        self.asked = [self.study.ask(self.space) for _ in range(p)]
        return torch.tensor([[t.params[n] for n in self.names] for t in self.asked], dtype=torch.float64)

    def observe(self, batch: torch.Tensor, values: torch.Tensor) -> None:
        from optuna.trial import TrialState
        for trial, v in zip(self.asked, values.tolist()):
            v = v if isinstance(v, list) else [v]
            if all(math.isfinite(x) for x in v):
                self.study.tell(trial, v)
            else:
                self.study.tell(trial, state=TrialState.FAIL)


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
