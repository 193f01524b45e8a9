"""Report for a run directory: PNG plots, a Markdown summary and a self-contained ``report.html``.

``python -m evostyle.report RUN_DIR`` (also run at the end of every search). The report reads only
the run directory. Images are embedded as data URIs, so the page opens offline and can be mailed as
one file; every string that came from the user (paths, names, config values) is HTML-escaped.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from evostyle.errors import EvostyleError
from evostyle.io.atomic import atomic_write_text, read_json
from evostyle.io.images import data_uri
from evostyle.report.plots import RunView, make_plots
from evostyle.rundir import files
from evostyle.rundir.files import label, metric_of, word
from evostyle.rundir.record import plan_of, run_settings
from evostyle.rundir.result import SearchResult

if TYPE_CHECKING:  # annotations only
    import os
    from collections.abc import Sequence


def shown(text: object) -> str:
    """``text`` as a page can hold it: a file name's bytes that are not UTF-8 (Python keeps them as lone
    surrogates) become U+FFFD instead of failing the report's write."""
    try:
        raw = str(text).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no file name's byte made (read back from JSON)
        raw = str(text).encode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


def _esc(text: object) -> str:
    """Every string that came from the user, escaped for HTML (see :func:`shown`)."""
    return html.escape(shown(text))


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
            f'alt="{_esc(caption)}"><figcaption>{_esc(caption)}</figcaption></figure>')


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
    head = "".join(f"<th>{_esc(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_esc(_fmt(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _rows_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(_fmt(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1150px;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 7px}
th{background:#f3f3f3;text-align:left}.wide{max-width:100%;overflow-x:auto}
figure{display:inline-block;margin:4px;text-align:center;vertical-align:top}
figure img{display:block;max-width:100%;height:auto}figcaption{font-size:11px;max-width:280px;margin:auto}
.plots img{max-width:100%;height:auto}.warn{color:#a40}code{background:#f5f5f5;padding:1px 3px;word-break:break-all}
.cand{border-top:1px solid #ddd;padding:6px 0}.verdict{font-size:17px;margin:.4em 0 .6em}
.pair h3{margin:.3em 0;font-size:14px}"""


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
                    columns: Sequence[str], drawn: set) -> str:
    """One candidate: where it was evaluated, its scores and searched parameters, and its outputs
    (images/, when the run saved them), unless they are already on the page (``drawn``: the
    (generation, candidate) pairs drawn so far, updated)."""
    g, c = int(row["generation"]), int(row["candidate"])
    scores = ", ".join(f"{word(name)} {row[name]:.4g}" for name in columns if name in row)
    params = ", ".join(f"{n}={row[f'param_{n}']:.4g}" for n in searched)
    if (g, c) in drawn:
        figs = ["<p><i>its outputs are shown above</i></p>"]
    else:
        figs = [_img(run / files.candidate_image(g, c, j), f"output {j}") for j in range(k)
                if (run / files.candidate_image(g, c, j)).is_file()]
        figs = figs or ["<p><i>outputs not saved (save_images keeps each generation's best and the front)</i></p>"]
        drawn.add((g, c))
    return (f'<div class="cand"><p><b>{_esc(title)}</b>: generation {g}, candidate {c}; '
            f"{_esc(scores)}<br>{_esc(params)}</p>{''.join(figs)}</div>")


def _front_text(v: RunView) -> str:
    """One sentence on the front: its size, what it is non-dominated for, and its hypervolume."""
    q, d = v.columns
    front, hv, ref = v.summary.get("front") or [], v.summary.get("hypervolume"), v.reference
    text = (f"{len(front)} candidate(s) are non-dominated among all {len(v.candidates)} evaluated for lower "
            f"{word(q)} and higher {word(d)}")
    if hv is not None and ref is not None:
        text += (f"; hypervolume {hv:.4g} against the reference {word(q)} {ref[0]:.4g}, "
                 f"{word(d)} {0.0 - ref[1]:.4g}")
    return (f"<p>{_esc(text)}. The staircase is the front's boundary; the hypervolume is the area between "
            "it and the reference (x), so members worse than the reference add nothing to it.</p>")


def _wall_time(summary: dict, gens: pd.DataFrame) -> str:
    """The run's wall time as summary.json gives it (the whole search), with the generations' share
    (generations.csv's ``elapsed``: the rest is the same-target baseline and the noise floor)."""
    loop = f"{gens.elapsed.iloc[-1]:.1f} s" if len(gens) else None
    if summary.get("seconds") is None:
        return loop or "?"
    return f"{summary['seconds']:.1f} s" + (f" (generations {loop}, then the baseline and the noise floor)"
                                             if loop else "")


def verdict(best: dict, baseline: dict, columns: tuple[str, str], floor: dict) -> str:
    """Whether the search was worth it, in one line: the best candidate's fitness against its
    same-target baseline's (the same candidate with every output given angle_0's target, so the
    difference is what the outputs' different targets bought), with both diversities and the best's
    noise floor (``floor``: {metric: level}; diversity at the floor is what another seed gives anyway)."""
    nan = float("nan")
    q, d = columns
    if not baseline:
        return (f"No verdict yet: the run has not finished, so there is no same-target baseline to compare the "
                f"best candidate (fitness {best.get('fitness', nan):.4g}) with.")
    fb, fs = best.get("fitness", nan), baseline.get("fitness", nan)
    scores = (f"fitness {fb:.4g} vs {fs:.4g}, {word(d)} {best.get(d, nan):.4f} vs {baseline.get(d, nan):.4f}, "
              f"{word(q)} {best.get(q, nan):.4g} vs {baseline.get(q, nan):.4g}")
    level = floor.get(metric_of(d))
    above = ("" if level is None else f"; its {word(d)} is {'above' if best.get(d, nan) > level else 'at or below'} "
             f"the noise floor {level:.4f}")
    if fb < fs:
        return f"Worth it: the best candidate beats its same-target baseline ({scores}){above}."
    return (f"Not worth it here: the same-target baseline scores at least as well as the best candidate ({scores})"
            f"{above}; different targets for the outputs bought nothing at this budget.")


def _pair_html(v: RunView, best: pd.Series) -> str:
    """The best candidate's outputs and its same-target baseline's, one row each."""
    res = SearchResult(v.path, {})
    angle = lambda k: f" (angle {best[f'param_angle_{k}']:.0f} deg)" if f"param_angle_{k}" in best else ""
    rows = []
    for title, paths, caption in (
            ("Best candidate", res.best_images(), lambda k: f"output {k}{angle(k)}"),
            ("Its same-target baseline (every output with angle_0's target)", res.baseline_images(),
             lambda k: f"output {k}")):
        if paths:
            figs = "".join(_img(p, caption(k)) for k, p in enumerate(paths))
            rows.append(f"<h3>{_esc(title)}</h3><div>{figs}</div>")
    return f'<div class="pair">{"".join(rows)}</div>'


def _plot_html(v: RunView, name: str, title: str, text: str = "") -> str:
    return (f"<h2>{_esc(title)}</h2>{text}"
            f'<div class="plots"><img src="{data_uri(v.path / name)}" alt="{_esc(title)}"></div>')


def write_report(run_dir: str | os.PathLike, top: int = 10, status: str | None = None,
                 compare: Sequence[str | os.PathLike] = ()) -> Path:
    """Build plots, ``summary.md`` and ``report.html`` for ``run_dir``; returns the HTML path.
    ``status`` overrides what state.json says (the report CLI passes the effective status);
    ``compare`` names other runs (another optimiser, random search) whose best fitness, hypervolume
    and front are drawn on this run's plots.

    The page answers in the order a reader asks: the verdict in one line with the best outputs
    beside the same-target baseline's; the front; convergence; the parameters and their slices; the
    candidates; the inputs and how the run was made."""
    run = Path(run_dir)
    v = RunView.of(run)
    cands, gens, rec, summary = v.candidates, v.generations, v.record, v.summary
    if cands.empty:
        raise EvostyleError(f"{run} has no evaluated candidates yet; nothing to report")
    cfg, plan = run_settings(rec), plan_of(rec)
    state = read_json(run / files.STATE, "run state") if (run / files.STATE).exists() else {}
    searched, columns = v.searched, v.columns
    make_plots(v, compare)

    weights = rec.get("weights", {})
    env = rec.get("environment", {})
    n_failed = int(cands.failed.sum())
    info = [("status", status or state.get("status", "?")), ("content", cfg.get("content")),
            ("styles", ", ".join(map(str, cfg.get("style", [])))), ("optimizer", cfg.get("optimizer")),
            ("strategy", plan.get("strategy") or cfg.get("strategy") or "-"), ("population x generations",
                                                f"{cfg.get('population')} x {int(gens.generation.max()) + 1}"),
            ("outputs per candidate", cfg.get("outputs")), ("searched", ", ".join(searched)),
            ("objectives", f"{label(columns[0])}; {label(columns[1])}"),
            ("rotation mode", cfg.get("rotation_mode")), ("measure", cfg.get("measure")),
            ("size / steps", f"{cfg.get('size')} px / {cfg.get('steps')} steps"),
            ("weights used", f"{weights.get('used')} {str(weights.get('backbone', 'vgg19')).upper()} (spec "
                             f"{weights.get('spec')}, {weights.get('preprocessing', 'torchvision')} preprocessing)"),
            ("device", env.get("gpu") or env.get("device")), ("executor", _executor_line(summary)),
            ("torch", env.get("torch")),
            ("seed", rec.get("seed")), ("evaluations", len(cands)), ("failed candidates", n_failed),
            ("wall time", _wall_time(summary, gens))]
    info_html = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(str(val))}</td></tr>" for k, val in info)

    best = v.best
    k = int(cfg.get("outputs", 1))
    inputs = [_img(run / files.CONTENT, f"content: {Path(str(cfg.get('content'))).name}")]
    for i, s in enumerate(cfg.get("style", [])):
        if (run / files.style_image(i)).exists():
            inputs.append(_img(run / files.style_image(i), f"style {i}: {Path(str(s)).name}"))
    score_cols = [c for c in ("fitness", "fidelity", "loss_score", "diversity_pixel", "diversity_feature")
                  if c in cands]
    drawn = {(int(best.generation), int(best.candidate))}  # its outputs open the page
    ranked = v.counted.sort_values("fitness", kind="stable")
    top_html = "".join(_candidate_html(run, r, k, searched, f"#{i + 1}", score_cols, drawn)
                       for i, (_, r) in enumerate(ranked.head(min(top, 5)).iterrows()))
    gen_best = ranked.groupby("generation", sort=True).head(1).sort_values("generation").tail(4)
    last_html = "".join(_candidate_html(run, r, k, searched, f"best of generation {int(r.generation)}",
                                        score_cols, drawn) for _, r in gen_best.iterrows())
    front = SearchResult(run, summary).front.sort_values(columns[0], kind="stable") if summary.get("front") \
        else pd.DataFrame()
    front_html = "".join(_candidate_html(run, r, k, searched, "front member", [*columns, "fitness"], drawn)
                         for _, r in front.iterrows())

    # the sort column (fitness) and the objectives first, so that they are in view on a laptop's screen
    cols = ["generation", "candidate", *score_cols] + [f"param_{n}" for n in searched]
    top_df = ranked.head(top)[cols]
    warn = ""
    if weights.get("used") == "random":
        warn = (f'<p class="warn">Made with a seeded random-init {str(weights.get("backbone", "vgg19")).upper()} '
                "(ImageNet weights were not used): colours and fine texture transfer, larger structures less so.</p>")
    failed_html = f'<p class="warn">{n_failed} candidate(s) failed (NaN/inf loss) and got fitness +inf.</p>' \
        if n_failed else ""
    line = verdict(best.to_dict(), v.baseline, columns, v.floor)
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>evostyle run {_esc(run.name)}</title>
<style>{CSS}</style></head><body>
<h1>evostyle run <code>{_esc(run.name)}</code></h1>{warn}{failed_html}
<p class="verdict">{_esc(line)}</p>
{_pair_html(v, best)}
{_plot_html(v, files.PLOT_FRONT, "The Pareto front", _front_text(v))}
{_plot_html(v, files.PLOT_CONVERGENCE, "Convergence")}
<h2>Parameters</h2>{_parameters_html(rec.get("space", []), best)}
<div class="plots"><img src="{data_uri(run / files.PLOT_PARAMS)}" alt="parameters by generation"></div>
{_plot_html(v, files.PLOT_SLICES, "Slices: each objective against each parameter")}
<h2>Top {len(top_df)} candidates</h2>{_table(top_df)}
<h2>Top candidates, with their outputs</h2>{top_html}
<h2>Best of the last generations</h2>{last_html}
{f"<h2>Front members ({len(front)})</h2>{front_html}" if len(front) else ""}
<h2>Inputs</h2><div>{''.join(inputs)}</div>
<h2>The run</h2><div class="wide"><table>{info_html}</table></div>
<p>Data: <code>candidates.csv</code> (one row per candidate), <code>generations.csv</code>,
<code>config.json</code>. In Python: <code>evostyle.load_run("{_esc(str(run))}")</code>;
the plots as figures: <code>evostyle.report.plot_front("{_esc(str(run))}")</code>.</p>
</body></html>
"""
    atomic_write_text(run / files.REPORT, page)
    md = [f"# evostyle run {run.name}", "", line, ""] + [f"- {key}: {val}" for key, val in info] + [
        "", f"Best fitness {best.fitness:.5g} at generation {int(best.generation)}, candidate "
        f"{int(best.candidate)}: " + ", ".join(f"{n}={best[f'param_{n}']:.4g}" for n in searched)]
    atomic_write_text(run / files.SUMMARY_MD, shown("\n".join(md) + "\n"))
    return run / files.REPORT
