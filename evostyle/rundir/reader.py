"""Read run directories into pandas, for notebooks and the report.

>>> cands, gens = evostyle.load_run("results/run-...")      # doctest: +SKIP
>>> cands.nsmallest(5, "fitness")[["param_" + n for n in cands.attrs["searched"]]]  # doctest: +SKIP
>>> both, _ = evostyle.load_runs(["results/run-a", "results/run-b"])  # doctest: +SKIP
>>> both.groupby("run").fitness.min()  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from evostyle.errors import EvostyleError
from evostyle.io.atomic import read_json
from evostyle.rundir.files import CANDIDATES, CONFIG, GENERATIONS, LEGACY_COLUMNS
from evostyle.rundir.record import parameter_units, searched_parameters

if TYPE_CHECKING:  # annotations only
    import os
    from collections.abc import Iterable


def load_run(run_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (candidates, generations) DataFrames of a run directory.

    candidates: one row per evaluated candidate; ``generation`` and ``candidate`` int64, ``param_*``,
    ``loss_*``, ``fidelity*``, ``diversity_*``, ``fitness`` and ``gen_seconds_per_candidate`` float64
    (the generation's evaluation time divided by its candidates: a batched transfer gives no candidate
    a time of its own), ``failed`` bool.
    generations: one row per generation: best so far, this generation's best, mean and std (ddof 1, as
    pandas) fitness, nfev, hypervolume, elapsed and evaluation seconds.

    ``candidates.attrs`` (pandas keeps them through most operations on the frame itself):
    ``config`` (config.json), ``searched`` (the searched parameters' names, in search order) and
    ``units`` ({parameter name: unit}, every parameter).
    """
    run_dir = Path(run_dir)
    path = run_dir / CANDIDATES
    if not path.is_file():
        raise EvostyleError(f"{run_dir} is not a run directory (no {CANDIDATES})")
    cands, gens = _read_csv(path), _read_csv(run_dir / GENERATIONS)
    cands = cands.rename(columns=LEGACY_COLUMNS)
    for name, df, need in ((CANDIDATES, cands, ("generation", "candidate", "fitness", "failed")),
                           (GENERATIONS, gens, ("generation", "best_fitness", "nfev"))):
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise EvostyleError(f"{run_dir / name} lacks the column(s) {', '.join(missing)}; it was damaged or "
                                "edited by hand")
    try:
        for col in cands.columns:
            if col in ("generation", "candidate"):
                cands[col] = pd.to_numeric(cands[col], errors="raise").astype("int64")
            elif col == "failed":
                cands[col] = cands[col].astype(str).str.lower().eq("true")
            else:
                cands[col] = pd.to_numeric(cands[col], errors="coerce").astype("float64")
    except (ValueError, TypeError) as exc:
        raise EvostyleError(f"{path} has a row that is not a number where one belongs ({exc}); it was damaged "
                            "or edited by hand") from None
    cfg_path = run_dir / CONFIG
    rec = read_json(cfg_path, "run config") if cfg_path.is_file() else {}
    if rec:
        cands.attrs["config"] = rec
    cands.attrs["searched"] = searched_parameters(rec) or sorted(
        c[len("param_"):] for c in cands.columns if c.startswith("param_"))
    cands.attrs["units"] = parameter_units(rec)
    return cands, gens


def load_runs(run_dirs: Iterable[str | os.PathLike]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Several runs as one (candidates, generations) pair, each row with a ``run`` column naming its
    run (the directory's name; its path where two names are the same), for comparing runs in pandas::

        cands, gens = evostyle.load_runs(["results/run-a", "results/run-b"])
        cands.groupby("run").fitness.min()

    ``candidates.attrs``: ``configs`` ({run: config.json}), ``searched`` ({run: searched names}),
    ``units`` (every run's {parameter: unit}, merged). A parameter that one run has and another
    lacks is NaN in the other's rows.
    """
    paths = [Path(p) for p in run_dirs]
    if not paths:
        raise EvostyleError("load_runs needs at least one run directory")
    names = [p.name for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    if len(set(names)) < len(names):
        raise EvostyleError(f"load_runs got the same run twice: {sorted(n for n in names if names.count(n) > 1)[0]}")
    loaded = [load_run(p) for p in paths]
    cands = pd.concat([c.assign(run=n) for n, (c, _) in zip(names, loaded)], ignore_index=True)
    gens = pd.concat([g.assign(run=n) for n, (_, g) in zip(names, loaded)], ignore_index=True)
    cands.attrs = {"configs": {n: c.attrs.get("config", {}) for n, (c, _) in zip(names, loaded)},
                   "searched": {n: c.attrs["searched"] for n, (c, _) in zip(names, loaded)},
                   "units": {k: v for _, (c, _) in zip(names, loaded) for k, v in c.attrs["units"].items()}}
    return cands[["run", *[c for c in cands.columns if c != "run"]]], gens[["run", *[c for c in gens if c != "run"]]]


def _read_csv(path: Path) -> pd.DataFrame:
    """A run's CSV file, or a one-line error naming it (missing, empty, truncated or not CSV)."""
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise EvostyleError(f"{path} is missing; the run directory is incomplete") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise EvostyleError(f"{path} is not readable CSV ({type(exc).__name__}); it was damaged or edited by "
                            "hand") from None
