"""Running a search: building its engine from a config, laying out, locking and resuming its run
directory, and the outer loop."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import torch

from evostyle.errors import EvostyleError, ResourceError, describe, is_disk_full
from evostyle.io.atomic import atomic_write_json, read_json
from evostyle.io.runlog import RunLog, environment
from evostyle.progress import bar, step_counter
from evostyle.search.config import SearchConfig, compile_choice, resolved_strategy
from evostyle.search.evaluator import Evaluator
from evostyle.search.objective import GEN_COLUMNS, SearchObjective
from evostyle.search.result import SearchResult
from evostyle.search.space import Space
from evostyle.transfer.engine import StyleEngine

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

    from evostyle.search.result import Generation

logger = logging.getLogger("evostyle")
SCORE_COLUMNS = ("loss_score", "fidelity", "fidelity_style", "fidelity_content", "diversity_pixel",
                 "diversity_feature")
"""The per-candidate scores summary.json gives for the best candidate and its same-target baseline."""

def default_run_dir() -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("results") / f"run-{stamp}-{os.getpid() % 10000:04d}"


def _hw(engine) -> tuple[int, int]:
    """The outputs' (height, width) in px."""
    return tuple(engine.content.shape[-2:])


class Built(NamedTuple):
    """What :func:`build` makes of a config: the style engine, the parameter space and the evaluator."""

    engine: StyleEngine
    space: Space
    evaluator: Evaluator


def build(cfg: SearchConfig) -> Built:
    """Turn a search config into its engine, space and evaluator (images and network loaded; every
    input error surfaces here, before a run directory exists). Experiments and notebooks use it to
    score candidates of their own choosing with a run's exact settings."""
    from evostyle.io.images import image_size
    from evostyle.io.samples import resolve_image
    from evostyle.search.evaluator import Evaluator
    from evostyle.search.scoring import ScoreConfig
    from evostyle.search.space import style_space
    from evostyle.transfer.engine import StyleEngine
    from evostyle.transfer.run import rows_that_fit
    content, styles = resolve_image(cfg.run.content), [resolve_image(s) for s in cfg.run.style]
    image_size(content)
    for s in styles:
        image_size(s)
    sp, tr = cfg.space, cfg.transfer
    space = style_space(sp.outputs, len(cfg.run.style), tr.style_layers, sp.search, sp.rotation_mode, sp.fixed,
                        sp.bounds)
    tcfg = tr.to_transfer()
    engine = StyleEngine(content, styles, tcfg, size=cfg.transfer.size, rotation_mode=cfg.space.rotation_mode,
                         shuffle=cfg.space.shuffle, weights=cfg.run.weights, seed=cfg.run.seed, pool=cfg.run.pool,
                         device=cfg.run.device)
    engine.cfg = dataclasses.replace(engine.cfg, compile=compile_choice(cfg, engine.device, _hw(engine))[0])
    rows_that_fit(_hw(engine), engine.cfg, engine.device)  # on the CPU: at least one row fits in memory
    for p in space.params:  # a fixed angle must be one the rotation mode accepts
        if p.group == "angles" and p.value is not None:
            try:
                engine.targets.mode.check_angles([p.value])
            except EvostyleError as exc:
                raise EvostyleError(f"{p.name}: {exc}; fix it with --fix {p.name}=VALUE") from None
    sc = cfg.scoring
    score = ScoreConfig(sc.diversity_metric, sc.diversity_weight, sc.loss_cap, fitness_loss=sc.fitness_loss)
    return Built(engine, space, Evaluator(engine, space, cfg.space.outputs, score, noise_seed=cfg.run.seed))


