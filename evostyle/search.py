"""``python -m evostyle.search``: differential evolution over style-transfer parameters.

With no arguments it runs a small search on the bundled images (a few minutes on a 2-core CPU), writes a
run directory under ``results/`` and prints where it is and the best parameters. See ``--help``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import torch

from .cli import show_defaults
from .config import OPTIMIZERS, SearchConfig, compile_choice, load_toml, make_config, resolved_strategy
from .errors import EvostyleError, ResourceError, cli_errors, describe, is_disk_full, warnings_to_stderr
from .signals import Interrupted
from .atomic import atomic_write_json, read_json
from .runlog import RunLog, environment

if TYPE_CHECKING:  # pragma: no cover
    from .engine import StyleEngine
    from .evaluator import Evaluator
    from .space import Space


def build_parser() -> argparse.ArgumentParser:
    from .de import STRATEGIES
    from .device import PRECISIONS
    from .measures import MEASURES
    from .config import SAVE_IMAGES
    from .scoring import DIVERSITY_METRICS, FITNESS_LOSSES, OBJECTIVES
    from .space import SEARCH_GROUPS
    from .rotations import ROTATION_MODES
    from .targets import SHUFFLE_MODES
    from .transfer import COMPILE_MODES, INITS
    p = argparse.ArgumentParser(prog="python -m evostyle.search", description=__doc__.splitlines()[0])
    a = p.add_argument
    alt = " | ".join
    a("--config", help="TOML file with any of the settings below (flags override it)")
    a("--content", help="content image (sample:NAME is a bundled image)")
    a("--style", action="append", help="style image; repeat for several")
    a("--optimizer", choices=OPTIMIZERS, help="outer loop: our torch-batched DE, scipy's DE, or random search "
      "(the baseline, same budget)")
    a("--objective", choices=OBJECTIVES, help="scalar: minimise fitness = quality - lambda * diversity; pareto: "
      "the front of (quality, diversity) (GDE3 with torch-de)")
    a("--strategy", help=f"DE strategy: auto (best1bin; rand1bin for pareto) | {alt(STRATEGIES)}")
    a("--popsize", type=int, help="population size P (total, not scipy's multiplier)")
    a("--maxiter", type=int, help="generations after the initial population")
    a("--outputs", type=int, help="K outputs per candidate")
    a("--search", nargs="+", help=f"parameter groups to search: {' '.join(SEARCH_GROUPS)}")
    a("--fix", action="append", metavar="NAME=VALUE", help="fix one parameter, e.g. angle_0=0")
    a("--bounds", action="append", metavar="NAME=LOW,HIGH", help="bounds of a parameter or group")
    a("--rotation-mode", help=alt(ROTATION_MODES))
    a("--shuffle", help=alt(SHUFFLE_MODES))
    a("--measure", help=alt(MEASURES))
    a("--size", type=int, help="long side of the outputs in px")
    a("--steps", type=int, help="inner optimisation steps per candidate")
    a("--lr", type=float, help="inner learning rate")
    a("--image-init", help=alt(INITS))
    a("--diversity-metric", help=alt(DIVERSITY_METRICS))
    a("--diversity-weight", type=float, help="lambda in fitness = loss - lambda * diversity")
    a("--loss-cap", type=float, help="penalise candidates whose quality exceeds this")
    a("--fitness-loss", choices=FITNESS_LOSSES, help="the objectives' quality: fidelity (the outputs vs the "
      "unrotated painting and the content) or own_target (vs each output's own rotated target)")
    a("--reference-point", type=float, nargs=2, metavar=("QUALITY", "DIVERSITY"),
      help="hypervolume reference (default: the unstylised content image's quality, diversity 0)")
    a("--save-images", choices=SAVE_IMAGES, help="outputs kept under images/: all candidates', or each "
      "generation's best and the front members")
    a("--max-batch", type=int,
      help="most transfer rows per forward pass (none: a whole generation; halved on out of memory)")
    a("--precision", help=alt(PRECISIONS))
    a("--compile", nargs="?", const="on", choices=("auto", "on", "off"),
      help="torch.compile the inner step (fuses the elementwise work; compiles once per batch shape); "
           "auto: on CUDA for searches long enough to repay the compilation; a bare --compile means on")
    a("--compile-mode", help=alt(COMPILE_MODES) + " (torch.compile's mode; reduce-overhead adds CUDA graphs; "
      "auto: reduce-overhead on CUDA, default elsewhere)")
    a("--seed", type=int, help="seeds the DE, the noise inits and the random-init weights")
    a("--device", help="auto | cpu | cuda | cuda:N")
    a("--weights", help="auto | imagenet | random | path to a VGG19 state dict")
    a("--out", help="run directory (default results/run-<time>)")
    a("--resume", metavar="DIR", help="continue the run in DIR from its last finished generation")
    a("--overwrite", action="store_true", help="replace an existing run in --out")
    a("--no-report", action="store_true", help="skip report.html at the end")
    a("--quiet", action="store_true", help="no progress bar")
    a("--debug", action="store_true", help="show tracebacks")
    show_defaults(p, {k: getattr(SearchConfig(), k) for k in _FLAG_KEYS})  # not argparse's None
    return p


_FLAG_KEYS = ("content", "style", "optimizer", "objective", "strategy", "popsize", "maxiter", "outputs", "search",
              "rotation_mode", "shuffle", "measure", "size", "steps", "lr", "image_init", "diversity_metric",
              "diversity_weight", "loss_cap", "fitness_loss", "reference_point", "save_images", "max_batch",
              "precision", "compile", "compile_mode", "seed", "device", "weights")
"""Flags that set a SearchConfig field of the same name (None when not given: the config file or the
field's default applies)."""


def _pairs(items, what):
    out = {}
    for item in items or []:
        if "=" not in item:
            raise EvostyleError(f"--{what} takes NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = [float(x) for x in v.split(",")] if what == "bounds" else float(v)
        except ValueError:
            raise EvostyleError(f"--{what} {item!r}: not a number") from None
    return out


def config_from_args(args) -> SearchConfig:
    file_values = load_toml(args.config) if args.config else {}
    over = {key: getattr(args, key) for key in _FLAG_KEYS}
    if over["compile"] is not None:  # --compile auto | on | off (a bare --compile: on)
        over["compile"] = {"on": True, "off": False}.get(over["compile"], over["compile"])
    fixed, bounds = _pairs(args.fix, "fix"), _pairs(args.bounds, "bounds")
    if fixed:
        over["fixed"] = {**file_values.get("fixed", {}), **fixed}
    if bounds:
        over["bounds"] = {**file_values.get("bounds", {}), **bounds}
    return make_config(file_values, over)


def _default_out() -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("results") / f"run-{stamp}-{os.getpid() % 10000:04d}"


class SearchObjective:
    """Wraps the evaluator for a solver: logs every generation, saves outputs, keeps the best row and
    the front of everything evaluated, and replays the generations a resumed run already logged.

    Called with a (P, D) unit-cube population it returns the values of ``objective`` (a name in
    :data:`~evostyle.scoring.OBJECTIVES`): (P,) fitness for ``scalar``, (P, 2) (quality, -diversity)
    for ``pareto``. After each generation, ``generations.csv``
    gets the hypervolume of the front of all candidates evaluated so far against ``reference``
    (quality, -diversity), whichever the mode, so searches of either kind compare at equal budgets.
    """

    def __init__(self, evaluator, log: RunLog, out: Path, cached: list[dict], progress=None, objective: str = "scalar",
                 reference=(math.inf, 0.0), save_images: str = "all", signals=None):
        from .signals import StopSignals
        self.ev, self.log, self.out = evaluator, log, out
        self.signals = signals if signals is not None else StopSignals()  # not installed: never fires
        from .scoring import OBJECTIVES
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
        self.progress = progress
        self.replayed = 0
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
        from .scoring import objectives
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

    def front(self) -> tuple[list[dict], float]:
        """(rows of the non-dominated candidates among all evaluated, their hypervolume)."""
        from .de.pareto import front_and_hypervolume
        idx, hv = front_and_hypervolume(self.points, self.reference)
        return [self.rows[i] for i in idx], hv

    def _replay(self, g: int, unit: torch.Tensor) -> torch.Tensor:
        rows = sorted(self.cached[g], key=lambda r: int(r["candidate"]))
        values = self.ev.space.to_values(unit)
        if len(rows) != unit.shape[0]:
            raise EvostyleError(f"{self.out / RunLog.CANDIDATES} has {len(rows)} rows for generation {g} of "
                                f"{unit.shape[0]} candidates (truncated or edited?); restore it or start a new run")
        for name, v in values.items():
            logged = torch.tensor([float(r[f"param_{name}"]) for r in rows], dtype=torch.float64)
            if not torch.allclose(logged, v, rtol=1e-9, atol=1e-12):
                raise EvostyleError(f"resume diverged at generation {g} (parameter {name} in "
                                    f"{self.out / RunLog.CANDIDATES}); the run's settings or library versions "
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
        if self.progress is not None:
            self.progress.set_postfix(best=f"{self.best_fitness:.4g}", refresh=False)
            self.progress.update(1)
        self.signals.check()  # a first Ctrl-C stops here, after the generation is written
        return out

    def _save_outputs(self, g: int, ev, gen_best: int, improved: bool, on_front: set[int]) -> None:
        """JPEGs of this generation's outputs under images/ (all, or the best and the front members)
        and, when the best improved, PNGs of the best candidate's outputs under best/."""
        from .images import save_image
        img_dir = self.out / "images"
        img_dir.mkdir(exist_ok=True)
        keep = range(ev.fitness.shape[0]) if self.save_images == "all" else sorted({gen_best} | on_front)
        for c in keep:
            for k in range(self.ev.k):
                save_image(ev.images[c, k], img_dir / f"g{g:03d}_c{c:03d}_k{k}.jpg", quality=85)
        if improved:
            best_dir = self.out / "best"
            best_dir.mkdir(exist_ok=True)
            bi = int(self.best_row["candidate"])
            for k in range(self.ev.k):
                save_image(ev.images[bi, k], best_dir / f"output_{k}.png")
            atomic_write_json(best_dir / "best.json", {k: v for k, v in self.best_row.items()})

    def _evaluate(self, g: int, unit: torch.Tensor) -> torch.Tensor:
        ev = self.ev.evaluate(unit)
        with self.signals.critical():  # the generation's files are written whole or not at all
            self._log(g, ev)
        return self.objective.values(ev.terms, ev.failed, self.ev.score)

    def _log(self, g: int, ev) -> None:
        """Write generation ``g``'s images, then its rows, then the state that counts it as done."""
        t_log = time.perf_counter()
        p = ev.fitness.shape[0]
        per = ev.seconds / p
        rows = [{"generation": g, "candidate": i, **ev.row(i), "seconds": per} for i in range(p)]
        improved = self._track(rows)
        front, hv = self.front()
        on_front = {int(r["candidate"]) for r in front if int(r["generation"]) == g}
        finite = ev.fitness[torch.isfinite(ev.fitness)]
        gi = int(torch.argmin(ev.fitness))
        self._save_outputs(g, ev, gi, improved, on_front)
        gen_row = {"generation": g, "best_fitness": self.best_fitness,
                   "gen_best": float(ev.fitness[gi]),
                   "gen_mean": float(finite.mean()) if finite.numel() else math.inf,
                   "gen_std": float(finite.std(unbiased=False)) if finite.numel() else math.nan,
                   "n_failed": int(ev.failed.sum()), "nfev": self.nfev + p, "hypervolume": hv,
                   "front_size": len(front), "elapsed": time.perf_counter() - self.t0,
                   "eval_seconds": ev.seconds, "chunk_size": ev.chunk_size}
        self.log.append_generation(rows, gen_row)
        self.nfev += p
        for part, sec in ev.phases.items():
            self.phase_seconds[part] += sec
        self.phase_seconds["logging"] += time.perf_counter() - t_log
        for m in ev.log:  # out-of-memory retries, a torch.compile fallback
            print(f"note: generation {g}: {m}", file=sys.stderr)


SCORE_COLUMNS = ("loss_score", "fidelity", "fidelity_style", "fidelity_content", "diversity_pixel",
                 "diversity_feature")
"""The per-candidate scores summary.json gives for the best candidate and its same-target baseline."""
GEN_COLUMNS = ["generation", "best_fitness", "gen_best", "gen_mean", "gen_std", "n_failed", "nfev", "hypervolume",
               "front_size", "elapsed", "eval_seconds", "chunk_size"]


def _hw(engine) -> tuple[int, int]:
    """The outputs' (height, width) in px."""
    return tuple(engine.content.shape[-2:])


class Built(NamedTuple):
    """What :func:`build` makes of a config: the style engine, the parameter space and the evaluator."""

    engine: "StyleEngine"
    space: "Space"
    evaluator: "Evaluator"


def build(cfg: SearchConfig) -> Built:
    """Turn a search config into its engine, space and evaluator (images and network loaded; every
    input error surfaces here, before a run directory exists). Experiments and notebooks use it to
    score candidates of their own choosing with a run's exact settings."""
    from .engine import StyleEngine
    from .evaluator import Evaluator
    from .images import image_size
    from .scoring import ScoreConfig
    from .space import style_space
    from .transfer import TransferConfig, rows_that_fit
    from . import resolve_image
    content, styles = resolve_image(cfg.content), [resolve_image(s) for s in cfg.style]
    image_size(content)
    for s in styles:
        image_size(s)
    space = style_space(cfg.outputs, len(cfg.style), cfg.style_layers, cfg.search, cfg.rotation_mode,
                        cfg.fixed, cfg.bounds)
    tcfg = TransferConfig(style_layers=tuple(cfg.style_layers), content_layer=cfg.content_layer,
                          measure=cfg.measure, content_weight=cfg.content_weight, style_weight=cfg.style_weight,
                          tv_weight=cfg.tv_weight, steps=cfg.steps, optimizer=cfg.inner_optimizer, lr=cfg.lr,
                          init=cfg.image_init, init_noise=cfg.init_noise, max_batch=cfg.max_batch,
                          precision=cfg.precision, compile_mode=cfg.compile_mode)
    with warnings_to_stderr():
        engine = StyleEngine(content, styles, tcfg, size=cfg.size, rotation_mode=cfg.rotation_mode,
                             shuffle=cfg.shuffle, weights=cfg.weights, seed=cfg.seed, pool=cfg.pool,
                             device=cfg.device)
    engine.cfg = dataclasses.replace(tcfg, compile=compile_choice(cfg, engine.device, _hw(engine))[0])
    rows_that_fit(_hw(engine), engine.cfg, engine.device)  # on the CPU: at least one row fits in memory
    for p in space.params:  # a fixed angle must be one the rotation mode accepts
        if p.group == "angles" and p.value is not None:
            try:
                engine.targets.mode.check_angles([p.value])
            except EvostyleError as exc:
                raise EvostyleError(f"{p.name}: {exc}; fix it with --fix {p.name}=VALUE") from None
    score = ScoreConfig(cfg.diversity_metric, cfg.diversity_weight, cfg.loss_cap, fitness_loss=cfg.fitness_loss)
    return Built(engine, space, Evaluator(engine, space, cfg.outputs, score, noise_seed=cfg.seed))


@contextlib.contextmanager
def _state_on_error(log: RunLog, out: Path, status_on_error: str | None = "failed"):
    """A run that stops early says so in state.json: ``interrupted`` (with the signal) after a signal,
    ``failed`` with the error after anything else; either can be continued with ``--resume``. A full
    disk becomes a one-line :class:`~evostyle.errors.ResourceError` naming the file and the resume.
    ``status_on_error`` None leaves the state alone (the report, after the run finished)."""
    from .signals import Interrupted
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


def _solve(cfg: SearchConfig, objective, dim: int, init: torch.Tensor, device):
    """Run the outer loop of ``cfg`` over the unit cube [0, 1]^dim from ``init`` (P, dim); returns its
    OptimizeResult."""
    from .de import GDE3, DifferentialEvolution, RandomSearch, scipy_differential_evolution
    from .scoring import OBJECTIVES
    bounds = [(0.0, 1.0)] * dim
    if cfg.optimizer == "random":
        return RandomSearch(objective, bounds, maxiter=cfg.maxiter, init=init, seed=cfg.seed, device=device).solve()
    common = dict(strategy=resolved_strategy(cfg), maxiter=cfg.maxiter, recombination=cfg.recombination,
                  mutation=tuple(cfg.mutation) if isinstance(cfg.mutation, list) else cfg.mutation, seed=cfg.seed)
    if cfg.optimizer == "scipy-de":
        return scipy_differential_evolution(objective, bounds, init=init.numpy(), tol=cfg.tol, atol=cfg.atol,
                                            **common)
    if OBJECTIVES.get(cfg.objective).multi:
        return GDE3(objective, bounds, init=init, boundary=cfg.boundary, device=device, **common).solve()
    return DifferentialEvolution(objective, bounds, init=init, tol=cfg.tol, atol=cfg.atol, boundary=cfg.boundary,
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
    from .transfer import resolve_compile_mode
    used, why = compile_choice(cfg, engine.device, _hw(engine))  # as build applied it
    if cfg.reference_point is None:
        reference, how = [ev.reference_quality(), 0.0], ("the unstylised content image's quality (the worst "
                                                          "over the pure styles and the default mix), diversity 0")
    else:
        reference, how = [cfg.reference_point[0], -cfg.reference_point[1]], "reference_point in the config"
    return {"config": cfg.to_dict(), "space": space.describe(), "weights": engine.weights_info,
            "environment": environment(engine.device), "seed": cfg.seed,
            "image_size": list(_hw(engine)), "columns": ev.columns, "strategy": resolved_strategy(cfg),
            "compile": {"used": used, "why": why,
                        "mode": resolve_compile_mode(cfg.compile_mode, engine.device) if used else None},
            "hypervolume": {"objectives": [ev.score.quality_column, f"-{ev.score.diversity_column}"],
                            "reference": reference, "how": how}}


def _open_existing(out: Path, log: RunLog) -> tuple[dict, list[dict]]:
    """Check a run to resume (marker, unedited config, state) and load its logged rows: (config.json
    record, candidate rows). The caller holds the run's lock."""
    from .rundir import config_hash, read_marker
    marker = read_marker(out)
    rec = read_json(out / RunLog.CONFIG, "run config")
    if not isinstance(rec, dict) or config_hash(rec.get("config")) != marker.get("config_sha256"):
        raise EvostyleError(f"{out / RunLog.CONFIG} was changed after the run started (its config no longer "
                            f"matches the hash in {out / '.evostyle-run'}); restore it or start a new run")
    if not isinstance(rec.get("hypervolume", {}).get("reference"), list):
        raise EvostyleError(f"{out / RunLog.CONFIG} has no hypervolume reference; start a new run")
    cached, _ = log.resume()
    return rec, cached


def _create(out: Path, overwrite: bool, cfg: SearchConfig, engine, space, ev, log: RunLog) -> dict:
    """Lay out a new run in ``out`` (its lock held by the caller): marker, config.json, empty logs,
    state, the input images. Returns the config.json record."""
    from .images import save_image
    from .rundir import prepare_new, write_marker
    kept = prepare_new(out, overwrite)
    if kept:
        shown = ", ".join(kept[:5]) + (f" and {len(kept) - 5} more" if len(kept) > 5 else "")
        print(f"note: --overwrite replaced the run in {out} and kept {len(kept)} file(s) evostyle did not write: "
              f"{shown}", file=sys.stderr)
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
    from .rundir import layout_files
    if not refused:  # a refused folder was not touched; a failed creation wrote some of the layout
        for f in layout_files(out):
            with contextlib.suppress(OSError):
                f.unlink()
        for sub in ("best", "images"):
            with contextlib.suppress(OSError):
                (out / sub).rmdir()
    lock.discard_if_new()
    if not existed:
        with contextlib.suppress(OSError):
            out.rmdir()  # the folder this call made, now empty


def run_search(cfg: SearchConfig, out: Path | None = None, resume: bool = False, overwrite: bool = False,
               quiet: bool = False, report: bool = True) -> dict:
    """Run (or resume) a search; returns the summary dict (also written to summary.json).

    Every input error is raised before anything is written. The run directory is locked for the
    duration (a second process on it gets a one-line error), SIGINT / SIGTERM / SIGHUP stop it cleanly
    (:mod:`evostyle.signals`), and any other error marks it ``failed``; both can be resumed.
    """
    from .rundir import RunLock, ensure_dir, read_marker

    out = Path(out) if out else _default_out()
    if resume:
        read_marker(out)  # a run evostyle made: nothing (not even a lock file) goes into another folder
        if RunLog.check_state(out).get("status") == "finished":
            if not quiet:
                print(f"note: {out} is already finished; nothing to resume", file=sys.stderr)
            return read_json(out / "summary.json", "run summary")
    engine, space, ev = build(cfg)
    log = RunLog(out, ev.columns, GEN_COLUMNS)
    existed = out.exists()
    with RunLock(out if resume else ensure_dir(out), "resume" if resume else "search") as lock:
        if resume:
            rec, cached = _open_existing(out, log)
        else:
            try:
                rec, cached = _create(out, overwrite, cfg, engine, space, ev, log), []
            except (EvostyleError, OSError) as exc:
                _undo_create(out, lock, existed, refused=isinstance(exc, EvostyleError))
                if is_disk_full(exc):
                    raise ResourceError(f"no space left on device while creating the run in {out}; free some "
                                        "space and run the command again") from None
                raise
        with _state_on_error(log, out):
            summary = _search(cfg, out, engine, space, ev, log, cached, rec["hypervolume"]["reference"], quiet)
        if report:
            from .report import write_report
            with _state_on_error(log, out, status_on_error=None):
                write_report(out)
    return summary


def _search(cfg, out, engine, space, ev, log, cached, reference, quiet) -> dict:
    """The generations (replaying ``cached`` rows), then the baseline and summary.json; state finished."""
    from .de.solver import latin_hypercube
    from .signals import StopSignals
    gen = torch.Generator().manual_seed(cfg.seed)
    init = latin_hypercube(cfg.popsize, space.dim, gen)
    progress = None
    if not quiet:
        from tqdm.auto import tqdm
        progress = tqdm(total=cfg.maxiter + 1, desc="generations", unit="gen", file=sys.stderr)
    t0 = time.perf_counter()
    with StopSignals(quiet) as signals:
        obj = SearchObjective(ev, log, out, cached, progress, objective=cfg.objective,
                              reference=reference, save_images=cfg.save_images, signals=signals)
        try:
            res = _solve(cfg, obj, space.dim, init, engine.device)
        finally:
            if progress is not None:
                progress.close()
        best = obj.best_row
        best_values = {n: float(best[f"param_{n}"]) for n in space.names}
        front, hv = obj.front()
        base = ev.baseline(best_values)
        summary = {"best": {"fitness": float(best["fitness"]), "generation": int(best["generation"]),
                            "candidate": int(best["candidate"]), "params": best_values,
                            "searched": [q.name for q in space.searched],
                            **{c: float(best[c]) for c in SCORE_COLUMNS}},
                   "baseline_same_target": {c: float(base.terms[c][0]) for c in SCORE_COLUMNS},
                   "optimizer": {"name": cfg.optimizer, "objective": cfg.objective,
                                 "strategy": resolved_strategy(cfg) if cfg.optimizer != "random" else None,
                                 "message": str(res.message), "nit": int(res.nit), "nfev_points": obj.nfev,
                                 "success": bool(res.success)},
                   "front": [_front_member(r, space, ev) for r in front], "hypervolume": hv,
                   "hypervolume_reference": list(obj.reference),
                   "seconds": time.perf_counter() - t0, "replayed_generations": obj.replayed,
                   "seconds_by_phase": obj.phase_seconds,
                   "weights": engine.weights_info["used"], "device": str(engine.device), "out": str(out)}
        with signals.critical():
            atomic_write_json(out / "summary.json", summary)
            log.write_state(status="finished")
    return summary


def _config_for_resume(args) -> SearchConfig:
    from .rundir import read_marker
    read_marker(Path(args.resume))  # an evostyle run, before anything in it is read
    rec = read_json(Path(args.resume) / "config.json", "resume config")
    try:
        return make_config(rec["config"])
    except (KeyError, TypeError):
        raise EvostyleError(f"{Path(args.resume) / 'config.json'} is not an evostyle run config") from None


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with cli_errors(args.debug, "evostyle.search"):
        if args.resume:
            given = [k for k in _FLAG_KEYS if getattr(args, k) is not None] + (["config"] if args.config else [])
            if given:
                flags = ", ".join("--" + g.replace("_", "-") for g in given)
                raise EvostyleError(f"--resume uses the run's saved config; drop {flags}")
            if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
                raise EvostyleError("--resume continues a run in its own directory; drop --out")
            cfg, out = _config_for_resume(args), Path(args.resume)
        else:
            cfg, out = config_from_args(args), (Path(args.out) if args.out else _default_out())
        try:
            summary = run_search(cfg, out, resume=bool(args.resume), overwrite=args.overwrite, quiet=args.quiet,
                                 report=not args.no_report)
        except Interrupted as exc:
            print(f"interrupted ({exc.name}); every finished generation is saved. Resume with:\n"
                  f"  python -m evostyle.search --resume {out}", file=sys.stderr)
            return exc.exit_code
        b = summary["best"]
        print(f"run directory: {out}")
        base = summary["baseline_same_target"]["diversity_pixel"]
        print(f"best fitness {b['fitness']:.5g} (fidelity {b['fidelity']:.4g}, pixel diversity "
              f"{b['diversity_pixel']:.4f}; same-target baseline {base:.4f}); front of {len(summary['front'])}, "
              f"hypervolume {summary['hypervolume']:.4g}")
        fixed = len(b["params"]) - len(b["searched"])
        print("best parameters: " + ", ".join(f"{k}={b['params'][k]:.4g}" for k in b["searched"])
              + (f" ({fixed} fixed, in {out / 'summary.json'})" if fixed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
