"""Diverse outputs that keep the painting: each lever alone and together, and the search methods a
reviewer expects, at equal evaluations, on real (ImageNet) features.

    python experiments/diversity.py [--quick] [--metric feature|pixel]

For each content/painting pair (experiments/images) and seed, K outputs per candidate, every method
minimises (fidelity, -diversity) from the same initial population at the same budget of
P x (G + 1) evaluations. Diversity is the deep-feature distance between a candidate's outputs
(``--metric feature``, the default: VGG relu3_1 on the real network) or the pixel one (``pixel``,
which leftover start noise inflates):

* the levers, searched by GDE3: ``rotation`` (the painting itself rotated per output, ``pixel``
  mode, angle_0 fixed at 0, and the rotation weight), ``noise`` (each output's start = content +
  sigma * its own noise), ``perturb`` (each output's content target turned by deep feature
  perturbation), ``diversity_loss`` (an inner reward for the distance between a candidate's outputs),
  and ``all`` of them together; the levers but rotation run with rotation weight 0;
* the optimisers on ``all``: GDE3, random search, quasi-random Sobol, and Optuna's TPE and NSGA-II.

Each run is scored by the hypervolume of everything it evaluated, normalised by the ideal and nadir
of the union of every method's points on that pair (reference point (1.1, 1.1) in those units),
reported as median and IQR over pairs x seeds, and compared by Wilcoxon signed-rank tests paired by
pair and seed with Holm's correction (levers against ``rotation``, optimisers against random search).

Beside the diversity of each run's knee stands its noise floor: the same candidate re-run with two
other seeds (evostyle.search.floor), what part of a diversity a re-run gives anyway.

Writes results/diversity/: table.md, methods.csv (every pair, seed and method), anytime.csv and
anytime.png (median normalised hypervolume against evaluations), grid.jpg (each method's front
member nearest the ideal on the first pair and seed, its K outputs at a legible size) and
record.json (settings, weights, environment, command).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import PAIRS, experiment, finish, md_table, out_dir, run_main, run_or_resume, say, settings, weights_line

METRICS = {"feature": "diversity_feature", "pixel": "diversity_pixel"}

NAME = "diversity"
QUICK = {"size": 32, "steps": 4, "popsize": 5, "maxiter": 1, "outputs": 2, "seeds": 1, "pairs": 1}
FULL = {"size": 32, "steps": 10, "popsize": 6, "maxiter": 3, "outputs": 3, "seeds": 5, "pairs": 3}
"""The largest setting whose 135 searches finish in under an hour on the project's 2-core CPU."""
LEVERS = {
    "rotation": {"search": ["angles", "rotation_weight"], "fixed": {"angle_0": 0.0}},
    "noise": {"search": ["noise"], "fixed": {"rotation_weight": 0.0}},
    "perturb": {"search": ["perturb"], "fixed": {"rotation_weight": 0.0}},
    "diversity_loss": {"search": ["diversity_loss"], "fixed": {"rotation_weight": 0.0}},
    "all": {"search": ["angles", "rotation_weight", "noise", "perturb", "diversity_loss"], "fixed": {"angle_0": 0.0}},
}
OPTIMIZERS = ("gde3", "random", "sobol", "tpe", "nsga2")
METHODS = [(lever, "gde3") for lever in LEVERS] + [("all", o) for o in OPTIMIZERS if o != "gde3"]


def method_name(lever: str, optimizer: str) -> str:
    return f"{lever} / {optimizer}"


def search_config(args, s, pair: str, seed: int, lever: str, optimizer: str):
    from evostyle.search.config import make_config
    content, style = PAIRS[pair]
    return make_config({"content": str(content), "style": [str(style)], "outputs": s["outputs"],
                        **LEVERS[lever], "rotation_mode": "pixel", "size": s["size"], "steps": s["steps"],
                        "popsize": s["popsize"], "maxiter": s["maxiter"], "optimizer": optimizer,
                        "objective": "pareto", "seed": seed, "weights": args.weights, "device": args.device,
                        "save_images": "best", "diversity_metric": args.metric})


def _points(cands, metric: str):
    """(N, 2) minimised objectives (fidelity, -diversity) of a run's finite candidates."""
    import numpy as np
    ok = cands[np.isfinite(cands.fitness)]
    return np.stack([ok.fidelity.to_numpy(), -ok[METRICS[metric]].to_numpy()], 1), ok