@contextlib.contextmanager
def _state_on_error(log: RunLog, out: Path, status_on_error: str | None = "failed"):
    """A run that stops early says so in state.json: ``interrupted`` (with the signal) after a signal,
    ``failed`` with the error after anything else; either can be continued with ``--resume``. A full
    disk becomes a one-line :class:`~evostyle.errors.ResourceError` naming the file and the resume.
    ``status_on_error`` None leaves the state alone (the report, after the run finished)."""
    from evostyle.search.signals import Interrupted
    try:
        yield
    except Interrupted as exc:
        with contextlib.suppress(OSError):
            log.write_state(status="interrupted", signal=exc.name)
        raise
    except KeyboardInterrupt:  # a Ctrl-C outside the handlers (not the main thread)
        with contextlib.suppress(OSError):
            log.write_state(status="interrupted", signal="SIGINT")
        raise Interrupted() from None
    except Exception as exc:
        if status_on_error is not None:
            with contextlib.suppress(OSError):
                log.write_state(status=status_on_error, error=describe(exc, 300))
        if isinstance(exc, OSError) and is_disk_full(exc):
            then = (f"resume with python -m evostyle.search --resume {out}" if status_on_error else
                    f"rebuild the report with python -m evostyle.report {out}")
            raise ResourceError(f"no space left on device while writing {exc.filename or 'a file'} in {out}; "
                                f"free some space, then {then}") from None
        raise


def _solve(cfg: SearchConfig, objective, dim: int, init: torch.Tensor, device, callback=None):
    """Run the outer loop of ``cfg`` over the unit cube [0, 1]^dim from ``init`` (P, dim); returns its
    OptimizeResult. ``callback(intermediate_result)`` is the solvers' per-generation callback."""
    from evostyle.de import GDE3, DifferentialEvolution, RandomSearch, scipy_differential_evolution
    from evostyle.search.scoring import OBJECTIVES
    bounds = [(0.0, 1.0)] * dim
    if cfg.de.optimizer == "random":
        return RandomSearch(objective, bounds, maxiter=cfg.de.maxiter, init=init, seed=cfg.run.seed,
                            device=device, callback=callback).solve()
    de = cfg.de
    common = dict(strategy=resolved_strategy(cfg), maxiter=de.maxiter, recombination=de.recombination,
                  mutation=tuple(de.mutation) if isinstance(de.mutation, list) else de.mutation, seed=cfg.run.seed,
                  callback=callback)
    if cfg.de.optimizer == "scipy-de":
        return scipy_differential_evolution(objective, bounds, init=init.numpy(), tol=cfg.de.tol, atol=cfg.de.atol,
                                            **common)
    if OBJECTIVES.get(cfg.de.objective).multi:
        return GDE3(objective, bounds, init=init, boundary=cfg.de.boundary, device=device, **common).solve()
    return DifferentialEvolution(objective, bounds, init=init, tol=de.tol, atol=de.atol, boundary=de.boundary,
                                 device=device, **common).solve()


def _front_member(row: dict, space, ev) -> dict:
    """A front member for summary.json: where it was evaluated, its parameters and objectives, and
    the files of its outputs (under images/, when saved)."""
    g, c = int(row["generation"]), int(row["candidate"])
    sc = ev.score
    return {"generation": g, "candidate": c,
            "params": {n: float(row[f"param_{n}"]) for n in space.names if space.get(n).searched},
            sc.quality_column: float(row[sc.quality_column]), sc.diversity_column: float(row[sc.diversity_column]),
            "fitness": float(row["fitness"]), "images": [f"images/g{g:03d}_c{c:03d}_k{k}.jpg" for k in range(ev.k)]}


