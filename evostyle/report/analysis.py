"""Load run directories into pandas for notebooks.

>>> cands, gens = evostyle.load_run("results/run-...")      # doctest: +SKIP
>>> cands.nsmallest(5, "fitness")[["param_angle_0", "loss_score", "diversity_pixel"]]  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from evostyle.errors import EvostyleError
from evostyle.io.atomic import read_json

if TYPE_CHECKING:  # annotations only
    import os


def load_run(run_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
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
    cands, gens = _read_csv(path), _read_csv(run_dir / "generations.csv")
    for name, df, need in (("candidates.csv", cands, ("generation", "candidate", "fitness", "failed")),
                           ("generations.csv", gens, ("generation", "best_fitness", "nfev"))):
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
    cfg_path = run_dir / "config.json"
    if cfg_path.is_file():
        cands.attrs["config"] = read_json(cfg_path, "run config")
    return cands, gens


def _read_csv(path: Path) -> pd.DataFrame:
    """A run's CSV file, or a one-line error naming it (missing, empty, truncated or not CSV)."""
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise EvostyleError(f"{path} is missing; the run directory is incomplete") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise EvostyleError(f"{path} is not readable CSV ({type(exc).__name__}); it was damaged or edited by "
                            "hand") from None


def run_settings(record: dict) -> dict:
    """A run record's (config.json's) settings as one flat {name: value} dict, whether the config is
    nested by section (evostyle >= 0.2) or flat (older runs)."""
    cfg = record.get("config", {}) if isinstance(record, dict) else {}
    if not isinstance(cfg, dict):
        return {}
    flat = {}
    for key, value in cfg.items():
        if key in ("run", "de", "space", "transfer", "scoring") and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    if "population" in flat:
        flat.setdefault("popsize", flat["population"])
    return flat
