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
    :data:`~evostyle.search.scoring.OBJECTIVES`): (P,) fitness for ``scalar``, (P, 2) (fidelity,
    -diversity) for ``pareto``. It keeps the best row and the front of everything evaluated, and
    replays the generations a resumed run already logged (``cached`` rows) instead of evaluating them.
    After each generation, ``generations.csv`` gets the hypervolume of the front of all candidates
    evaluated so far against ``reference`` (fidelity, -diversity), whichever the objective, so
    searches of either kind compare at equal budgets. ``hooks`` hear each phase and generation.

    A multi-fidelity optimiser (``full_steps``, the config's transfer steps) calls it with ``steps``
    (fewer transfer steps) and ``continue_from`` (the candidates of its previous call that each row
    carries on, instead of starting over); its rows get the ``steps`` and ``steps_run`` columns, and
    only rows at ``full_steps`` count for the best row, the front and the hypervolume. Each call's
    transfers are kept in the run directory, so that a resumed run continues them.
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
        full_steps: int | None = None,
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
        self.full_steps = full_steps
        self._state = None  # (generation, TransferState) of the last call, for a multi-fidelity optimiser
        self.cached = {}
        for r in cached:
            self.cached.setdefault(int(r["generation"]), []).append(r)
        self.best_fitness, self.best_row = math.inf, None
        self.rows: list[dict] = []  # every candidate row, in order
        self.scored: list[int] = []  # the rows that count (at full fidelity), indices into rows
        self.points = torch.zeros(0, 2, dtype=torch.float64)  # their objectives (fidelity, -diversity)
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

    def counts(self, row: dict) -> bool:
        """Whether a row counts for the best, the front and the hypervolume: every row, or in a
        multi-fidelity search those whose transfer ran every step."""
        return self.full_steps is None or int(row["steps"]) == self.full_steps

    def _track(self, rows) -> bool:
        """Add a generation's rows to the best row and the front's points; True if the best improved."""
        improved = False
        full = [dict(r) for r in rows if self.counts(r)]
        for r in full:
            f = float(r["fitness"])
            if f < self.best_fitness or self.best_row is None:  # all-failed runs still have a "best" row
                self.best_fitness, self.best_row, improved = f, dict(r), True
        first = len(self.rows)
        self.scored += [first + i for i, r in enumerate(rows) if self.counts(r)]
        self.rows += [dict(r) for r in rows]
        if full:
            self.points = torch.cat([self.points, self._objectives(full)])
        return improved

    def last_generation(self) -> Generation:
        """A :class:`~evostyle.rundir.result.Generation` for the newest generation, as of that
        generation (a replayed one too), for a callback."""
        from evostyle.de.pareto import front_and_hypervolume
        from evostyle.rundir.result import Generation
        g = self.generation - 1
        if self._last is not None and self._last.generation == g:  # the hooks and a callback ask alike
            return self._last
        upto = [j for j, i in enumerate(self.scored) if int(self.rows[i]["generation"]) <= g]
        if upto:
            best = min((self.rows[self.scored[j]] for j in upto), key=lambda r: float(r["fitness"]))
            idx, hv = front_and_hypervolume(self.points[upto], self.reference)
        else:  # a multi-fidelity search before its first full transfer: nothing counts yet
            best, idx, hv = {"fitness": math.inf}, [], 0.0
        nfev = sum(int(r["generation"]) <= g for r in self.rows)
        self._last = Generation(g, nfev, float(best["fitness"]), dict(best), hv, len(idx),
                                [r for r in self.rows if int(r["generation"]) == g])
        return self._last

    def front(self) -> tuple[list[dict], float]:
        """(rows of the non-dominated candidates among all evaluated, their hypervolume)."""
        from evostyle.de.pareto import front_and_hypervolume
        idx, hv = front_and_hypervolume(self.points, self.reference)
        return [self.rows[self.scored[i]] for i in idx], hv

    def _replay(self, g: int, unit: torch.Tensor, steps: int | None) -> torch.Tensor:
        rows = sorted(self.cached[g], key=lambda r: int(r["candidate"]))
        if self.full_steps is not None and any(int(r["steps"]) != (steps or self.full_steps) for r in rows):
            raise EvostyleError(f"resume diverged at generation {g} (steps in {self.out / files.CANDIDATES}); the "
                                "run's settings or library versions changed: start a new run")
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

    def __call__(self, unit: torch.Tensor, steps: int | None = None,
                 continue_from: torch.Tensor | None = None) -> torch.Tensor:
        """The objective values of a (P, D) unit-cube population; ``steps`` / ``continue_from`` as in
        the class docstring (multi-fidelity optimisers only)."""
        if (steps is not None or continue_from is not None) and self.full_steps is None:
            raise EvostyleError("this search was not set up for a multi-fidelity optimiser (full_steps)")
        g = self.generation
        if g in self.cached:
            out = self._replay(g, unit, steps)
        else:
            out = self._evaluate(g, unit, steps, continue_from)
        self.generation += 1
        if self.hooks.on_generation:
            self.hooks.generation(self.last_generation())
        self.signals.check()  # a first Ctrl-C stops here, after the generation is written
        return out

    def _images(self, g: int, ev, gen_best: int, on_front: set[int]) -> dict[str, torch.Tensor]:
        """This generation's outputs to keep, by file name: all, or its best and the front members."""
        keep = range(ev.fitness.shape[0]) if self.save_images == "all" else sorted({gen_best} | on_front)
        return {files.candidate_image(g, c, k): ev.images[c, k] for c in keep for k in range(self.ev.k)}

    def _fidelity(self, g: int, steps: int | None, continue_from: torch.Tensor | None):
        """(Fidelity, steps in all, steps this evaluation runs) of generation ``g``; None fidelity
        outside a multi-fidelity search."""
        from evostyle.search.evaluator import Fidelity
        if self.full_steps is None:
            return None, None, None
        total = int(steps if steps is not None else self.full_steps)
        if continue_from is None:
            return Fidelity(total, None, True), total, total
        prev = self._state if self._state is not None and self._state[0] == g - 1 else None
        if prev is None:  # a resumed run: the last logged generation's transfers, as they were kept
            state = self.rundir.transfer_state(g - 1)
            prev = None if state is None else (g - 1, state)
        if prev is None:
            raise EvostyleError(f"generation {g} continues generation {g - 1}'s transfers, which "
                                f"{self.out / files.transfer_state(g - 1)} should hold (removed?); start a new run")
        k = self.ev.k
        rows = (torch.as_tensor(continue_from, dtype=torch.long)[:, None] * k + torch.arange(k)).reshape(-1)
        start = prev[1].rows(rows)
        done = int(start.steps[0])
        if not (start.steps == done).all() or total <= done:
            raise EvostyleError(f"generation {g}: rows at steps {sorted(set(start.steps.tolist()))} cannot continue "
                                f"to {total} steps")
        return Fidelity(total - done, start, True), total, total - done

    def _fidelity_columns(self, total: int, ran: int) -> dict:
        """A multi-fidelity row's own columns (:data:`~evostyle.rundir.files.FIDELITY_COLUMNS`, and the
        scale its transfer stopped at on a coarse-to-fine ladder)."""
        cols = dict(zip(files.FIDELITY_COLUMNS, (total, ran)))
        eng = self.ev.engine
        if eng.levels:
            cols[files.SCALE_COLUMN] = eng.scale_after(total)
        return cols

    def _evaluate(self, g: int, unit: torch.Tensor, steps: int | None = None,
                  continue_from: torch.Tensor | None = None) -> torch.Tensor:
        fidelity, total, ran = self._fidelity(g, steps, continue_from)
        self.hooks.phase(f"generation {g}: transfer" + (f" ({ran} steps)" if ran is not None else ""))
        ev = self.ev.evaluate(unit, fidelity)
        self.hooks.phase(f"generation {g}: writing")
        with self.signals.critical():  # the generation's files are written whole or not at all
            if fidelity is not None:
                self._state = (g, ev.state)
                self.rundir.write_transfer_state(g, ev.state)
            self._log(g, ev, {} if total is None else self._fidelity_columns(total, ran))
            if fidelity is not None:
                self.rundir.drop_transfer_states(before=g)
        return self.objective.values(ev.terms, ev.failed, self.ev.score)

    def _log(self, g: int, ev, fidelity: dict) -> None:
        """Write generation ``g``: its images, the best's outputs if it improved, its rows (with the
        ``fidelity`` columns of a multi-fidelity search), the state."""
        t_log = time.perf_counter()
        p = ev.fitness.shape[0]
        per = ev.seconds / p
        rows = [{"generation": g, "candidate": i, **fidelity, **ev.row(i), files.SECONDS_COLUMN: per}
                for i in range(p)]
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
        best = None
        if improved:
            bi = int(self.best_row["candidate"])
            best = (self.best_row, [ev.images[bi, k] for k in range(self.ev.k)])
        self.rundir.write_generation(rows, gen_row, self._images(g, ev, gi, on_front), best,
                                     [{"generation": g, **e} for e in ev.events])
        self.nfev += p
        for part, sec in ev.phases.items():
            self.phase_seconds[part] = self.phase_seconds.get(part, 0.0) + sec
        self.phase_seconds["logging"] += time.perf_counter() - t_log
        for m in ev.log:  # out-of-memory retries, a torch.compile fallback
            logger.warning("generation %d: %s", g, m)
