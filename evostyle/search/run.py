"""Running a search: :func:`build` (a config's engine, space, evaluator and plan) and the loop that
runs an optimiser over it into a run directory (:func:`run_search`, :func:`resume_search`). The run
directory itself, its files, lock and records, is :mod:`evostyle.rundir`."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import torch

from evostyle.errors import (
    EvostyleError,
    ResourceError,
    Stopped,
    describe,
    flag,
    is_disk_full,
    report_hint,
    resume_hint,
)
from evostyle.progress import Hooks, StepBar, bar
from evostyle.rundir import RunDir, SearchResult, files
from evostyle.rundir.layout import ensure_dir
from evostyle.rundir.lock import RunLock
from evostyle.search.config import RESUME_MAY_CHANGE, SearchConfig, make_config
from evostyle.search.problem import SearchProblem

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

    from evostyle.rundir.result import Generation
    from evostyle.search.evaluator import Evaluator
    from evostyle.search.plan import Plan
    from evostyle.search.space import Space
    from evostyle.transfer.engine import StyleEngine

logger = logging.getLogger("evostyle")


def default_run_dir() -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("results") / f"run-{stamp}-{os.getpid() % 10000:04d}"


class Built(NamedTuple):
    """What :func:`build` makes of a config: the style engine, the parameter space, the evaluator and
    the resolved plan."""

    engine: StyleEngine
    space: Space
    evaluator: Evaluator
    plan: Plan


def build(cfg: SearchConfig, hooks: Hooks | None = None) -> Built:
    """Turn a search config into its engine, space, evaluator and plan (images and network loaded;
    every input error surfaces here, before a run directory exists). Experiments and notebooks use it
    to score candidates of their own choosing with a run's exact settings. ``hooks`` hear the
    evaluator's steps and phases."""
    from evostyle.io.images import image_size
    from evostyle.search.evaluator import Evaluator
    from evostyle.search.plan import make_plan
    from evostyle.search.scoring import ScoreConfig
    from evostyle.search.space import style_space
    from evostyle.transfer.engine import StyleEngine
    from evostyle.transfer.run import rows_that_fit
    inputs = input_paths(cfg)
    content, styles = inputs["content"], [inputs[f"style_{i}"] for i in range(len(cfg.run.style))]
    for path in (content, *styles):
        image_size(path)
    sp, tr, sc = cfg.space, cfg.transfer, cfg.scoring
    space = style_space(sp.outputs, len(cfg.run.style), tr.style_layers, sp.search, sp.rotation_mode, sp.fixed,
                        sp.bounds)
    engine = StyleEngine(content, styles, tr.to_transfer(), size=tr.size, rotation_mode=sp.rotation_mode,
                         shuffle=sp.shuffle, weights=cfg.run.weights, seed=cfg.run.seed, pool=cfg.run.pool,
                         device=cfg.run.device, scales=tr.scales)
    for p in space.params:  # a fixed angle must be one the rotation mode accepts
        if p.group == "angles" and p.value is not None:
            try:
                engine.targets.mode.check_angles([p.value])
            except EvostyleError as exc:
                raise EvostyleError(f"{p.name}: {exc}; fix it with "
                                    f"{flag('fixed', f'{p.name}=VALUE', python={p.name: 'VALUE'})}") from None
    score = ScoreConfig(sc.diversity_metric, sc.diversity_weight, sc.loss_cap, fitness_loss=sc.fitness_loss)
    from evostyle.search.optimizers import OPTIMIZERS
    evaluator = Evaluator(engine, space, sp.outputs, score, noise_seed=cfg.run.seed, hooks=hooks,
                          multi_fidelity=OPTIMIZERS.get(cfg.de.optimizer).multi_fidelity)
    plan = make_plan(cfg, engine, evaluator)
    engine.cfg = dataclasses.replace(engine.cfg, compile=plan.compile)
    rows_that_fit(plan.image_size, engine.cfg, engine.device)  # on the CPU: at least one row fits in memory
    return Built(engine, space, evaluator, plan)