def _record(cfg: SearchConfig, engine, space, ev) -> dict:
    """config.json of a new run: the resolved config and everything needed to reproduce and read it."""
    from evostyle.transfer.compiling import resolve_compile_mode
    used, why = compile_choice(cfg, engine.device, _hw(engine))  # as build applied it
    if cfg.scoring.reference_point is None:
        reference, how = [ev.reference_quality(), 0.0], ("the unstylised content image's quality (the worst "
                                                          "over the pure styles and the default mix), diversity 0")
    else:
        ref = cfg.scoring.reference_point
        reference, how = [ref[0], -ref[1]], "reference_point in the config"
    return {"config": cfg.to_dict(), "space": space.describe(), "weights": engine.weights_info,
            "environment": environment(engine.device), "seed": cfg.run.seed,
            "image_size": list(_hw(engine)), "columns": ev.columns, "strategy": resolved_strategy(cfg),
            "compile": {"used": used, "why": why,
                        "mode": resolve_compile_mode(cfg.transfer.compile_mode, engine.device) if used else None},
            "hypervolume": {"objectives": [ev.score.quality_column, f"-{ev.score.diversity_column}"],
                            "reference": reference, "how": how}}


def _created_config(rec: dict) -> dict:
    """The config a run was created with: config.json's, with ``maxiter`` as it was before any
    extension (``extensions`` in config.json) changed it. Its hash is the marker's."""
    cfg = rec.get("config")
    ext = rec.get("extensions") or []
    if not ext or not isinstance(cfg, dict) or not isinstance(cfg.get("de"), dict):
        return cfg
    return {**cfg, "de": {**cfg["de"], "maxiter": ext[0]["maxiter_from"]}}


def _check_resume_config(cfg: SearchConfig, out: Path, state: dict) -> bool:
    """Before a resume: ``cfg`` must be the run's own config, except the settings of
    :data:`~evostyle.search.config.RESUME_MAY_CHANGE`: where it runs, and ``maxiter``, which may move
    the run's end (to extend a finished run, as Optuna adds trials to a study) but not before the
    generations already done. Returns whether ``maxiter`` differs from the run's."""
    from evostyle.search.config import RESUME_MAY_CHANGE, make_config
    rec = read_json(out / RunLog.CONFIG, "run config")
    try:
        saved = make_config(rec["config"]).to_dict()  # nested, as this version writes it
    except (KeyError, TypeError):
        raise EvostyleError(f"{out / RunLog.CONFIG} is not an evostyle run config; start a new run") from None
    ours = cfg.to_dict()
    same = lambda a, b: json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
    differ = [f"{sec}.{k}" for sec in ours for k in ours[sec]
              if k not in RESUME_MAY_CHANGE and not same(saved.get(sec, {}).get(k), ours[sec][k])]
    old_maxiter = int(saved["de"]["maxiter"])
    if differ:
        raise EvostyleError(f"--resume continues {out} with its own config, which differs in {', '.join(differ[:5])}; "
                            f"only {', '.join(RESUME_MAY_CHANGE)} may change")
    done = int(state["generations_done"])
    if cfg.de.maxiter + 1 < done:
        raise EvostyleError(f"{out} has already run {done} generations (maxiter {done - 1}); give --maxiter of at "
                            f"least {done - 1}")
    return cfg.de.maxiter != old_maxiter


def _open_existing(out: Path, log: RunLog, maxiter: int) -> tuple[dict, list[dict]]:
    """Check a run to resume (marker, unedited config, state) and load its logged rows: (config.json
    record, candidate rows). A ``maxiter`` other than the run's extends (or shortens) it: config.json
    takes the new value and records the change under ``extensions``. The caller holds the run's lock."""
    from evostyle import __version__
    from evostyle.io.rundir import config_hash, read_marker
    marker = read_marker(out)
    rec = read_json(out / RunLog.CONFIG, "run config")
    if not isinstance(rec, dict) or config_hash(_created_config(rec)) != marker.get("config_sha256"):
        raise EvostyleError(f"{out / RunLog.CONFIG} was changed after the run started (its config no longer "
                            f"matches the hash in {out / '.evostyle-run'}); restore it or start a new run")
    if not isinstance(rec.get("hypervolume", {}).get("reference"), list):
        raise EvostyleError(f"{out / RunLog.CONFIG} has no hypervolume reference; start a new run")
    cached, _ = log.resume()
    old = int(rec["config"]["de"]["maxiter"])
    if maxiter != old:
        done = int(log.state["generations_done"])
        rec["extensions"] = [*(rec.get("extensions") or []), {
            "maxiter_from": old, "maxiter_to": maxiter, "generations_done": done, "evostyle": __version__,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}]
        rec["config"] = {**rec["config"], "de": {**rec["config"]["de"], "maxiter": maxiter}}
        atomic_write_json(out / RunLog.CONFIG, rec)
        logger.info("extending %s from maxiter %d to %d (%d generation(s) done)", out, old, maxiter, done)
    return rec, cached


