"""The search's problem, the function an optimiser minimises: it evaluates a generation, writes it to
the run directory, and replays the logged generations of a resumed run."""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

import torch

from evostyle.errors import EvostyleError
from evostyle.rundir import files

if TYPE_CHECKING:  # annotations only
    from collections.abc import Sequence

    from evostyle.progress import Hooks
    from evostyle.rundir.result import Generation
    from evostyle.rundir.rundir import RunDir
    from evostyle.search.evaluator import Evaluator
    from evostyle.search.signals import StopSignals

logger = logging.getLogger("evostyle")


class SearchProblem:
    """What an optimiser minimises: the evaluator, with every generation written to the run directory.

    Called with a (P, D) unit-cube population it returns the values of ``objective`` (a name in
    :data:`~evostyle.search.scoring.OBJECTIVES`): (P,) fitness for ``scalar``, (P, 2) (quality,
    -diversity) for ``pareto``. It keeps the best row and the front of everything evaluated, and
    replays the generations a resumed run already logged (``cached`` rows) instead of evaluating them.
    After each generation, ``generations.csv`` gets the hypervolume of the front of all candidates
    evaluated so far against ``reference`` (quality, -diversity), whichever the objective, so
    searches of either kind compare at equal budgets. ``hooks`` hear each phase and generation.
    """

    def __init__(
        self,
        evaluator: Evaluator,
        rundir: RunDir,
        cached: list[dict],
        objective: str = "scalar",
        reference: Sequence[float] = (math.inf, 0.0),
        save_images: str = "all",
        signals: StopSignals | None = None,
        hooks: Hooks | None = None,
    ):
        from evostyle.progress import Hooks
        from evostyle.search.signals import StopSignals
        self.ev, self.rundir, self.out = evaluator, rundir, rundir.path
        self.signals = signals if signals is not None else StopSignals()  # not installed: never fires
        self.hooks = hooks if hooks is not None else Hooks()
        from evostyle.search.scoring import OBJECTIVES
        self.objective = OBJECTIVES.get(objective)
        self.reference, self.save_images = tuple(float(r) for r in reference), save_images
        self.generation = 0
        self.cached = {}
        for r in cached:
            self.cached.setdefault(int(r["generation"]), []).append(r)
        self.best_fitness, self.best_row = math.inf, None
        self.rows: list[dict] = []  # every candidate row, in order
        self.points = torch.zeros(0, 2, dtype=torch.float64)  # their objectives (quality, -diversity)
        for g in sorted(self.cached):
            self._track(sorted(self.cached[g], key=lambda r: int(r["candidate"])))
        self.nfev = sum(len(v) for v in self.cached.values())
        self.t0 = time.perf_counter()
        self.replayed = 0
        self._last: Generation | None = None
        # wall seconds of the generations evaluated in this process, by part (see Evaluation.phases;
        # "logging" is writing the CSV rows, images and state after each)
        self.phase_seconds = {"targets": 0.0, "transfer": 0.0, "scoring": 0.0, "logging": 0.0}

    def _terms(self, rows) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Logged rows as scoring terms {column: (P,) float64} and their (P,) failed flags (the CSV's
        repr floats read back bit-exactly)."""
        cols = [c for c in self.ev.columns if c.startswith(("loss_", "fidelity", "diversity_"))]
        terms = {c: torch.tensor([float(r[c]) for r in rows], dtype=torch.float64) for c in cols}
        return terms, torch.tensor([str(r["failed"]).lower() == "true" for r in rows])

    def _objectives(self, rows) -> torch.Tensor:
        """(P, 2) Pareto objectives of logged rows, for the front and its hypervolume."""
        from evostyle.search.scoring import objectives
        return objectives(*self._terms(rows), self.ev.score)

    def _track(self, rows) -> bool:
        """Add a generation's rows to the best row and the front's points; True if the best improved."""
        improved = False
        for r in rows:
            f = float(r["fitness"])
            if f < self.best_fitness or self.best_row is None:  # all-failed runs still have a "best" row
                self.best_fitness, self.best_row, improved = f, dict(r), True
        self.rows += [dict(r) for r in rows]
        self.points = torch.cat([self.points, self._objectives(rows)])
        return improved

    def last_generation(self) -> Generation:
        """A :class:`~evostyle.rundir.result.Generation` for the newest generation, as of that
        generation (a replayed one too), for a callback."""
        from evostyle.de.pareto import front_and_hypervolume
        from evostyle.rundir.result import Generation
        g = self.generation - 1
        if self._last is not None and self._last.generation == g:  # the hooks and a callback ask alike
            return self._last
        upto = [i for i, r in enumerate(self.rows) if int(r["generation"]) <= g]
        best = min((self.rows[i] for i in upto), key=lambda r: float(r["fitness"]))
        idx, hv = front_and_hypervolume(self.points[upto], self.reference)
        self._last = Generation(g, len(upto), float(best["fitness"]), dict(best), hv, len(idx),
                                [r for r in self.rows if int(r["generation"]) == g])
        return self._last

    def front(self) -> tuple[list[dict], float]:
        """(rows of the non-dominated candidates among all evaluated, their hypervolume)."""
        from evostyle.de.pareto import front_and_hypervolume
        idx, hv = front_and_hypervolume(self.points, self.reference)
        return [self.rows[i] for i in idx], hv

    def _replay(self, g: int, unit: torch.Tensor) -> torch.Tensor:
        rows = sorted(self.cached[g], key=lambda r: int(r["candidate"]))
        values = self.ev.space.to_values(unit)
        if len(rows) != unit.shape[0]:
            raise EvostyleError(f"{self.out / files.CANDIDATES} has {len(rows)} rows for generation {g} of "
                                f"{unit.shape[0]} candidates (truncated or edited?); restore it or start a new run")
        for name, v in values.items():
            logged = torch.tensor([float(r[f"param_{name}"]) for r in rows], dtype=torch.float64)
            if not torch.allclose(logged, v, rtol=1e-9, atol=1e-12):
                raise EvostyleError(f"resume diverged at generation {g} (parameter {name} in "
                                    f"{self.out / files.CANDIDATES}); the run's settings or library versions "
                                    "changed: start a new run")
        self.replayed += 1
        return self.objective.values(*self._terms(rows), self.ev.score)

    def __call__(self, unit: torch.Tensor) -> torch.Tensor:
        g = self.generation
        if g in self.cached:
            out = self._replay(g, unit)
        else:
            out = self._evaluate(g, unit)
        self.generation += 1
        if self.hooks.on_generation:
            self.hooks.generation(self.last_generation())
        self.signals.check()  # a first Ctrl-C stops here, after the generation is written
        return out

    def _images(self, g: int, ev, gen_best: int, on_front: set[int]) -> dict[str, torch.Tensor]:
        """This generation's outputs to keep, by file name: all, or its best and the front members."""
        keep = range(ev.fitness.shape[0]) if self.save_images == "all" else sorted({gen_best} | on_front)
        return {files.candidate_image(g, c, k): ev.images[c, k] for c in keep for k in range(self.ev.k)}

    def _evaluate(self, g: int, unit: torch.Tensor) -> torch.Tensor:
        self.hooks.phase(f"generation {g}: transfer")
        ev = self.ev.evaluate(unit)
        self.hooks.phase(f"generation {g}: writing")
        with self.signals.critical():  # the generation's files are written whole or not at all
            self._log(g, ev)
        return self.objective.values(ev.terms, ev.failed, self.ev.score)

    def _log(self, g: int, ev) -> None:
        """Write generation ``g``: its images, the best's outputs if it improved, its rows, the state."""
        t_log = time.perf_counter()
        p = ev.fitness.shape[0]
        per = ev.seconds / p
        rows = [{"generation": g, "candidate": i, **ev.row(i), files.SECONDS_COLUMN: per} for i in range(p)]
        improved = self._track(rows)
        front, hv = self.front()
        on_front = {int(r["candidate"]) for r in front if int(r["generation"]) == g}
        finite = ev.fitness[torch.isfinite(ev.fitness)]
        gi = int(torch.argmin(ev.fitness))
        gen_row = {"generation": g, "best_fitness": self.best_fitness,
                   "gen_best": float(ev.fitness[gi]),
                   "gen_mean": float(finite.mean()) if finite.numel() else math.inf,
                   "gen_std": float(finite.std()) if finite.numel() > 1 else math.nan,  # ddof 1, as pandas
                   "n_failed": int(ev.failed.sum()), "nfev": self.nfev + p, "hypervolume": hv,
                   "front_size": len(front), "elapsed": time.perf_counter() - self.t0,
                   "eval_seconds": ev.seconds, "chunk_size": ev.chunk_size}
        bi = int(self.best_row["candidate"])
        best = (self.best_row, [ev.images[bi, k] for k in range(self.ev.k)]) if improved else None
        self.rundir.write_generation(rows, gen_row, self._images(g, ev, gi, on_front), best,
                                     [{"generation": g, **e} for e in ev.events])
        self.nfev += p
        for part, sec in ev.phases.items():
            self.phase_seconds[part] = self.phase_seconds.get(part, 0.0) + sec
        self.phase_seconds["logging"] += time.perf_counter() - t_log
        for m in ev.log:  # out-of-memory retries, a torch.compile fallback
            logger.warning("generation %d: %s", g, m)
