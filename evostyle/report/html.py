"""Report for a run directory: PNG plots, a Markdown summary and a self-contained ``report.html``.

``python -m evostyle.report RUN_DIR`` (also run at the end of every search). The report reads only
the run directory. Images are embedded as data URIs, so the page opens offline and can be mailed as
one file; every string that came from the user (paths, names, config values) is HTML-escaped.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evostyle.errors import EvostyleError
from evostyle.io.atomic import atomic_write_text, read_json
from evostyle.io.images import data_uri
from evostyle.report.plots import make_plots
from evostyle.rundir import files
from evostyle.rundir.reader import load_run
from evostyle.rundir.record import objective_columns, parameter_units, plan_of, run_settings, searched_parameters
from evostyle.rundir.result import SearchResult

if TYPE_CHECKING:  # annotations only
    import os
    from collections.abc import Sequence


DISPLAY_PX = 256
"""Images are shown at least this many CSS px on their long side: a 64 px output is drawn 4x larger."""


def _img(path: Path, caption: str, min_long: int = DISPLAY_PX) -> str:
    """A captioned image, scaled up for display (never down) to ``min_long`` px on its long side with
    nearest-neighbour sampling, so that a small output shows its real pixels; the caption says so."""
    from PIL import Image
    with Image.open(path) as im:
        w, h = im.size
    scale = max(1.0, min_long / max(w, h))
    style = ""
    if scale > 1:
        caption = f"{caption} ({w}x{h} px, shown {scale:.3g}x, nearest-neighbour)"
        style = ' style="image-rendering:pixelated"'
    return (f'<figure><img src="{data_uri(path)}" width="{round(w * scale)}" height="{round(h * scale)}"{style} '
            f'alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>')


def markdown_table(rows: list[dict], cols: list[str], digits: int = 3) -> str:
    """Markdown table of ``rows`` (dicts) in ``cols``: floats to ``digits`` significant digits, NaN as
    n/a (not measured), a missing key as an empty cell."""
    def cell(v) -> str:
        if isinstance(v, float):
            return "n/a" if v != v else f"{v:.{digits}g}"
        return str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _rows_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1150px;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 7px}
th{background:#f3f3f3;text-align:left}.wide{max-width:100%;overflow-x:auto}
figure{display:inline-block;margin:4px;text-align:center;vertical-align:top}
figure img{display:block;max-width:100%;height:auto}figcaption{font-size:11px;max-width:280px;margin:auto}
.plots img{max-width:100%;height:auto}.warn{color:#a40}code{background:#f5f5f5;padding:1px 3px;word-break:break-all}
.cand{border-top:1px solid #ddd;padding:6px 0}"""


def _executor_line(summary: dict) -> str:
    """Where the generations ran (summary.json ``executor``): local, or Ray with its actors and events."""
    ex = summary.get("executor") or {"name": "local"}
    if ex.get("name") != "ray":
        return str(ex.get("name"))
    where = sorted({f"{a.get('gpu') or a.get('device')} on {a.get('node')}" for a in ex.get("actors", [])})
    lost = len(ex.get("events", []))
    return (f"ray, {len(ex.get('actors', []))} actor(s): {', '.join(where)}"
            + (f"; {lost} actor(s) lost and their candidates rerun (state.json events)" if lost else ""))


def _parameters_html(space: list[dict], best: pd.Series) -> str:
    """Every parameter of the run, searched or fixed, with its range or value, scale, unit and the
    best candidate's value."""
    rows = []
    for p in space:
        fixed = p.get("fixed")
        col = f"param_{p['name']}"
        rows.append((p["name"], "searched" if fixed is None else "fixed",
                     f"{p['low']:.4g} .. {p['high']:.4g}" if fixed is None else f"{fixed:.4g}", p.get("scale", ""),
                     p.get("unit") or "-", float(best[col]) if col in best else fixed))
    return _rows_table(["parameter", "", "range / value", "scale", "unit", "best candidate"], rows)


