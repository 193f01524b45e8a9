"""What a search hands back: :class:`SearchResult` for the finished run, and :class:`Generation` for a
per-generation callback.

``run_search(cfg, out, callback=fn)`` calls ``fn(generation)`` after every generation after the first
(as scipy's DE calls its callback), replayed ones of a resumed run included; returning True stops the
search there, cleanly: the run is finished, its summary says "callback function requested stop early".
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evostyle.rundir.files import PLOTS, SUMMARY, baseline_output, best_output, metric_of, word

if TYPE_CHECKING:  # annotations only
    import os

    import pandas as pd


@dataclass
class Generation:
    """The state of a search after one generation (for a callback)."""

    generation: int
    nfev: int
    """Candidates evaluated so far."""
    best_fitness: float
    best: dict
    """The best candidate's row so far (param_*, loss_*, fidelity*, diversity_*, fitness)."""
    hypervolume: float
    front_size: int
    rows: list[dict]
    """This generation's candidate rows."""


@dataclass
class SearchResult:
    """A finished (or resumed and finished) search: its run directory and summary.json, typed.

    The summary's keys stay readable as items (``result["best"]``), so code written against the dict
    that ``run_search`` used to return keeps working.
    """

    path: Path
    summary: dict = field(repr=False)

    @classmethod
    def from_dir(cls, path: str | os.PathLike) -> SearchResult:
        """The result of the finished run in ``path`` (its summary.json)."""
        from evostyle.io.atomic import read_json
        return cls(Path(path), read_json(Path(path) / SUMMARY, "run summary"))

    # -- the summary, typed ---------------------------------------------------------------------------
    @property
    def best(self) -> dict:
        """The best candidate: fitness, generation, candidate, params (all), searched (names), scores."""
        return self.summary["best"]

    @property
    def best_params(self) -> dict[str, float]:
        return dict(self.best["params"])

    @property
    def fitness(self) -> float:
        return float(self.best["fitness"])

    @property
    def baseline(self) -> dict:
        """The best candidate's same-target baseline (every output with angle_0's target)."""
        return self.summary["baseline_same_target"]

    @property
    def noise_floor(self) -> dict:
        """The best candidate re-run with other seeds (:mod:`evostyle.search.floor`): ``seeds``,
        ``floor`` {metric: distance between the same output under two seeds} and ``diversity``
        {metric: its diversity under each seed}; empty for runs older than the floor."""
        return dict(self.summary.get("noise_floor", {}))

    @cached_property
    def objective_columns(self) -> tuple[str, str]:
        """The run's (fidelity, diversity) columns as its config.json records them: ``fidelity`` (or
        ``loss_score`` with ``fitness_loss = own_target``) and ``diversity_feature`` or
        ``diversity_pixel``; (``loss_score``, ``diversity_pixel``) for runs older than the record."""
        from evostyle.errors import EvostyleError
        from evostyle.io.atomic import read_json
        from evostyle.rundir.files import CONFIG
        from evostyle.rundir.record import objective_columns
        try:
            return objective_columns(read_json(self.path / CONFIG, "run record"))
        except EvostyleError:  # no record: what a run older than the record scored
            return objective_columns({})

    @property
    def diversity_column(self) -> str:
        """The diversity the run's objectives use (its second :attr:`objective_columns`)."""
        return self.objective_columns[1]

    @property
    def front(self) -> pd.DataFrame:
        """The non-dominated candidates among all evaluated, one row each as candidates.csv names its
        columns: ``generation``, ``candidate``, ``param_<name>`` (each searched parameter), the objective
        columns and ``fitness``, and ``images`` (the member's output files, relative to the run).
        Sorted as summary.json keeps it; empty (with those first two columns) for a run without one."""
        import pandas as pd
        rows = [{"generation": m["generation"], "candidate": m["candidate"],
                 **{f"param_{k}": v for k, v in m.get("params", {}).items()},
                 **{k: v for k, v in m.items() if k not in ("generation", "candidate", "params")}}
                for m in self.summary.get("front", [])]
        return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["generation", "candidate"])

    @property
    def _front_size(self) -> int:
        return len(self.summary.get("front", []))

    @property
    def hypervolume(self) -> float:
        return float(self.summary.get("hypervolume", 0.0))

    @property
    def optimizer(self) -> dict:
        return self.summary["optimizer"]

    @property
    def seconds(self) -> float:
        return float(self.summary["seconds"])

    def headline(self) -> str:
        """The run in a line: the best candidate against its same-target baseline (the same candidate
        with every output given angle_0's target: what the search's diversity is worth), and the
        front."""
        nan = float("nan")
        q, d = self.objective_columns

        def scores(row: dict) -> str:
            return (f"fitness {row.get('fitness', nan):.5g} ({word(q)} {row.get(q, nan):.4g}, {word(d)} "
                    f"{row.get(d, nan):.4f})")
        floor = self.noise_floor.get("floor", {}).get(metric_of(d))
        floor = "" if floor is None else f", noise floor {floor:.4f}"
        return (f"best {scores(self.best)}{floor} vs same-target baseline {scores(self.baseline)}; front of "
                f"{self._front_size}, hypervolume {self.hypervolume:.4g}")

    def __repr__(self) -> str:
        """As scipy's ``OptimizeResult`` prints: the message, the best value and parameters, the counts
        (and the front, the path)."""
        nan = float("nan")
        b, opt = self.best, self.summary.get("optimizer", {})
        q, d = self.objective_columns
        rows = [("message", opt.get("message", "")), ("success", opt.get("success", "")),
                ("fun", f"{b.get('fitness', nan):.6g} (fitness: {word(q)} {b.get(q, nan):.4g}, "
                        f"{word(d)} {b.get(d, nan):.4g})"),
                ("x", ", ".join(f"{k}={b['params'][k]:.4g}" for k in b.get("searched", []))),
                ("nit", opt.get("nit", "")), ("nfev", opt.get("nfev_points", opt.get("nfev", ""))),
                ("front", f"{self._front_size} candidates, hypervolume {self.hypervolume:.4g}"),
                ("path", self.path)]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:>{width}}: {v}" for k, v in rows)

    def __getitem__(self, key: str) -> Any:
        return self.summary[key]

    def __contains__(self, key: str) -> bool:
        return key in self.summary

    # -- the run directory ----------------------------------------------------------------------------
    def candidates(self) -> pd.DataFrame:
        """candidates.csv as a DataFrame (see :func:`evostyle.load_run`)."""
        from evostyle.rundir.reader import load_run
        return load_run(self.path)[0]

    def generations(self) -> pd.DataFrame:
        """generations.csv as a DataFrame (see :func:`evostyle.load_run`)."""
        from evostyle.rundir.reader import load_run
        return load_run(self.path)[1]

    def best_images(self) -> list[Path]:
        """The best candidate's output files (best/output_<k>.png), in the order of k."""
        return _numbered(self.path, best_output)

    def baseline_images(self) -> list[Path]:
        """The same-target baseline's output files (best/baseline_<k>.png), in the order of k."""
        return _numbered(self.path, baseline_output)

    def _repr_html_(self) -> str:
        """Inline in Jupyter: the summary line, the best outputs and the convergence and front plots."""
        from evostyle.io.images import data_uri
        b = self.best
        searched = ", ".join(f"{k}={b['params'][k]:.4g}" for k in b.get("searched", []))
        imgs = "".join(f'<img src="{data_uri(p)}" style="height:160px;margin:2px" alt="{p.name}">'
                       for p in self.best_images())
        plots = "".join(f'<img src="{data_uri(p)}" style="max-width:48%;margin:2px" alt="{p.name}">'
                        for p in (self.path / PLOTS[0], self.path / PLOTS[1]) if p.is_file())
        return (f"<div><b>evostyle run</b> <code>{html.escape(str(self.path))}</code>: "
                f"{html.escape(self.headline())}<br>{html.escape(searched)}<br>{imgs}<br>{plots}</div>")


def _numbered(run: Path, name) -> list[Path]:
    """run / name(0), run / name(1), ... while they exist."""
    found = []
    while (run / name(len(found))).is_file():
        found.append(run / name(len(found)))
    return found
