"""Load run directories into pandas for notebooks.

>>> cands, gens = evostyle.load_run("results/run-...")      # doctest: +SKIP
>>> cands.nsmallest(5, "fitness")[["param_angle_0", "loss_score", "diversity_pixel"]]  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .errors import EvostyleError


def load_run(run_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (candidates, generations) DataFrames of a run directory.

    candidates: one row per evaluated candidate; ``generation`` and ``candidate`` int64, ``param_*``,
    ``loss_*``, ``diversity_*``, ``fitness`` and ``seconds`` float64, ``failed`` bool. The run's config
    is attached as ``candidates.attrs["config"]``.
    generations: one row per generation (best, mean, std fitness, nfev, elapsed seconds).
    """
    run_dir = Path(run_dir)
    path = run_dir / "candidates.csv"
    if not path.is_file():
        raise EvostyleError(f"{run_dir} is not a run directory (no candidates.csv)")
    cands = pd.read_csv(path)
    gens = pd.read_csv(run_dir / "generations.csv")
    for col in cands.columns:
        if col in ("generation", "candidate"):
            cands[col] = cands[col].astype("int64")
        elif col == "failed":
            cands[col] = cands[col].astype(str).str.lower().eq("true")
        else:
            cands[col] = pd.to_numeric(cands[col], errors="coerce").astype("float64")
    cfg_path = run_dir / "config.json"
    if cfg_path.is_file():
        cands.attrs["config"] = json.loads(cfg_path.read_text())
    return cands, gens
