"""The run report's PNG plots: convergence and hypervolume, parameter trajectories, quality against diversity."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evostyle.io.atomic import atomic_path
from evostyle.rundir.files import PLOTS

if TYPE_CHECKING:  # annotations only
    from collections.abc import Sequence



def _save_fig(fig, path: Path) -> None:
    """Save and close a matplotlib figure, atomically."""
    plt = pyplot()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display), imported on first use so that
    importing evostyle does not load matplotlib."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def pareto_front(quality: np.ndarray, diversity: np.ndarray) -> np.ndarray:
    """Boolean mask of the points not dominated for (minimise quality, maximise diversity)."""
    from evostyle.de.pareto import non_dominated
    return non_dominated(np.stack([np.asarray(quality, float), -np.asarray(diversity, float)], 1))


def make_plots(
    run: Path,
    cands: pd.DataFrame,
    gens: pd.DataFrame,
    searched: list[str],
    columns: tuple[str, str] = ("fidelity", "diversity_pixel"),
    reference: Sequence[float] | None = None,
    units: dict[str, str] | None = None,
    baseline: dict | None = None,
    others: dict[str, tuple[pd.DataFrame, pd.DataFrame]] | None = None,
    floor: dict[str, float] | None = None,
) -> list[Path]:
    """Write the convergence, parameter-trajectory and quality-vs-diversity PNGs into ``run``;
    ``columns`` are the (quality, diversity) columns, ``reference`` the hypervolume's reference point
    as (quality, -diversity), ``units`` each parameter's unit for its axis label, ``baseline`` the
    best candidate's same-target baseline (summary.json's: its fitness and scores, drawn on the
    convergence and quality-vs-diversity plots), ``others`` {label: (candidates, generations)} of
    runs to draw beside this one (``--compare``; their hypervolume measured against this run's
    reference, so that the curves compare), ``floor`` {metric: the best candidate's noise floor}
    (summary.json's ``noise_floor.floor``, drawn on the quality-vs-diversity plot)."""
    return [_convergence(run, gens, reference, columns, baseline, others or {}),
            _trajectories(run, cands, searched, units or {}),
            _pareto(run, cands, columns, reference, baseline, others or {}, floor or {})]


def _hypervolume_curve(cands: pd.DataFrame, columns: tuple[str, str], reference) -> tuple[list, list]:
    """(evaluations, hypervolume of everything evaluated so far) after each generation of ``cands``,
    against ``reference`` (quality, -diversity)."""
    from evostyle.de.pareto import hypervolume_2d
    q, d = columns
    nfev, hv = [], []
    for g in sorted(cands.generation.unique()):
        upto = cands[(cands.generation <= g) & np.isfinite(cands.fitness)]
        nfev.append(int((cands.generation <= g).sum()))
        hv.append(hypervolume_2d(np.stack([upto[q], -upto[d]], 1), reference) if len(upto) else 0.0)
    return nfev, hv


def _convergence(run, gens, reference, columns, baseline, others) -> Path:
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator
    has_hv = "hypervolume" in gens
    fig, axes = plt.subplots(1, 2 if has_hv else 1, figsize=(10 if has_hv else 6, 3.6), squeeze=False)
    ax = axes[0, 0]
    ax.plot(gens.generation, gens.best_fitness, "o-", label="best so far")
    ax.plot(gens.generation, gens.gen_mean, "s--", label="generation mean")
    for i, (label, (_, g)) in enumerate(others.items()):
        ax.plot(g.generation, g.best_fitness, "^:", color=f"C{i + 3}", label=f"{label}: best so far")
    if baseline and "fitness" in baseline and math.isfinite(baseline["fitness"]):
        ax.axhline(baseline["fitness"], color="k", ls="--", lw=1, label="same-target baseline")
    ax.set_xlabel("generation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("fitness (lower is better)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    if has_hv:
        ax = axes[0, 1]
        ax.plot(gens.nfev, gens.hypervolume, "o-", color="C2", label="this run")
        if reference is not None and np.isfinite(reference).all():
            for i, (label, (c, _)) in enumerate(others.items()):
                ax.plot(*_hypervolume_curve(c, columns, reference), "^:", color=f"C{i + 3}", label=label)
        ax.set_xlabel("evaluations (candidates)")
        ax.set_ylabel("hypervolume of the front so far")
        if others:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save_fig(fig, run / PLOTS[0])
    return run / PLOTS[0]


def _trajectories(run, cands, searched, units) -> Path:
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator
    n = max(1, len(searched))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows), squeeze=False)
    ok = cands[np.isfinite(cands.fitness)]
    best_per_gen = ok.loc[ok.groupby("generation").fitness.idxmin()] if len(ok) else ok
    for ax, name in zip(axes.flat, searched):
        col = f"param_{name}"
        ax.scatter(cands.generation, cands[col], s=10, alpha=0.4, label="candidates")
        if len(best_per_gen):
            ax.plot(best_per_gen.generation, best_per_gen[col], "r.-", label="generation best")
        ax.set_title(name, fontsize=9)
        unit = units.get(name, "")
        ax.set_ylabel(f"{name} ({unit})" if unit else name, fontsize=8)
        ax.set_xlabel("generation", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in list(axes.flat)[len(searched):]:
        ax.axis("off")
    if len(searched):
        axes.flat[0].legend(fontsize=7)
    else:  # nothing searched: say so instead of an empty frame
        axes.flat[0].text(0.5, 0.5, "no parameter searched", ha="center", va="center")
    fig.tight_layout()
    _save_fig(fig, run / PLOTS[1])
    return run / PLOTS[1]


def _pareto(run, cands, columns, reference, baseline, others, floor) -> Path:
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator
    fig, ax = plt.subplots(figsize=(5.5, 4))
    qcol, dcol = columns
    ok = cands[np.isfinite(cands.fitness)]
    loss, div = ok[qcol].to_numpy(), ok[dcol].to_numpy()
    sc = ax.scatter(loss, div, c=ok.generation, s=14, cmap="viridis", label="candidates")
    front = pareto_front(loss, div)
    order = np.argsort(loss[front])
    ax.plot(loss[front][order], div[front][order], "r-o", ms=4, label="Pareto front")
    for i, (label, (c, _)) in enumerate(others.items()):
        c = c[np.isfinite(c.fitness)]
        lq, ld = c[qcol].to_numpy(), c[dcol].to_numpy()
        f = pareto_front(lq, ld)
        o = np.argsort(lq[f])
        ax.plot(lq[f][o], ld[f][o], "^:", color=f"C{i + 3}", ms=4, label=f"{label}: front")
    if baseline and qcol in baseline and dcol in baseline:
        ax.plot([baseline[qcol]], [baseline[dcol]], "ks", ms=7, mfc="none", label="same-target baseline")
    if reference is not None and np.isfinite(reference).all():
        ax.plot([reference[0]], [-reference[1]], "kx", ms=8, label="hypervolume reference")
    level = floor.get(dcol.removeprefix("diversity_"))
    if level is not None and np.isfinite(level):  # below it, outputs differ no more than under another seed
        ax.axhline(level, color="0.4", ls=":", lw=1, label="noise floor (best, other seeds)")
    ax.set_xlabel(f"{qcol} (lower is better)")
    ax.set_ylabel(f"{dcol} (higher is more diverse)")
    fig.colorbar(sc, label="generation", ticks=MaxNLocator(integer=True))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save_fig(fig, run / PLOTS[2])
    return run / PLOTS[2]