def _candidate_html(run: Path, row: pd.Series, k: int, searched: Sequence[str], title: str,
                    columns: Sequence[str]) -> str:
    """One candidate: where it was evaluated, its scores and searched parameters, and its outputs
    (images/, when the run saved them)."""
    g, c = int(row["generation"]), int(row["candidate"])
    scores = ", ".join(f"{name} {row[name]:.4g}" for name in columns if name in row)
    params = ", ".join(f"{n}={row[f'param_{n}']:.4g}" for n in searched)
    figs = [_img(run / files.candidate_image(g, c, j), f"output {j}") for j in range(k)
            if (run / files.candidate_image(g, c, j)).is_file()]
    if not figs:
        figs = ["<p><i>outputs not saved (save_images keeps each generation's best and the front)</i></p>"]
    return (f'<div class="cand"><p><b>{html.escape(title)}</b>: generation {g}, candidate {c}; '
            f"{html.escape(scores)}<br>{html.escape(params)}</p>{''.join(figs)}</div>")


def _front_html(run: Path, summary: dict, columns: tuple[str, str], k: int) -> str:
    """The Pareto front of everything evaluated (summary.json ``front``), each member with its outputs."""
    front = summary.get("front")
    if not front:
        return ""
    q, d = columns
    members = []
    for m in sorted(front, key=lambda m: m.get(q, 0.0)):
        figs = [_img(run / p, f"output {j}") for j, p in enumerate(m.get("images", [])) if (run / p).is_file()]
        params = ", ".join(f"{n}={v:.4g}" for n, v in m.get("params", {}).items())
        members.append(f'<div class="cand"><p><b>generation {m["generation"]}, candidate {m["candidate"]}</b>: '
                       f"{html.escape(q)} {m.get(q, float('nan')):.4g}, {html.escape(d)} {m.get(d, float('nan')):.4f}; "
                       f"{html.escape(params)}</p>{''.join(figs)}</div>")
    hv = summary.get("hypervolume")
    ref = summary.get("hypervolume_reference")
    head = (f"<h2>Pareto front ({len(front)} candidates)</h2><p>Non-dominated among all evaluated candidates for "
            f"(lower {html.escape(q)}, higher {html.escape(d)}); hypervolume {hv:.4g} against the reference "
            f"{html.escape(q)} {ref[0]:.4g}, {html.escape(d)} {0.0 - ref[1]:.4g}.</p>" if hv is not None and ref else
            f"<h2>Pareto front ({len(front)} candidates)</h2>")
    return head + "".join(members)


def _wall_time(summary: dict, gens: pd.DataFrame) -> str:
    """The run's wall time as summary.json gives it (the whole search), with the generations' share
    (generations.csv's ``elapsed``: the rest is the same-target baseline and the noise floor)."""
    loop = f"{gens.elapsed.iloc[-1]:.1f} s" if len(gens) else None
    if summary.get("seconds") is None:
        return loop or "?"
    return f"{summary['seconds']:.1f} s" + (f" (generations {loop}, then the baseline and the noise floor)"
                                             if loop else "")