def _create(out: Path, overwrite: bool, cfg: SearchConfig, engine, space, ev, log: RunLog) -> dict:
    """Lay out a new run in ``out`` (its lock held by the caller): marker, config.json, empty logs,
    state, the input images. Returns the config.json record."""
    from evostyle.io.images import save_image
    from evostyle.io.rundir import prepare_new, write_marker
    kept = prepare_new(out, overwrite)
    if kept:
        shown = ", ".join(kept[:5]) + (f" and {len(kept) - 5} more" if len(kept) > 5 else "")
        logger.warning("--overwrite replaced the run in %s and kept %d file(s) evostyle did not write: %s", out,
                       len(kept), shown)
    record = _record(cfg, engine, space, ev)
    write_marker(out, record["config"])
    log.create(record)
    save_image(engine.content, out / "content.png")
    for i, s in enumerate(engine.styles):
        save_image(s, out / f"style_{i}.png")
    return record


def _undo_create(out: Path, lock, existed: bool, refused: bool) -> None:
    """After a new run could not be laid out: remove what this call wrote (never a user's file), so
    that nothing half-made looks like a run and the same command works again."""
    from evostyle.io.rundir import remove_layout
    if not refused:  # a refused folder was not touched; a failed creation wrote some of the layout
        remove_layout(out, best_effort=True)
    lock.discard_if_new()
    if not existed:
        with contextlib.suppress(OSError):
            out.rmdir()  # the folder this call made, now empty


def run_search(
    cfg: SearchConfig,
    out: Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    report: bool = True,
    callback: Callable[[Generation], bool | None] | None = None,
) -> SearchResult:
    """Run (or resume) a search into ``out``; returns its :class:`~evostyle.search.result.SearchResult`
    (summary.json, typed). ``callback(generation)`` is called after every generation after the first
    with a :class:`~evostyle.search.result.Generation`; returning True stops the search there.

    Every input error is raised before anything is written. The run directory is locked for the
    duration (a second process on it gets a one-line error), SIGINT / SIGTERM / SIGHUP stop it cleanly
    (:mod:`evostyle.signals`), and any other error marks it ``failed``; both can be resumed.
    """
    from evostyle.io.rundir import read_marker

    out = Path(out) if out else default_run_dir()
    if resume:
        read_marker(out)  # a run evostyle made: nothing (not even a lock file) goes into another folder
        state = RunLog.check_state(out)
        extends = _check_resume_config(cfg, out, state)
        if state.get("status") == "finished" and not extends:
            if not quiet:
                logger.info("%s is already finished; nothing to resume (give a larger maxiter to extend it)", out)
            return SearchResult.from_dir(out)
    engine, space, ev = build(cfg)
    if cfg.run.executor != "local":  # workers start (and show any input error) before anything is written
        from evostyle.search.executors import make_executor
        ev.executor = make_executor(cfg, ev)
    try:
        return _run_in(out, cfg, engine, space, ev, resume, overwrite, quiet, report, callback)
    finally:
        if ev.executor is not None:
            ev.executor.close()


