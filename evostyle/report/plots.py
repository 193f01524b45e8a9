"""A run's plots as matplotlib figures: its front, convergence, parameter trajectories and slices.

Each ``plot_*`` function takes a run (its directory, a :class:`~evostyle.rundir.result.SearchResult`
or a :class:`RunView`) and returns a :class:`matplotlib.figure.Figure`, as Optuna's visualisation
functions do, for a notebook to show or restyle; :func:`make_plots` writes them as the report's PNGs.
Axes name the scores in the run's vocabulary (:data:`evostyle.rundir.files.WORDS`), with their direction.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
import pandas as pd

from evostyle.io.atomic import atomic_path, read_json
from evostyle.rundir import files
from evostyle.rundir.files import PLOTS, label, metric_of, word

if TYPE_CHECKING:  # annotations only
    from collections.abc import Sequence

    from matplotlib.figure import Figure

    from evostyle.rundir.result import SearchResult


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display), imported on first use so that
    importing evostyle does not load matplotlib."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


@dataclass
class RunView:
    """What the plots and the report read of one run directory, read once.

    ``candidates`` and ``generations`` are :func:`~evostyle.rundir.reader.load_run`'s frames;
    ``columns`` the run's (fidelity, diversity) objective columns; ``reference`` its hypervolume's
    reference point as (fidelity, -diversity), or None; ``baseline`` summary.json's same-target
    baseline of the best candidate ({} if the run did not finish); ``floor`` {metric: the best
    candidate's noise floor} ({} for older runs)."""

    path: Path
    candidates: pd.DataFrame
    generations: pd.DataFrame
    record: dict
    summary: dict
    columns: tuple[str, str]
    reference: tuple[float, float] | None
    baseline: dict = field(default_factory=dict)
    floor: dict = field(default_factory=dict)

    @classmethod
    def of(cls, run: RunLike) -> RunView:
        """The view of ``run``: a path, a :class:`~evostyle.rundir.result.SearchResult` or a view."""
        if isinstance(run, RunView):
            return run
        from evostyle.rundir.reader import load_run
        from evostyle.rundir.record import objective_columns, plan_of
        path = Path(getattr(run, "path", run))
        cands, gens = load_run(path)
        rec = cands.attrs.get("config") or read_json(path / files.CONFIG, "run record")
        summary = read_json(path / files.SUMMARY, "run summary") if (path / files.SUMMARY).exists() else {}
        ref = (plan_of(rec).get("hypervolume") or {}).get("reference")
        ref = tuple(map(float, ref)) if ref is not None and np.isfinite(ref).all() else None
        return cls(path, cands, gens, rec, summary, objective_columns(rec), ref,
                   summary.get("baseline_same_target", {}), (summary.get("noise_floor") or {}).get("floor", {}))

    @property
    def searched(self) -> list[str]:
        return list(self.candidates.attrs.get("searched", []))

    @property
    def units(self) -> dict[str, str]:
        return dict(self.candidates.attrs.get("units", {}))

    @property
    def counted(self) -> pd.DataFrame:
        """The candidates the run's best, front and hypervolume count: those that did not fail and, in
        a multi-fidelity run (a ``steps`` column), whose transfer ran every step."""
        from evostyle.rundir.record import run_settings
        c = self.candidates
        ok = np.isfinite(c.fitness)
        full = run_settings(self.record).get("steps")
        if "steps" in c and full is not None:
            ok &= c.steps == full
        return c[ok]

    @property
    def best(self) -> pd.Series:
        """The best candidate's row: summary.json's best, else the counted row of lowest fitness."""
        b, ok = self.summary.get("best") or {}, self.counted
        if "generation" in b and "candidate" in b:
            rows = ok[(ok.generation == b["generation"]) & (ok.candidate == b["candidate"])]
            if len(rows):
                return rows.iloc[-1]
        return ok.loc[ok.fitness.idxmin()] if len(ok) else self.candidates.iloc[0]


RunLike = Union[str, os.PathLike, "SearchResult", RunView]


def _views(compare: Sequence[RunLike]) -> dict[str, RunView]:
    """{label: view} of the runs to draw beside one: each labelled by its folder's name (the whole
    path where two share a name)."""
    out: dict[str, RunView] = {}
    for run in compare:
        v = RunView.of(run)
        out[v.path.name if v.path.name not in out else str(v.path)] = v
    return out


def pareto_front(fidelity: np.ndarray, diversity: np.ndarray) -> np.ndarray:
    """Boolean mask of the points not dominated for (minimise fidelity, maximise diversity)."""
    from evostyle.de.pareto import non_dominated
    return non_dominated(np.stack([np.asarray(fidelity, float), -np.asarray(diversity, float)], 1))


def _staircase(ax, q: np.ndarray, d: np.ndarray, reference, **style) -> None:
    """Draw the front of points (q, d) as the staircase the hypervolume measures: between two members
    the better diversity reachable is the lower member's, so each step is flat then rises; the last
    step runs to the reference's fidelity when there is one."""
    front = pareto_front(q, d)
    order = np.argsort(q[front], kind="stable")
    fq, fd = q[front][order], d[front][order]
    if len(fq) == 0:
        return
    end = reference[0] if reference is not None and reference[0] > fq[-1] else fq[-1]
    ax.step(np.append(fq, end), np.append(fd, fd[-1]), where="post", **style)
    ax.plot(fq, fd, "o", ms=4, color=style.get("color"))


def _hypervolume_curve(cands: pd.DataFrame, columns: tuple[str, str], reference) -> tuple[list, list]:
    """(evaluations, hypervolume of everything evaluated so far) after each generation of ``cands``,
    against ``reference`` (fidelity, -diversity)."""
    from evostyle.de.pareto import hypervolume_2d
    q, d = columns
    nfev, hv = [], []
    for g in sorted(cands.generation.unique()):
        upto = cands[(cands.generation <= g) & np.isfinite(cands.fitness)]
        nfev.append(int((cands.generation <= g).sum()))
        hv.append(hypervolume_2d(np.stack([upto[q], -upto[d]], 1), reference) if len(upto) else 0.0)
    return nfev, hv


def _integer_axis(axis) -> None:
    from matplotlib.ticker import MaxNLocator
    axis.set_major_locator(MaxNLocator(integer=True))


def plot_front(run: RunLike, compare: Sequence[RunLike] = ()) -> Figure:
    """Fidelity against diversity of every candidate (coloured by generation), the front of everything
    evaluated as a staircase, the same-target baseline, the hypervolume's reference, the best
    candidate's noise floor, and the fronts of the ``compare`` runs."""
    v, plt = RunView.of(run), pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    q, d = v.columns
    ok = v.counted
    sc = ax.scatter(ok[q], ok[d], c=ok.generation, s=14, cmap="viridis", label="candidates")
    _staircase(ax, ok[q].to_numpy(), ok[d].to_numpy(), v.reference, color="r", label="front")
    for i, (name, other) in enumerate(_views(compare).items()):
        o = other.counted
        _staircase(ax, o[q].to_numpy(), o[d].to_numpy(), v.reference, color=f"C{i + 3}", ls=":",
                   label=f"{name}: front")
    if q in v.baseline and d in v.baseline:
        ax.plot([v.baseline[q]], [v.baseline[d]], "ks", ms=7, mfc="none", label="same-target baseline")
    if v.reference is not None:
        ax.plot([v.reference[0]], [-v.reference[1]], "kx", ms=8, label="hypervolume reference")
    level = v.floor.get(metric_of(d))
    if level is not None and np.isfinite(level):  # below it, outputs differ no more than under another seed
        ax.axhline(level, color="0.4", ls=":", lw=1, label="noise floor (best, other seeds)")
    ax.set_title(f"{word(q)} against {word(d)}: the front of {len(ok)} candidates")
    ax.set_xlabel(label(q))
    ax.set_ylabel(label(d))
    bar = fig.colorbar(sc, label="generation")
    _integer_axis(bar.ax.yaxis)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_convergence(run: RunLike, compare: Sequence[RunLike] = ()) -> Figure:
    """Best fitness so far and each generation's mean, with the same-target baseline; beside it the
    hypervolume of the front so far against evaluations (this run's reference for every run)."""
    v, plt = RunView.of(run), pyplot()
    gens, others = v.generations, _views(compare)
    has_hv = "hypervolume" in gens
    fig, axes = plt.subplots(1, 2 if has_hv else 1, figsize=(10 if has_hv else 6, 3.8), squeeze=False)
    ax = axes[0, 0]
    ax.plot(gens.generation, gens.best_fitness, "o-", label="best so far")
    ax.plot(gens.generation, gens.gen_mean, "s--", label="generation mean")
    for i, (name, other) in enumerate(others.items()):
        g = other.generations
        ax.plot(g.generation, g.best_fitness, "^:", color=f"C{i + 3}", label=f"{name}: best so far")
    if "fitness" in v.baseline and math.isfinite(v.baseline["fitness"]):
        ax.axhline(v.baseline["fitness"], color="k", ls="--", lw=1, label="same-target baseline")
    ax.set_title("fitness by generation")
    ax.set_xlabel("generation")
    _integer_axis(ax.xaxis)
    ax.set_ylabel(label("fitness"))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    if has_hv:
        ax = axes[0, 1]
        ax.plot(gens.nfev, gens.hypervolume, "o-", color="C2", label="this run")
        if v.reference is not None:
            for i, (name, other) in enumerate(others.items()):
                ax.plot(*_hypervolume_curve(other.candidates, v.columns, v.reference), "^:", color=f"C{i + 3}",
                        label=name)
        ax.set_title("hypervolume of the front so far")
        ax.set_xlabel("evaluations (candidates)")
        _integer_axis(ax.xaxis)
        ax.set_ylabel("hypervolume (higher is better)")
        if others:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _unit_label(name: str, units: dict[str, str]) -> str:
    return f"{name} ({units[name]})" if units.get(name) else name


def plot_parameters(run: RunLike) -> Figure:
    """Each searched parameter's value against the generation: every candidate, and each generation's
    best."""
    v = RunView.of(run)
    cands, searched = v.candidates, v.searched
    cols = min(3, max(1, len(searched)))
    rows = math.ceil(max(1, len(searched)) / cols)
    fig, axes = pyplot().subplots(rows, cols, figsize=(3.4 * cols, 2.7 * rows), squeeze=False)
    ok = v.counted
    best_per_gen = ok.loc[ok.groupby("generation").fitness.idxmin()] if len(ok) else ok
    for ax, name in zip(axes.flat, searched):
        col = f"param_{name}"
        ax.scatter(cands.generation, cands[col], s=10, alpha=0.4, label="candidates")
        if len(best_per_gen):
            ax.plot(best_per_gen.generation, best_per_gen[col], "r.-", label="generation best")
        ax.set_title(f"{name} by generation", fontsize=9)
        ax.set_ylabel(_unit_label(name, v.units), fontsize=8)
        ax.set_xlabel("generation", fontsize=8)
        _integer_axis(ax.xaxis)
    for ax in list(axes.flat)[len(searched):]:
        ax.axis("off")
    if searched:
        axes.flat[0].legend(fontsize=7)
    else:  # nothing searched: say so instead of an empty frame
        axes.flat[0].text(0.5, 0.5, "no parameter searched", ha="center", va="center")
    fig.tight_layout()
    return fig


def plot_slices(run: RunLike) -> Figure:
    """Optuna's slice view: each objective (fitness for a scalar run; fidelity and diversity for a
    Pareto run, side by side) against each searched parameter, every candidate a dot coloured by
    generation; where a parameter matters, its dots lean or bunch."""
    v, plt = RunView.of(run), pyplot()
    objective = (v.record.get("config", {}).get("de") or {}).get("objective", "scalar")
    ys = list(v.columns) if objective != "scalar" else ["fitness"]
    panels = [(y, name) for name in v.searched for y in ys]
    cols = len(ys) if len(ys) > 1 else min(3, max(1, len(panels)))
    rows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), squeeze=False, layout="constrained")
    ok, sc = v.counted, None
    for ax, (y, name) in zip(axes.flat, panels):
        sc = ax.scatter(ok[f"param_{name}"], ok[y], c=ok.generation, s=10, cmap="viridis")
        ax.set_title(f"{word(y)} against {name}", fontsize=9)
        ax.set_xlabel(v.units.get(name) or name, fontsize=8)
        ax.set_ylabel(label(y), fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if not panels:
        axes.flat[0].text(0.5, 0.5, "no parameter searched", ha="center", va="center")
    if sc is not None and len(ok):
        bar = fig.colorbar(sc, ax=axes, label="generation", shrink=0.6)
        _integer_axis(bar.ax.yaxis)
    return fig


def _save(fig, path: Path) -> Path:
    """Save and close a figure, atomically."""
    plt = pyplot()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def make_plots(run: RunLike, compare: Sequence[RunLike] = ()) -> list[Path]:
    """Write the report's PNGs into the run directory (:data:`~evostyle.rundir.files.PLOTS`, in that
    order: front, convergence, parameters, slices); ``compare`` runs are drawn on the front and the
    convergence (their hypervolume measured against this run's reference, so that the curves
    compare)."""
    v = RunView.of(run)
    others = list(_views(compare).values())
    figures = {files.PLOT_FRONT: lambda: plot_front(v, others),
               files.PLOT_CONVERGENCE: lambda: plot_convergence(v, others),
               files.PLOT_PARAMS: lambda: plot_parameters(v), files.PLOT_SLICES: lambda: plot_slices(v)}
    return [_save(figures[name](), v.path / name) for name in PLOTS]