def _worth_html(run: Path, best: pd.Series, base: dict, columns: tuple[str, str], best_imgs: list[str],
                floor: dict) -> str:
    """The report's first answer, "was the search worth it": the best candidate's outputs beside its
    same-target baseline's (the same candidate, every output with angle_0's target), with both
    fitnesses, qualities and diversities (``columns``: the run's objectives), and the best's noise
    floor (``floor``: summary.json's ``noise_floor``, empty for older runs)."""
    nan = float("nan")
    q, d = columns
    line = lambda what, row: (f"{what}: fitness <b>{row.get('fitness', nan):.4g}</b>, {html.escape(q)} "
                              f"{row.get(q, nan):.4g}, {html.escape(d)} <b>{row.get(d, nan):.4f}</b>")
    out = [f"<h2>Was the search worth it?</h2><p>{line('Best candidate', best.to_dict())}<br>"]
    if floor.get("floor"):
        levels = ", ".join(f"{html.escape(m)} {v:.4f}" for m, v in floor["floor"].items())
        out.append(f"Noise floor: {levels} (how far the best candidate's outputs move when only its seed changes, "
                   f"re-run with seeds {', '.join(map(str, floor.get('seeds', [])))}; diversity at the floor is "
                   "what a re-run gives anyway)<br>")
    if base:
        out.append(line("Same-target baseline (all outputs with angle_0's target)", base) + "</p>")
    else:
        out.append("(no same-target baseline: the run did not finish)</p>")
    out.append(f"<h3>Best candidate</h3><div>{''.join(best_imgs)}</div>")
    base_imgs = [_img(p, f"baseline output {k}") for k, p in enumerate(SearchResult(run, {}).baseline_images())]
    if base_imgs:
        out.append(f"<h3>Its same-target baseline</h3><div>{''.join(base_imgs)}</div>")
    return "".join(out)


