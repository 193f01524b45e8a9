"""Rotation + DE against its baselines: does searching rotation angles give outputs that are both
diverse and faithful, better than random angles or fixed ones?

    python experiments/rotation_de.py [--quick] [--mode MODE]

For each content/style pair (experiments/images) and seed, K outputs per candidate, angle_0 fixed at 0
(one output always keeps the painting's own target) and the other angles plus DFR's fusion weight
searched, at one budget of P x (G + 1) evaluations each:

* ``DE scalar``: torch DE (best1bin), fitness = fidelity - lambda x pixel diversity;
* ``DE pareto``: GDE3 over (fidelity, -pixel diversity);
* ``random``: random search over the same space from the same initial population;

and, one evaluation each, the fixed angle sets 0/90/180/270 (rotation weight 1) of DFR's ops and of
every continuous mode, and the same-target baseline (all angles 0). Every output starts from the
content image, so the same-target baseline's outputs are identical (diversity 0) and any diversity
comes from the rotated targets. Every method is scored the same way (fidelity against the unrotated
painting, pixel diversity, evostyle.search.scoring) and by the hypervolume of everything it evaluated
against the pair's reference (the unstylised photo's fidelity, diversity 0), which the fixed sets get
as single points.

Writes results/rotation_de/: table.md, methods.csv (every pair, seed and method), points.csv (every
evaluated point of the searches), plot.png (fronts and hypervolume against evaluations), grid.jpg
(the outputs) and one example search run directory (search/, with its report).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from _common import PAIRS, experiment, finish, md_table, out_dir, publish_run, run_main, say, settings, weights_line

from evostyle.rundir import files, load_run
from evostyle.style.rotations import DEFAULT_ROTATION_MODE

NAME = "rotation_de"
QUICK = {"size": 32, "steps": 8, "popsize": 5, "maxiter": 1, "outputs": 4, "seeds": 1}
FULL = {"size": 32, "steps": 20, "popsize": 6, "maxiter": 3, "outputs": 4, "seeds": 3}
LAMBDA = 30.0
"""Diversity weight of the scalar DE: a pixel diversity of 0.1 is worth a fidelity of 3 (the fidelity of
a fully rotated set is about 5 worse than an unrotated one at these settings)."""
SEARCHES = (("DE scalar", "torch-de", "scalar"), ("DE pareto", "torch-de", "pareto"),
            ("random", "random", "scalar"))
FIXED_MODES = ("dfr", "channel", "rectified", "preact", "spatial", "pixel")


def search_config(args, s, pair: str, seed: int, mode: str, optimizer="torch-de", objective="scalar"):
    from evostyle.search.config import make_config
    content, style = PAIRS[pair]
    return make_config({"content": str(content), "style": [str(style)], "outputs": s["outputs"],
                        "search": ["angles", "rotation_weight"], "fixed": {"angle_0": 0.0}, "rotation_mode": mode,
                        "size": s["size"], "steps": s["steps"], "popsize": s["popsize"], "maxiter": s["maxiter"],
                        "image_init": "content", "diversity_metric": "pixel", "diversity_weight": LAMBDA,
                        "optimizer": optimizer, "objective": objective, "seed": seed, "weights": args.weights,
                        "device": args.device})


def _point(e, ref) -> dict:
    """An evaluation of one candidate as a row: fidelity, pixel diversity, fitness, hypervolume."""
    from evostyle.de import hypervolume_2d
    f, d = float(e.terms["fidelity"][0]), float(e.terms["diversity_pixel"][0])
    return {"fidelity": f, "diversity_pixel": d, "fidelity_style": float(e.terms["fidelity_style"][0]),
            "fitness": float(e.fitness[0]), "hypervolume": hypervolume_2d([[f, -d]], ref), "evaluations": 1}


def run_pair_seed(args, s, pair: str, seed: int, mode: str, runs: Path):
    """Every method on one pair and seed: (method rows, evaluated points of the searches, {method: the
    (K, 3, H, W) outputs shown in the grid}, engine)."""

    from evostyle.search.run import build, run_search

    rows, points, shown = [], [], {}
    ref = None
    for label, optimizer, objective in SEARCHES:
        say(f"{pair} seed {seed}: {label}")
        run = runs / pair / f"seed{seed}" / label.replace(" ", "_")
        summary = run_search(search_config(args, s, pair, seed, mode, optimizer, objective), run, quiet=True,
                             report=False)
        ref = summary["hypervolume_reference"]
        cands, gens = load_run(run)
        best = cands.loc[cands.fitness.idxmin()]
        rows.append({"pair": pair, "seed": seed, "method": label, "fidelity": float(best.fidelity),
                     "diversity_pixel": float(best.diversity_pixel), "fidelity_style": float(best.fidelity_style),
                     "fitness": float(best.fitness), "hypervolume": summary["hypervolume"],
                     "front_size": len(summary["front"]), "evaluations": len(cands),
                     "angles": " ".join(f"{best[f'param_angle_{k}']:.0f}" for k in range(s["outputs"])),
                     "rotation_weight": float(best.param_rotation_weight)})
        points += [{"pair": pair, "seed": seed, "method": label, "generation": int(r.generation),
                    "fidelity": float(r.fidelity), "diversity_pixel": float(r.diversity_pixel)}
                   for r in cands.itertuples()]
        rows[-1]["hv_curve"] = list(zip(gens.nfev.tolist(), gens.hypervolume.tolist()))
        g, c = int(best.generation), int(best.candidate)
        from evostyle.io.images import load_image
        shown[label] = [load_image(run / files.candidate_image(g, c, k)) for k in range(s["outputs"])]
    built = {}
    for m in FIXED_MODES:
        built[m] = build(search_config(args, s, pair, seed, m))
    ev = built[mode].evaluator
    values = {n: float(p.value if p.value is not None else 0.0) for n, p in ev.space.by_name.items()}
    values["rotation_weight"] = 1.0
    angles = [90.0 * k for k in range(s["outputs"])]  # 0/90/180/270 for K = 4, as DFR takes them
    for m in FIXED_MODES:
        e = built[m].evaluator.evaluate_point(values, angles)
        label = f"fixed {'/'.join(f'{a:.0f}' for a in angles)} ({m})"
        rows.append({"pair": pair, "seed": seed, "method": label, **_point(e, ref),
                     "angles": " ".join(f"{a:.0f}" for a in angles), "rotation_weight": 1.0})
        shown[label] = list(e.images[0])
    e = ev.evaluate_point(values, [0.0] * s["outputs"])
    rows.append({"pair": pair, "seed": seed, "method": "same-target baseline", **_point(e, ref),
                 "angles": " ".join("0" for _ in range(s["outputs"])), "rotation_weight": 1.0})
    shown["same-target baseline"] = list(e.images[0])
    return rows, points, shown, ev.engine


def _plot(points, methods, path):
    import numpy as np

    from evostyle.de import non_dominated
    from evostyle.report.plots import pyplot
    plt = pyplot()
    pairs = list(dict.fromkeys(points.pair))
    fig, axes = plt.subplots(2, len(pairs), figsize=(4.6 * len(pairs), 8), squeeze=False)
    colours = {"DE scalar": "C0", "DE pareto": "C3", "random": "C7"}
    for j, pair in enumerate(pairs):
        ax = axes[0, j]
        p = points[(points.pair == pair) & (points.seed == points.seed.min())]
        for label, g in p.groupby("method", sort=False):
            ax.scatter(g.fidelity, g.diversity_pixel, s=8, alpha=0.35, color=colours[label])
            f = np.stack([g.fidelity, -g.diversity_pixel], 1)
            front = g[non_dominated(f)].sort_values("fidelity")
            ax.step(front.fidelity, front.diversity_pixel, where="post", color=colours[label], label=label)
        fixed = methods[(methods.pair == pair) & (methods.seed == methods.seed.min())
                        & ~methods.method.isin(colours)]
        for r in fixed.itertuples():
            ax.plot(r.fidelity, r.diversity_pixel, "^" if "fixed" in r.method else "s", ms=6,
                    label=r.method.replace("fixed ", ""))
        ax.set(title=f"{pair} (seed {int(p.seed.min())})", xlabel="fidelity (lower: closer to the painting)",
               ylabel="pixel diversity of the K outputs")
        ax.grid(alpha=0.3)
        ax = axes[1, j]
        m = methods[(methods.pair == pair) & methods.method.isin(colours)]
        for label, g in m.groupby("method", sort=False):
            curves = [dict(c) for c in g.hv_curve]
            nfev = sorted(curves[0])
            mean = [np.mean([c[n] for c in curves]) for n in nfev]
            ax.plot(nfev, mean, "o-", color=colours[label], label=f"{label} (mean of {len(curves)} seeds)")
        ax.set(xlabel="evaluations (candidates)", ylabel="hypervolume of the front so far")
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7, loc="best")
    axes[1, -1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _summary(methods):
    """Per pair and method: means over seeds, and the searches' hypervolume relative to random search
    on the same pair and seed."""
    import pandas as pd
    rand = methods[methods.method == "random"].set_index(["pair", "seed"]).hypervolume
    m = methods.copy()
    m["hv_vs_random"] = [r.hypervolume / rand.loc[(r.pair, r.seed)] for r in m.itertuples()]
    agg = m.groupby(["pair", "method"], sort=False).agg(
        hypervolume=("hypervolume", "mean"), hv_sd=("hypervolume", "std"), hv_vs_random=("hv_vs_random", "mean"),
        fidelity=("fidelity", "mean"), diversity_pixel=("diversity_pixel", "mean"), fitness=("fitness", "mean"),
        evaluations=("evaluations", "first")).reset_index()
    wins = []
    for label in ("DE scalar", "DE pareto"):
        de = m[m.method == label].set_index(["pair", "seed"])
        both = de.join(m[m.method == "random"].set_index(["pair", "seed"]), rsuffix="_r")
        wins.append({"method": label, "seeds_beating_random_hv": int((both.hypervolume > both.hypervolume_r).sum()),
                     "seeds_beating_random_fitness": int((both.fitness < both.fitness_r).sum()),
                     "runs": len(both), "mean_hv_vs_random": float((both.hypervolume / both.hypervolume_r).mean())})
    return agg, pd.DataFrame(wins)


def _options(ap):
    ap.add_argument("--mode", default=DEFAULT_ROTATION_MODE, help="the searched rotation mode")
    ap.add_argument("--pairs", nargs="+", choices=list(PAIRS), help="content/style pairs (default: all)")
    ap.add_argument("--seeds", type=int, help="seeds per pair, from --seed on (default: the setting's)")


@experiment(NAME, __doc__, QUICK, FULL, _options)
def run(args):
    import pandas as pd

    from evostyle.report.figures import save_grid

    t0 = time.perf_counter()
    s = settings(args)
    mode = args.mode
    out = out_dir(args, NAME)
    runs = Path(tempfile.mkdtemp(prefix="evostyle-rotation-de-"))
    if args.seeds:
        s["seeds"] = args.seeds
    pairs = args.pairs or list(PAIRS)
    seeds = [args.seed + i for i in range(s["seeds"])]
    methods, points, grid, labels, row_labels, eng = [], [], [], [], [], None
    try:
        for pair in pairs:
            for seed in seeds:
                rows, pts, shown, eng = run_pair_seed(args, s, pair, seed, mode, runs)
                methods += rows
                points += pts
                if seed == seeds[0]:
                    for label, imgs in shown.items():
                        grid += [x.float() for x in imgs]
                        labels += [f"output {k}" for k in range(len(imgs))]
                        row_labels.append(f"{pair}: {label}")
        publish_run(runs / pairs[0] / f"seed{seeds[0]}" / "DE_pareto", out / "search")
    finally:
        shutil.rmtree(runs, ignore_errors=True)
    df, pts = pd.DataFrame(methods), pd.DataFrame(points)
    _plot(pts, df, out / "plot.png")
    df.drop(columns=["hv_curve"]).to_csv(out / "methods.csv", index=False)
    pts.to_csv(out / "points.csv", index=False)
    save_grid(grid, out / "grid.jpg", ncol=s["outputs"], labels=labels, row_labels=row_labels,
              cell=192,
              title=f"Best candidate of each method (seed {seeds[0]}); tiles scaled up, nearest neighbour")
    agg, wins = _summary(df.drop(columns=["hv_curve"]))
    budget = s["popsize"] * (s["maxiter"] + 1)
    weights = (f"Weights: seeded random-init VGG19 (seeds {', '.join(map(str, seeds))}), not ImageNet."
               if eng.weights_info["used"] == "random" else weights_line(eng))
    text = (f"# Rotation + DE against random search and fixed angles\n\n{weights} Size {s['size']} px, "
            f"{s['steps']} Adam steps, K = {s['outputs']} outputs (angle_0 fixed at 0; the other angles and the "
            f"rotation weight searched), rotation mode `{mode}`, init: the content image, {len(pairs)} pair(s) x "
            f"{len(seeds)} seeds (the seed also seeds the random-init network). Each search: population "
            f"{s['popsize']} x {s['maxiter'] + 1} generations = {budget} evaluations. Scalar fitness = "
            f"fidelity - {LAMBDA:g} x pixel diversity. Hypervolume: of everything a method evaluated, in "
            "(fidelity, -pixel diversity), against (the unstylised photo's fidelity, 0), per pair and seed; "
            "a fixed set is one point. hv_vs_random: the ratio to random search's on the same pair and seed, "
            "averaged over seeds.\n\n## Does DE beat random search?\n\n"
            + md_table(wins.to_dict("records"), list(wins.columns))
            + "\n\n## Every method, mean over seeds\n\n"
            + md_table(agg.to_dict("records"), list(agg.columns)) + "\n")
    finish(out, NAME, args, s, eng, text, {"mode": mode, "lambda": LAMBDA, "seeds": seeds,
                                          "wins": wins.to_dict("records")}, t0)


if __name__ == "__main__":
    raise SystemExit(run_main(run))