@contextlib.contextmanager
def _executor(cfg: SearchConfig, evaluator: Evaluator):
    """The evaluator on the executor ``cfg`` names for the block (workers start, and show any input
    error, before anything is written; they stop after it, whatever happens)."""
    if cfg.run.executor == "local":
        yield
        return
    from evostyle.search.executors import make_executor
    with make_executor(cfg, evaluator) as executor:
        evaluator.executor = executor
        try:
            yield
        finally:
            evaluator.executor = None


@contextlib.contextmanager
def _state_on_error(rd: RunDir, status_on_error: str | None = "failed"):
    """A run that stops early says so in state.json: ``interrupted`` (with the signal) after a signal,
    ``failed`` with the error after anything else; either can be continued with ``--resume``. A full
    disk becomes a one-line :class:`~evostyle.errors.ResourceError` naming the file and the resume.
    ``status_on_error`` None leaves the state alone (the report, after the run finished)."""
    from evostyle.search.signals import Interrupted
    try:
        yield
    except (Interrupted, KeyboardInterrupt) as exc:
        # a KeyboardInterrupt is a Ctrl-C (or a Stopped) outside the loop's handlers; WorkersLost names
        # its reason, not a signal (its signum is 0)
        signum = getattr(exc, "signum", signal.SIGINT) or signal.SIGINT
        name = exc.name if isinstance(exc, Interrupted) else signal.Signals(signum).name
        if status_on_error is None:  # the run is finished; only its report was cut short
            raise Stopped(signum, f"{rd.path} is finished; its report was not written: rebuild it with "
                                  f"{report_hint(rd.path)}") from None
        with contextlib.suppress(OSError):
            rd.mark("interrupted", signal=name)
        if isinstance(exc, Interrupted):
            raise
        raise Interrupted(signum) from None
    except Exception as exc:
        if status_on_error is not None:
            with contextlib.suppress(OSError):
                rd.mark(status_on_error, error=describe(exc, 300))
        if isinstance(exc, OSError) and is_disk_full(exc):
            then = (f"resume with {resume_hint(rd.path)}" if status_on_error else
                    f"rebuild the report with {report_hint(rd.path)}")
            raise ResourceError(f"no space left on device while writing {exc.filename or 'a file'} in {rd.path}; "
                                f"free some space, then {then}") from None
        raise


def input_names(cfg: SearchConfig) -> dict[str, str]:
    """{role: the input as the config spells it} of every file the run reads: the content, each style
    and the weights when they are a file (not a named source)."""
    from evostyle.network.weights import WEIGHT_SOURCES
    names = {"content": cfg.run.content, **{f"style_{i}": s for i, s in enumerate(cfg.run.style)}}
    if isinstance(cfg.run.weights, str) and cfg.run.weights not in WEIGHT_SOURCES:
        names["weights"] = cfg.run.weights
    return names


def input_paths(cfg: SearchConfig) -> dict[str, str]:
    """{role: file} of :func:`input_names`: what :func:`~evostyle.rundir.record.fingerprints` hashes and
    a resume checks. Bundled samples resolve to their files, so a changed sample is caught too."""
    from evostyle.io.samples import resolve_image
    return {role: name if role == "weights" else resolve_image(name) for role, name in input_names(cfg).items()}


def _new_record(cfg: SearchConfig, built: Built) -> dict:
    from evostyle.rundir.record import environment, fingerprints, new_record
    engine, ev = built.engine, built.evaluator
    known = {"weights": engine.weights_info["sha256"]} if "sha256" in engine.weights_info else {}
    return new_record(cfg.to_dict(), built.plan.to_dict(), built.space.describe(), engine.weights_info,
                      environment(engine.device), cfg.run.seed, ev.columns,
                      fingerprints(input_paths(cfg), known, input_names(cfg)))


def config_differences(cfg: SearchConfig, rd: RunDir) -> list[str]:
    """The settings (``section.name``) in which ``cfg`` differs from the run's saved config."""
    saved = make_config(rd.record()["config"]).to_dict()  # nested, as this version writes it
    ours = cfg.to_dict()
    same = lambda a, b: json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
    return [f"{sec}.{k}" for sec in ours for k in ours[sec] if not same(saved.get(sec, {}).get(k), ours[sec][k])]