def write_report(run_dir: str | os.PathLike, top: int = 10, status: str | None = None,
                 compare: Sequence[str | os.PathLike] = ()) -> Path:
    """Build plots, ``summary.md`` and ``report.html`` for ``run_dir``; returns the HTML path.
    ``status`` overrides what state.json says (the report CLI passes the effective status);
    ``compare`` names other runs (another optimiser, random search) whose best fitness, hypervolume
    and front are drawn on this run's plots."""
    run = Path(run_dir)
    cands, gens = load_run(run)
    others = {}
    for other in compare:
        label = Path(other).name if Path(other).name not in others else str(other)
        others[label] = load_run(other)
    if cands.empty:
        raise EvostyleError(f"{run} has no evaluated candidates yet; nothing to report")
    rec = cands.attrs.get("config") or read_json(run / files.CONFIG, "run config")  # load_run read it
    cfg, plan = run_settings(rec), plan_of(rec)
    summary = read_json(run / files.SUMMARY, "run summary") if (run / files.SUMMARY).exists() else {}
    state = read_json(run / files.STATE, "run state") if (run / files.STATE).exists() else {}
    searched = searched_parameters(rec)
    columns = objective_columns(rec)
    base = summary.get("baseline_same_target", {})
    floor = summary.get("noise_floor", {})
    make_plots(run, cands, gens, searched, columns, (plan.get("hypervolume") or {}).get("reference"),
               parameter_units(rec), base, others, floor.get("floor"))

    weights = rec.get("weights", {})
    env = rec.get("environment", {})
    n_failed = int(cands.failed.sum())
    info = [("status", status or state.get("status", "?")), ("content", cfg.get("content")),
            ("styles", ", ".join(map(str, cfg.get("style", [])))), ("optimizer", cfg.get("optimizer")),
            ("strategy", plan.get("strategy") or cfg.get("strategy") or "-"), ("population x generations",
                                                f"{cfg.get('population')} x {int(gens.generation.max()) + 1}"),
            ("outputs per candidate", cfg.get("outputs")), ("searched", ", ".join(searched)),
            ("rotation mode", cfg.get("rotation_mode")), ("measure", cfg.get("measure")),
            ("size / steps", f"{cfg.get('size')} px / {cfg.get('steps')} steps"),
            ("weights used", f"{weights.get('used')} {str(weights.get('backbone', 'vgg19')).upper()} (spec "
                             f"{weights.get('spec')}, {weights.get('preprocessing', 'torchvision')} preprocessing)"),
            ("device", env.get("gpu") or env.get("device")), ("executor", _executor_line(summary)),
            ("torch", env.get("torch")),
            ("seed", rec.get("seed")), ("evaluations", len(cands)), ("failed candidates", n_failed),
            ("wall time", _wall_time(summary, gens))]
    info_html = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in info)

    best = cands.loc[cands.fitness.idxmin()] if np.isfinite(cands.fitness).any() else cands.iloc[0]
    k = int(cfg.get("outputs", 1))
    imgs = [_img(run / files.CONTENT, f"content: {Path(str(cfg.get('content'))).name}")]
    for i, s in enumerate(cfg.get("style", [])):
        if (run / files.style_image(i)).exists():
            imgs.append(_img(run / files.style_image(i), f"style {i}: {Path(str(s)).name}"))
    best_imgs = []
    for j in range(k):
        p = run / files.best_output(j)
        if p.exists():
            angle = best.get(f"param_angle_{j}", float("nan"))
            best_imgs.append(_img(p, f"best output {j} (angle {angle:.0f} deg)"))
    score_cols = [c for c in ("fitness", "fidelity", "loss_score", "diversity_pixel", "diversity_feature")
                  if c in cands]
    ranked = cands[np.isfinite(cands.fitness)].sort_values("fitness", kind="stable")
    top_html = "".join(_candidate_html(run, r, k, searched, f"#{i + 1}", score_cols)
                       for i, (_, r) in enumerate(ranked.head(min(top, 5)).iterrows()))
    gen_best = ranked.groupby("generation", sort=True).head(1).sort_values("generation").tail(4)
    others = "".join(_candidate_html(run, r, k, searched, f"best of generation {int(r.generation)}", score_cols)
                     for _, r in gen_best.iterrows())

    cols = ["generation", "candidate"] + [f"param_{n}" for n in searched] + score_cols[1:] + ["fitness"]
    top_df = cands.sort_values("fitness", kind="stable").head(top)[cols]
    worth_html = _worth_html(run, best, base, columns, best_imgs, floor)
    warn = ""
    if weights.get("used") == "random":
        warn = (f'<p class="warn">Made with a seeded random-init {str(weights.get("backbone", "vgg19")).upper()} '
                "(ImageNet weights were not used): colours and fine texture transfer, larger structures less so.</p>")
    failed_html = f'<p class="warn">{n_failed} candidate(s) failed (NaN/inf loss) and got fitness +inf.</p>' \
        if n_failed else ""
    plots = "".join(f'<img src="{data_uri(run / p)}" alt="{p}">' for p in files.PLOTS)
    front_html = _front_html(run, summary, columns, k)
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>evostyle run {html.escape(run.name)}</title>
<style>{CSS}</style></head><body>
<h1>evostyle run <code>{html.escape(run.name)}</code></h1>{warn}{failed_html}
{worth_html}
<h2>Summary</h2><div class="wide"><table>{info_html}</table></div>
<h2>Parameters</h2>{_parameters_html(rec.get("space", []), best)}
<h2>Inputs</h2><div>{''.join(imgs)}</div>
<h2>Top candidates, with their outputs</h2>{top_html}
<h2>Best of the last generations</h2>{others}
<h2>Plots</h2><div class="plots">{plots}</div>{front_html}
<h2>Top {len(top_df)} candidates</h2>{_table(top_df)}
<p>Data: <code>candidates.csv</code> (one row per candidate), <code>generations.csv</code>,
<code>config.json</code>. In Python: <code>evostyle.load_run("{html.escape(str(run))}")</code>.</p>
</body></html>
"""
    atomic_write_text(run / files.REPORT, page)
    md = [f"# evostyle run {run.name}", ""] + [f"- {k}: {v}" for k, v in info] + [
        "", f"Best fitness {best.fitness:.5g} at generation {int(best.generation)}, candidate "
        f"{int(best.candidate)}: " + ", ".join(f"{n}={best[f'param_{n}']:.4g}" for n in searched)]
    if base:
        div = columns[1]
        metric = div.removeprefix("diversity_")
        md.append(f"\n{metric.capitalize()} diversity {best[div]:.4f} vs same-target baseline "
                  f"{base.get(div, float('nan')):.4f}"
                  + (f"; noise floor {floor['floor'][metric]:.4f} (the same candidate, other seeds)."
                     if metric in floor.get("floor", {}) else "."))
    atomic_write_text(run / files.SUMMARY_MD, "\n".join(md) + "\n")
    return run / files.REPORT