def _options(ap):
    ap.add_argument("--metric", choices=list(METRICS), default="feature",
                    help="the diversity the methods maximise and are scored on")
    ap.add_argument("--runs", help="keep the run directories here and reuse the finished ones (default: a new "
                                   "temporary folder)")
    ap.add_argument("--pairs", type=int, help=f"how many of the content/painting pairs (full: {FULL['pairs']})")
    ap.add_argument("--seeds", type=int, help=f"how many seeds per pair (full: {FULL['seeds']})")
    ap.add_argument("--finished-only", action="store_true",
                    help="with --runs: score only the pairs and seeds whose every method has finished there, "
                         "and run nothing new (the table says which were left out)")
    ap.add_argument("--methods", nargs="+", metavar="LEVER/OPTIMIZER",
                    help="run only these methods, e.g. rotation/gde3 noise/gde3 all/gde3 (default: all nine)")


@experiment(NAME, __doc__, QUICK, FULL, _options)
def run(args):
    import numpy as np
    import pandas as pd

    from evostyle.report.stats import compare, median_iqr, normalisation, normalised_hypervolume
    from evostyle.rundir import files, load_run
    from evostyle.search.run import build
    s = settings(args, "pairs", "seeds")
    chosen = [m for m in METHODS if args.methods is None or "/".join(m) in args.methods]
    if not chosen:
        from evostyle.errors import EvostyleError
        raise EvostyleError(f"--methods names none of {', '.join('/'.join(m) for m in METHODS)}")
    out = out_dir(args, NAME)
    t0 = time.perf_counter()
    pairs = list(PAIRS)[: s["pairs"]]
    work = Path(args.runs) if args.runs else Path(tempfile.mkdtemp(prefix="evostyle-diversity-"))
    runs = {}  # (pair, seed, method) -> candidates
    skipped = []
    for pair in pairs:
        for seed in range(args.seed, args.seed + s["seeds"]):
            dirs = {method_name(lv, o): work / f"{pair}-{seed}-{lv}-{o}" for lv, o in chosen}
            if args.finished_only and not all((d / files.SUMMARY).is_file() for d in dirs.values()):
                skipped.append(f"{pair} seed {seed}")
                continue
            for lever, optimizer in chosen:
                name = method_name(lever, optimizer)
                t = time.perf_counter()
                d = dirs[name]
                cfg = search_config(args, s, pair, seed, lever, optimizer)
                run_or_resume(cfg, d)
                runs[pair, seed, name] = load_run(d)[0].assign(run_dir=str(d))
                say(f"{pair} seed {seed} {name}: {time.perf_counter() - t:.1f} s")
    if not runs:
        from evostyle.errors import EvostyleError
        raise EvostyleError(f"no pair and seed has every method finished under {work}; drop --finished-only")
    pairs = [p for p in pairs if any(k[0] == p for k in runs)]

    floors = _floors(args, s, runs, work)
    rows, anytime = [], []
    for pair in pairs:
        ideal, nadir = normalisation([_points(c, args.metric)[0] for (p, _, _), c in runs.items() if p == pair])
        for (p, seed, name), cands in runs.items():
            if p != pair:
                continue
            pts, ok = _points(cands, args.metric)
            front = ok.iloc[np.flatnonzero(_front_mask(pts))]
            rows.append({"pair": pair, "seed": seed, "method": name,
                         "hypervolume": normalised_hypervolume(pts, ideal, nadir), "evaluations": len(cands),
                         "best_fidelity": float(ok.fidelity.min()),
                         "max_diversity_pixel": float(ok.diversity_pixel.max()),
                         "max_diversity_feature": float(ok.diversity_feature.max()), "front_size": len(front),
                         "front_diversity_smooth": _smooth_diversity(cands, front),
                         **_knee_columns(floors[p, seed, name])})
            for g in sorted(cands.generation.unique()):
                upto = cands.generation <= g
                anytime.append({"pair": pair, "seed": seed, "method": name, "evaluations": int(upto.sum()),
                                "hypervolume": normalised_hypervolume(_points(cands[upto], args.metric)[0], ideal,
                                                                      nadir)})
    methods = pd.DataFrame(rows)
    methods.to_csv(out / "methods.csv", index=False)
    pd.DataFrame(anytime).to_csv(out / "anytime.csv", index=False)

    def table(names, against):
        scores = {n: methods[methods.method == n].sort_values(["pair", "seed"]).hypervolume.tolist() for n in names}
        stats = compare(scores, against)
        return [{"method": n, "median HV": st["median"], "IQR": f"{st['q1']:.3f}-{st['q3']:.3f}", "n": st["n"],
                 "median diff": st.get("median_difference", 0.0), "p (Holm)": st.get("p_holm", float("nan"))}
                for n, st in stats.items()]
    ran = {method_name(*m) for m in chosen}
    levers = [n for n in (method_name(lv, "gde3") for lv in LEVERS) if n in ran]
    optimisers = [n for n in (method_name("all", o) for o in OPTIMIZERS) if n in ran]
    opt_ref = method_name("all", "random") if method_name("all", "random") in ran else (optimisers or ["-"])[0]
    lever_rows = table(levers, levers[0]) if levers else []
    opt_rows = table(optimisers, opt_ref) if optimisers else []
    _anytime_plot(pd.DataFrame(anytime), out / "anytime.png")
    eng = build(search_config(args, s, pairs[0], args.seed, "rotation", "gde3")).engine
    _grid(runs, pairs[0], args.seed, args.metric, out / "grid.jpg")
    cols = ["method", "median HV", "IQR", "n", "median diff", "p (Holm)"]
    floor_cols = ["method", "knee fidelity", "feature div.", "feature floor", "pixel div.", "pixel floor"]
    floor_rows = [{"method": n, **{c: methods[methods.method == n][col].median() for c, col in zip(
        floor_cols[1:], ["knee_fidelity", "knee_diversity_feature", "knee_floor_feature", "knee_diversity_pixel",
                         "knee_floor_pixel"])}} for n in dict.fromkeys(r["method"] for r in lever_rows + opt_rows)]
    other = "pixel" if args.metric == "feature" else "feature"
    med = lambda col: {r["method"]: median_iqr(methods[methods.method == r["method"]][col].dropna().tolist())[0]
                       for r in lever_rows + opt_rows}
    text = (f"# Diverse outputs that keep the painting: levers and optimisers\n\n"
            f"Setting: {s['size']} px, {s['steps']} Adam steps, K = {s['outputs']} outputs, population "
            f"{s['popsize']} x {s['maxiter'] + 1} generations ({s['popsize'] * (s['maxiter'] + 1)} evaluations per "
            f"run), pairs {', '.join(pairs)}, seeds {args.seed}..{args.seed + s['seeds'] - 1}"
            + (f" (left out, not finished: {', '.join(skipped)})" if skipped else "") + f". {weights_line(eng)}\n\n"
            f"Score: hypervolume of every evaluated (fidelity, -{METRICS[args.metric]}), each objective scaled by the "
            "ideal "
            "and nadir of the union of all methods' points on the pair, reference point (1.1, 1.1); median and "
            "IQR over pairs x seeds; Wilcoxon signed-rank paired by pair and seed, Holm-corrected.\n\n"
            f"## Levers (GDE3), against {levers[0] if levers else '-'}\n\n{md_table(lever_rows, cols)}\n\n"
            f"## Optimisers (all levers), against {opt_ref}\n\n{md_table(opt_rows, cols)}\n\n"
            "## Diversity beside its noise floor\n\nEach run's knee (its front member nearest the ideal, objectives "
            "scaled over the run) re-run with two other seeds: the floor is how far its output k moves when only the "
            "seed changes (the same metric, averaged over k), what a re-run gives anyway. Medians over runs.\n\n"
            f"{md_table(floor_rows, floor_cols)}\n\n"
            f"The other diversity, {METRICS[other]} (the largest a run reached, median over runs): "
            + ", ".join(f"{k} {v:.3g}" for k, v in med(f"max_diversity_{other}").items()) + ".\n\n"
            "Speckle-discounted diversity (a noise floor for leftover start noise: the mean pairwise pixel "
            f"distance of a candidate's outputs after {SMOOTH} x {SMOOTH} average pooling, the largest on the "
            "front, median over runs): " + ", ".join(f"{k} {v:.3g}" for k, v in med("front_diversity_smooth").items())
            + ". LPIPS is not reported: its calibrated weights cannot be fetched here.\n")
    finish(out, NAME, args, s, eng, text, {"methods": sorted(ran), "metric": args.metric, "left_out": skipped}, t0)