def _run_in(out, cfg, engine, space, ev, resume, overwrite, quiet, report, callback) -> SearchResult:
    """:func:`run_search` once its engine (and executor) stand: lock, lay out or reopen, search, report."""
    from evostyle.io.rundir import RunLock, ensure_dir
    log = RunLog(out, ev.columns, GEN_COLUMNS)
    existed = out.exists()
    with RunLock(out if resume else ensure_dir(out), "resume" if resume else "search") as lock:
        if resume:
            rec, cached = _open_existing(out, log, cfg.de.maxiter)
        else:
            try:
                rec, cached = _create(out, overwrite, cfg, engine, space, ev, log), []
            except (EvostyleError, OSError) as exc:
                _undo_create(out, lock, existed, refused=isinstance(exc, EvostyleError))
                if is_disk_full(exc):
                    raise ResourceError(f"no space left on device while creating the run in {out}; free some "
                                        "space and run the command again") from None
                raise
        logger.info("run directory: %s", out)
        with _state_on_error(log, out):
            summary = _search(cfg, out, engine, space, ev, log, cached, rec["hypervolume"]["reference"], quiet,
                              callback)
        if report:
            from evostyle.report.html import write_report
            logger.info("report: plots, summary.md and report.html in %s", out)
            with _state_on_error(log, out, status_on_error=None):
                write_report(out)
    return SearchResult(out, summary)


def _search(cfg, out, engine, space, ev, log, cached, reference, quiet, callback=None) -> dict:
    """The generations (replaying ``cached`` rows), then the baseline and summary.json; state finished."""
    from evostyle.de.solver import latin_hypercube
    from evostyle.search.signals import StopSignals
    gen = torch.Generator().manual_seed(cfg.run.seed)
    init = latin_hypercube(cfg.de.population, space.dim, gen)
    progress = bar(cfg.de.maxiter + 1, "generations", quiet, unit="gen")
    if cached:
        logger.info("replaying the %d logged generation(s) of %s", len({r["generation"] for r in cached}), out)
    t0 = time.perf_counter()
    with StopSignals(quiet) as signals:
        obj = SearchObjective(ev, log, out, cached, progress, objective=cfg.de.objective,
                              reference=reference, save_images=cfg.run.save_images, signals=signals, quiet=quiet)
        try:
            res = _solve(cfg, obj, space.dim, init, engine.device,
                         None if callback is None else lambda intermediate_result: callback(obj.last_generation()))
        finally:
            if progress is not None:
                progress.close()
        best = obj.best_row
        best_values = {n: float(best[f"param_{n}"]) for n in space.names}
        front, hv = obj.front()
        logger.info("same-target baseline: the best candidate's %d outputs, all with angle_0's target", ev.k)
        ev.progress, close = step_counter("baseline: transfer", quiet)
        try:
            base = ev.baseline(best_values)
        finally:
            close()
            ev.progress = None
        summary = {"best": {"fitness": float(best["fitness"]), "generation": int(best["generation"]),
                            "candidate": int(best["candidate"]), "params": best_values,
                            "searched": [q.name for q in space.searched],
                            **{c: float(best[c]) for c in SCORE_COLUMNS}},
                   "baseline_same_target": {c: float(base.terms[c][0]) for c in SCORE_COLUMNS},
                   "optimizer": {"name": cfg.de.optimizer, "objective": cfg.de.objective,
                                 "strategy": resolved_strategy(cfg) if cfg.de.optimizer != "random" else None,
                                 "message": str(res.message), "nit": int(res.nit), "nfev_points": obj.nfev,
                                 "success": bool(res.success)},
                   "front": [_front_member(r, space, ev) for r in front], "hypervolume": hv,
                   "hypervolume_reference": list(obj.reference),
                   "seconds": time.perf_counter() - t0, "replayed_generations": obj.replayed,
                   "seconds_by_phase": obj.phase_seconds,
                   "weights": engine.weights_info["used"], "device": str(engine.device), "out": str(out),
                   "executor": ev.executor.describe() if ev.executor is not None else {"name": "local"}}
        with signals.critical():
            atomic_write_json(out / "summary.json", summary)
            log.write_state(status="finished")
    return summary