def _check_resume_config(cfg: SearchConfig, rd: RunDir) -> bool:
    """Before a resume: ``cfg`` must be the run's own config, except the settings of
    :data:`~evostyle.search.settings.RESUME_MAY_CHANGE`: where it runs, and ``maxiter``, which may
    move the run's end (to extend a finished run, as Optuna adds trials to a study) but not before the
    generations already done. Returns whether ``maxiter`` differs from the run's."""
    diffs = config_differences(cfg, rd)
    differ = [d for d in diffs if d.split(".", 1)[1] not in RESUME_MAY_CHANGE]
    if differ:
        raise EvostyleError(f"a resume continues {rd.path} with its own config, which differs in "
                            f"{', '.join(differ[:5])}; only {', '.join(RESUME_MAY_CHANGE)} may change")
    done = int(rd.state()["generations_done"])
    from evostyle.search.optimizers import OPTIMIZERS
    if "maxiter" in OPTIMIZERS.get(cfg.de.optimizer).unused:  # its generations are not maxiter's to bound
        return False
    if cfg.de.maxiter + 1 < done:
        raise EvostyleError(f"{rd.path} has already run {done} generations (maxiter {done - 1}); give "
                            f"{flag('maxiter')} of at least {done - 1}")
    return "de.maxiter" in diffs


def run_search(
    cfg: SearchConfig,
    out: str | os.PathLike | RunDir | None = None,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    report: bool = True,
    callback: Callable[[Generation], bool | None] | None = None,
    hooks: Hooks | None = None,
    accept_changed_inputs: bool = False,
) -> SearchResult:
    """Run (or, with ``resume``, continue) a search into ``out``; returns its
    :class:`~evostyle.rundir.result.SearchResult` (summary.json, typed). ``callback(generation)`` is
    called after every generation after the first with a :class:`~evostyle.rundir.result.Generation`,
    as scipy's callback; returning True stops the search there. ``hooks`` (a
    :class:`~evostyle.progress.Hooks`) hear every step, phase and generation.

    Every input error is raised before anything is written. The run directory is locked for the
    duration (a second process on it gets a one-line error), SIGINT / SIGTERM / SIGHUP stop it cleanly
    (:mod:`evostyle.search.signals`), and any other error marks it ``failed``; both can be resumed.
    A resume refuses input files changed since the run started unless ``accept_changed_inputs``.
    """
    hooks = hooks if hooks is not None else Hooks()
    if not isinstance(cfg, SearchConfig):
        raise EvostyleError(f"run_search takes a SearchConfig, got a {type(cfg).__name__}; build one with "
                            "evostyle.search.make_config({...}) (or make_config(load_toml(path)) for a file)")
    if resume:
        return _resume(RunDir.open(_path(out)), lambda rd: cfg, quiet, report, callback, hooks, accept_changed_inputs)
    built = build(cfg, hooks)
    rd = RunDir(_path(out) if out is not None else default_run_dir())
    with _executor(cfg, built.evaluator):
        existed = rd.path.exists()
        with RunLock(ensure_dir(rd.path), "search") as lock:
            try:
                inputs = {files.CONTENT: built.engine.content,
                          **{files.style_image(i): s for i, s in enumerate(built.engine.styles)}}
                rd.create(overwrite, _new_record(cfg, built), built.evaluator.columns, inputs)
            except (EvostyleError, OSError) as exc:
                rd.undo_create(lock, existed, refused=isinstance(exc, EvostyleError))
                if is_disk_full(exc):
                    raise ResourceError(f"no space left on device while creating the run in {rd.path}; free some "
                                        "space and run the command again") from None
                raise
            return _run(cfg, rd, built, built.plan, [], quiet, report, callback, hooks)