SMOOTH = 4
"""Average-pooling window (px) of the speckle-discounted diversity: what differs only pixel to pixel,
such as start noise the transfer has not yet removed, averages out."""


def _knee_columns(floor: dict) -> dict:
    """methods.csv's columns of a run's knee and its noise floor."""
    knee = floor["knee"]
    return {"knee_fidelity": float(knee.fidelity), "knee_diversity_feature": float(knee.diversity_feature),
            "knee_diversity_pixel": float(knee.diversity_pixel),
            "knee_floor_feature": floor["floor"]["feature"], "knee_floor_pixel": floor["floor"]["pixel"]}


def _smooth_diversity(cands, front) -> float:
    """The largest speckle-discounted diversity of the ``front`` rows whose outputs were saved (their
    JPEGs under images/): mean pairwise |a - b| over a candidate's K outputs after SMOOTH x SMOOTH
    average pooling; NaN if none was saved."""
    import itertools

    import torch.nn.functional as F

    from evostyle.io.images import load_image
    from evostyle.rundir import files
    run_dir = Path(cands.run_dir.iloc[0])
    k = len([c for c in cands if c.startswith("param_angle_")])
    best = float("nan")
    for r in front.itertuples():
        paths = [run_dir / files.candidate_image(int(r.generation), int(r.candidate), j) for j in range(k)]
        if not all(p.is_file() for p in paths):
            continue
        pooled = [F.avg_pool2d(load_image(p)[None], SMOOTH)[0] for p in paths]
        d = sum(float((a - b).abs().mean()) for a, b in itertools.combinations(pooled, 2)) / max(1, k * (k - 1) // 2)
        best = d if best != best else max(best, d)
    return best


def _knee(cands, metric: str):
    """The run's front member nearest the ideal once each objective is scaled to [0, 1] over the run."""
    import numpy as np
    pts, ok = _points(cands, metric)
    lo, hi = pts.min(0), pts.max(0)
    scaled = (pts - lo) / np.where(hi > lo, hi - lo, 1)
    front = np.flatnonzero(_front_mask(pts))
    return ok.iloc[front[np.argmin(np.linalg.norm(scaled[front], axis=1))]]


def _floors(args, s, runs, work: Path) -> dict:
    """{(pair, seed, method): NoiseFloor.as_dict()} of each run's knee member re-run with FLOOR_SEEDS
    other seeds (evostyle.search.floor), cached in ``work``/floors.json by run folder and candidate."""
    import json

    from evostyle.search.floor import SEEDS as FLOOR_SEEDS
    from evostyle.search.floor import noise_floor
    from evostyle.search.run import build
    cache_file = work / "floors.json"
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    out = {}
    for (pair, seed, name), cands in runs.items():
        knee = _knee(cands, args.metric)
        key = f"{Path(knee.run_dir).name}:{int(knee.generation)}:{int(knee.candidate)}"
        if key not in cache:
            lever, optimizer = name.split(" / ")
            ev = build(search_config(args, s, pair, seed, lever, optimizer)).evaluator
            values = {n: float(knee[f"param_{n}"]) for n in ev.space.names}
            cache[key] = noise_floor(ev, values, [seed + 1 + i for i in range(FLOOR_SEEDS)]).as_dict()
            cache_file.write_text(json.dumps(cache, indent=1))
            say(f"{pair} seed {seed} {name}: noise floor of its knee {cache[key]['floor']}")
        out[pair, seed, name] = {**cache[key], "knee": knee}
    return out


def _front_mask(pts):
    from evostyle.de.pareto import non_dominated
    return non_dominated(pts)


def _anytime_plot(df, path: Path) -> None:
    from evostyle.report.plots import pyplot
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (name, g) in enumerate(df.groupby("method", sort=False)):
        med = g.groupby("evaluations").hypervolume.median()
        q = g.groupby("evaluations").hypervolume.quantile([0.25, 0.75]).unstack()
        ax.plot(med.index, med.values, "o-" if "gde3" in name else "s--", color=f"C{i}", label=name, ms=4)
        ax.fill_between(q.index, q[0.25], q[0.75], color=f"C{i}", alpha=0.12)
    ax.set_xlabel("evaluations (candidates)")
    ax.set_ylabel("normalised hypervolume (median, IQR)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _grid(runs, pair, seed, metric, path: Path) -> None:
    """One row per method: the K outputs of its front member nearest the ideal (scaled objectives)."""

    from evostyle.io.images import load_image
    from evostyle.report.figures import save_grid
    from evostyle.rundir import files
    rows, labels = [], []
    for (p, sd, name), cands in runs.items():
        if p != pair or sd != seed:
            continue
        best = _knee(cands, metric)
        run_dir = Path(best.run_dir)
        g, c = int(best.generation), int(best.candidate)
        k = len([col for col in cands if col.startswith("param_angle_")])
        images = [run_dir / files.candidate_image(g, c, j) for j in range(k)]
        if all(f.is_file() for f in images):
            rows.append([load_image(f) for f in images])
            labels.append(f"{name}\nfidelity {best.fidelity:.3f}\nfeature div. {best.diversity_feature:.3f}\n"
                          f"pixel div. {best.diversity_pixel:.3f}")
    if rows:
        save_grid([im for r in rows for im in r], path, ncol=len(rows[0]), row_labels=labels, cell=192)


if __name__ == "__main__":
    raise SystemExit(run_main(run))