def resume_search(
    out: str | os.PathLike | RunDir,
    quiet: bool = False,
    report: bool = True,
    callback: Callable[[Generation], bool | None] | None = None,
    hooks: Hooks | None = None,
    accept_changed_inputs: bool = False,
    **changes,
) -> SearchResult:
    """Continue the run in ``out`` with its own config (as Optuna's ``load_study``): from its last
    whole generation, or, with ``maxiter`` larger than the run's, beyond its end. ``changes`` may set
    only :data:`~evostyle.search.settings.RESUME_MAY_CHANGE` (None: unchanged). An input file changed
    since the run started is refused unless ``accept_changed_inputs``."""
    other = sorted(k for k, v in changes.items() if v is not None and k not in RESUME_MAY_CHANGE)
    if other:
        raise EvostyleError(f"a resume uses the run's saved config; only {', '.join(RESUME_MAY_CHANGE)} may change, "
                            f"not {', '.join(other)}")
    return _resume(RunDir.open(_path(out)), lambda rd: make_config(rd.config(), changes), quiet, report,
                   callback, hooks if hooks is not None else Hooks(), accept_changed_inputs)


def _path(out: str | os.PathLike | RunDir) -> Path:
    return out.path if isinstance(out, RunDir) else Path(out)


def _resume(rd: RunDir, make_cfg: Callable[[RunDir], SearchConfig], quiet, report, callback, hooks,
            accept_changed_inputs: bool = False) -> SearchResult:
    """Continue the run ``rd`` with ``make_cfg(rd)``. It is checked before the lock is taken, so that a
    refused or finished run gets nothing written (not even a lock file) and a read-only finished run
    still answers, and again under the lock, which re-reads the run: another process may have
    extended it in between. Then its input files are checked against their fingerprints (a resume and
    an extension alike), the logged generations are replayed and the search goes on."""
    cfg = make_cfg(rd)
    if _nothing_to_do(cfg, rd, quiet):
        return rd.result()
    with rd.lock("resume"):
        cfg = make_cfg(rd)
        if _nothing_to_do(cfg, rd, quiet):
            return rd.result()
        rd.check_inputs(input_paths(cfg), accept_changed_inputs)
        built = build(cfg, hooks)
        with _executor(cfg, built.evaluator):
            cached = rd.reopen(built.evaluator.columns, cfg.de.maxiter)
            return _run(cfg, rd, built, built.plan.as_recorded(rd.plan()), cached, quiet, report, callback, hooks)


def _nothing_to_do(cfg: SearchConfig, rd: RunDir, quiet: bool) -> bool:
    """Check ``cfg`` against the run (:func:`_check_resume_config`); True if it is finished and not
    being extended."""
    extends = _check_resume_config(cfg, rd)
    if not extends and rd.finished():
        if not quiet:
            logger.info("%s is already finished; nothing to resume (give a larger maxiter to extend it)", rd.path)
        return True
    return False


def _run(cfg, rd: RunDir, built: Built, plan: Plan, cached, quiet, report, callback, hooks) -> SearchResult:
    """The search in its laid-out (or reopened) run directory, then the report."""
    logger.info("run directory: %s", rd.path)
    with _state_on_error(rd):
        summary = _search(cfg, rd, built, plan, cached, quiet, callback, hooks)
    if report:
        from evostyle.report.html import write_report
        logger.info("writing the report: plots, summary.md and report.html")
        with _state_on_error(rd, status_on_error=None):
            write_report(rd.path)
    return SearchResult(rd.path, summary)


def _search(cfg, rd: RunDir, built: Built, plan: Plan, cached, quiet, callback, hooks) -> dict:
    """The generations (replaying ``cached`` rows), then the baseline and summary.json; state finished."""
    from evostyle.de.solver import initial_population
    from evostyle.search.floor import SEEDS as FLOOR_SEEDS
    from evostyle.search.floor import noise_floor
    from evostyle.search.optimizers import OPTIMIZERS
    from evostyle.search.signals import StopSignals
    engine, space, ev = built.engine, built.space, built.evaluator
    gen = torch.Generator().manual_seed(cfg.run.seed)
    init = initial_population(plan.init, cfg.de.population, space.dim, gen, cfg.run.seed)
    if cached:
        logger.info("replaying the %d logged generation(s) of %s", len({r["generation"] for r in cached}), rd.path)
    gen_bar = bar(cfg.de.maxiter + 1, "generations", quiet, unit="gen")
    steps = StepBar(quiet=quiet).attach(hooks)
    on_gen = lambda g: (gen_bar.set_postfix(best=f"{g.best_fitness:.4g}", refresh=False), gen_bar.update(1))
    hooks.on_generation.append(on_gen)
    t0 = time.perf_counter()
    try:
        with StopSignals(quiet) as signals:
            problem = SearchProblem(ev, rd, cached, objective=cfg.de.objective, reference=plan.reference,
                                    save_images=cfg.run.save_images, signals=signals, hooks=hooks,
                                    full_steps=cfg.transfer.steps if ev.multi_fidelity else None)
            stop = None if callback is None else lambda intermediate_result: callback(problem.last_generation())
            res = OPTIMIZERS.get(cfg.de.optimizer)(cfg).solve(problem, init, engine.device, stop)
            gen_bar.close()
            best = problem.best_row
            if best is None:  # a multi-fidelity search stopped before any full transfer
                raise EvostyleError("the search stopped before any candidate's transfer ran all its steps; "
                                    "give it more brackets")
            best_values = {n: float(best[f"param_{n}"]) for n in space.names}
            front, hv = problem.front()
            logger.info("same-target baseline: the best candidate's %d outputs, all with angle_0's target", ev.k)
            hooks.phase("baseline: transfer")
            base = ev.baseline(best_values)
            hooks.phase(f"noise floor: the best candidate with {FLOOR_SEEDS} other seeds")
            floor = noise_floor(ev, best_values, [cfg.run.seed + 1 + i for i in range(FLOOR_SEEDS)])
            steps.close()
            with signals.critical():
                rd.write_images({files.baseline_output(k): base.images[0, k] for k in range(ev.k)})
            summary = {"best": {"fitness": float(best["fitness"]), "generation": int(best["generation"]),
                                "candidate": int(best["candidate"]), "params": best_values,
                                "searched": [q.name for q in space.searched],
                                **{c: float(best[c]) for c in files.SCORE_COLUMNS}},
                       "baseline_same_target": {"fitness": float(base.fitness[0]),
                                                **{c: float(base.terms[c][0]) for c in files.SCORE_COLUMNS}},
                       "noise_floor": floor.as_dict(),
                       "optimizer": {"name": cfg.de.optimizer, "objective": cfg.de.objective, "strategy": plan.strategy,
                                     "message": str(res.message), "nit": int(res.nit), "nfev_points": problem.nfev,
                                     "success": bool(res.success)},
                       "front": [_front_member(r, space, ev) for r in front], "hypervolume": hv,
                       "hypervolume_reference": list(problem.reference),
                       "seconds": time.perf_counter() - t0, "replayed_generations": problem.replayed,
                       "seconds_by_phase": problem.phase_seconds,
                       "weights": engine.weights_info["used"], "device": str(engine.device), "out": str(rd.path),
                       "executor": ev.executor.describe() if ev.executor is not None else {"name": "local"}}
            with signals.critical():
                rd.finish(summary)
    finally:
        gen_bar.close()
        steps.close()
        hooks.on_step.remove(steps.step)
        hooks.on_phase.remove(steps.phase)
        hooks.on_generation.remove(on_gen)
    return summary


def _front_member(row: dict, space, ev) -> dict:
    """A front member for summary.json: where it was evaluated, its parameters and objectives, and
    the files of its outputs (under images/, when saved)."""
    g, c = int(row["generation"]), int(row["candidate"])
    sc = ev.score
    return {"generation": g, "candidate": c,
            "params": {n: float(row[f"param_{n}"]) for n in space.names if space.get(n).searched},
            sc.fidelity_column: float(row[sc.fidelity_column]), sc.diversity_column: float(row[sc.diversity_column]),
            "fitness": float(row["fitness"]), "images": [files.candidate_image(g, c, k) for k in range(ev.k)]}
