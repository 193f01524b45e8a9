"""Faster searches: DEHB over the transfer's steps against DE and random search at full fidelity, as
anytime hypervolume against the image-steps spent (and wall time), on real features.

    python experiments/multifidelity.py [--quick]
    python experiments/multifidelity.py --size 64 --scales 32 --out results/multifidelity_scales

For each content/painting pair and seed, three Pareto searches of (fidelity, -feature diversity) over
every lever (per-output pixel rotation, rotation weight, start noise, content perturbation, inner
diversity reward): ``dehb`` (transfers of ``min_steps`` .. ``steps`` steps in budget levels eta = 3
apart, from the library's default lowest budget; promoted candidates continuing their transfers),
``gde3`` (DE, every transfer in full) and ``random`` (every transfer in full). DE and random search
spend P x (G + 1) full transfers; DEHB runs as many brackets as fit in about that many image-steps.
An image-step is one inner step of one output image at the output's size (a candidate of K outputs
transferred for s steps spends K * s).

With ``--scales`` (a coarse-to-fine ladder rising to ``--size``) the methods are ``random`` and
``dehb`` as above, ``random-scales`` (random search whose every transfer is the ladder) and
``dehb-scales`` (DEHB whose budget levels are the ladder's scales: a rung stops where a scale ends
and is scored there, a promotion continues at the next scale). A step at a coarser scale is counted
as the share of the output's pixels it works on ((scale / size)^2, a proxy for its cost; the table's
"wall share" measures it in seconds instead), and every method gets the same budget in these
full-size image-steps: random-scales more transfers, dehb-scales more brackets.

Each run is scored by the hypervolume of its full transfers (low rungs do not count: their scores are
on another scale), normalised per pair by the ideal and nadir of every method's full transfers
(reference (1.1, 1.1)). Reported: median and IQR of the final hypervolume over pairs x seeds, Wilcoxon
signed-rank against random search (Holm), the anytime curves against image-steps, and the target of
issue 26: the share of random search's image-steps after which each method has reached random search's
final hypervolume (at most 1/3 is the goal).

Writes results/multifidelity/ (or --out): table.md, runs.csv, anytime.csv, anytime.png and record.json.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import PAIRS, experiment, finish, md_table, out_dir, run_main, run_or_resume, say, settings, weights_line

NAME = "multifidelity"
QUICK = {"size": 32, "steps": 9, "min_steps": None, "popsize": 5, "maxiter": 1, "outputs": 2, "seeds": 1, "pairs": 1}
FULL = {"size": 32, "steps": 27, "min_steps": None, "popsize": 6, "maxiter": 5, "outputs": 3, "seeds": 5,
        "pairs": 3}
"""DEHB from the library's default lowest budget (a quarter of the steps: levels 9 and 27); DE and random
search 6 x 6 = 36 full transfers a run."""
SEARCH = ["angles", "rotation_weight", "noise", "perturb", "diversity_loss"]
METHODS = ("dehb", "gde3", "random")
LADDER_METHODS = ("dehb", "dehb-scales", "random-scales", "random")
"""The methods with --scales: each of DEHB and random search with one scale and with the ladder."""


def _options(ap):
    ap.add_argument("--runs", help="keep the run directories here and reuse the finished ones")
    ap.add_argument("--pairs", type=int, help=f"how many of the content/painting pairs (full: {FULL['pairs']})")
    ap.add_argument("--seeds", type=int, help=f"how many seeds per pair (full: {FULL['seeds']})")
    ap.add_argument("--scales", type=int, nargs="+", metavar="PX",
                    help="a coarse-to-fine ladder below --size: compare DEHB and random search over it with their "
                         "one-scale runs")


def ladder_shares(s) -> list[tuple[int, float]]:
    """(steps, share of the output's pixels) of each scale of the experiment's ladder, coarse to fine
    (one scale without --scales)."""
    from evostyle.transfer.engine import coarse_scales, share_steps
    ladder = [*coarse_scales(s.get("scales") or [], s["size"]), s["size"]]
    return list(zip(share_steps(s["steps"], len(ladder)), [(px / s["size"]) ** 2 for px in ladder]))


def ladder_cost(s, done: int = 0, upto: int | None = None) -> float:
    """Full-size image-steps per output of the ladder's steps ``done`` .. ``upto`` (None: its end)."""
    cost, at = 0.0, 0
    for n, area in ladder_shares(s):
        if done <= at and at + n <= (upto if upto is not None else s["steps"]):
            cost += n * area
        at += n
    return cost


def bracket_cost(schedule, index: int) -> float:
    """Steps per output DEHB spends on bracket ``index``: its first cycle promotes, and a promoted
    candidate continues its transfer; later cycles evaluate every rung's DE trials from scratch."""
    return schedule.continued_cost(index) if index < schedule.levels else schedule.cost(index)


def brackets_for(budget: float, schedule) -> int:
    """The most brackets whose steps per output stay within ``budget`` (at least one)."""
    spent, n = 0.0, 0
    while spent + bracket_cost(schedule, n) <= budget * (1 + 1e-9):
        spent += bracket_cost(schedule, n)
        n += 1
    return max(n, 1)


def search_config(args, s, pair: str, seed: int, method: str, brackets: int | None = None,
                  maxiter: int | None = None):
    from evostyle.search.config import make_config
    content, style = PAIRS[pair]
    optimizer, _, ladder = method.partition("-")
    extra = ({"optimizer": "dehb", "min_steps": None if ladder else s["min_steps"], "eta": 3, "brackets": brackets}
             if optimizer == "dehb" else
             {"optimizer": optimizer, "popsize": s["popsize"], "maxiter": s["maxiter"] if maxiter is None else maxiter})
    if ladder:
        extra["scales"] = s["scales"]
    return make_config({"content": str(content), "style": [str(style)], "outputs": s["outputs"], "search": SEARCH,
                        "fixed": {"angle_0": 0.0}, "rotation_mode": "pixel", "size": s["size"], "steps": s["steps"],
                        "objective": "pareto", "seed": seed, "weights": args.weights, "device": args.device,
                        "save_images": "best", "diversity_metric": "feature", **extra})


def _schedule(args, s, method: str = "dehb"):
    """The schedule DEHB runs here: the library's, from the experiment's min_steps (None: its default),
    or over the ladder's scales."""
    from evostyle.search.optimizers import DEHBOptimizer
    return DEHBOptimizer(search_config(args, s, next(iter(PAIRS)), args.seed, method, 1)).schedule()


def _cost_schedule(args, s, method: str):
    """DEHB's schedule with each level's budget in full-size image-steps per output (what the budget
    is shared out in): its steps, or a ladder's steps weighted by the pixels of their scales."""
    from evostyle.de.schedule import Schedule
    schedule = _schedule(args, s, method)
    if not method.endswith("-scales"):
        return schedule
    return Schedule.over([ladder_cost(s, 0, int(b)) for b in schedule.budgets], schedule.eta)


def _floor(res) -> dict:
    """The run's noise floor of feature diversity (its best candidate re-run with other seeds), and
    how far above it the best candidate's outputs and their re-runs are."""
    nf = res.noise_floor
    if not nf:
        return {}
    floor = nf["floor"]["feature"]
    reruns = nf["diversity"]["feature"]
    return {"floor_feature": floor, "best_above_floor": res.best["diversity_feature"] - floor,
            "reruns_above_floor": sum(reruns) / len(reruns) - floor}


def _image_steps(cands, s, method: str, k: int):
    """Per row: the full-size image-steps its evaluation spent (K outputs x the steps it ran, a ladder's
    weighted by the pixels of their scales)."""
    if not method.endswith("-scales"):
        return (cands.steps_run if "steps_run" in cands else s["steps"]) * k
    if "steps" not in cands:  # every transfer the whole ladder
        return [ladder_cost(s) * k] * len(cands)
    return [ladder_cost(s, int(a - b), int(a)) * k for a, b in zip(cands.steps, cands.steps_run)]


@experiment(NAME, __doc__, QUICK, FULL, _options)
def run(args):
    import numpy as np
    import pandas as pd

    from evostyle.report.stats import compare, normalisation, normalised_hypervolume
    from evostyle.rundir import load_run
    from evostyle.rundir.files import SECONDS_COLUMN
    from evostyle.search.run import build
    s = settings(args, "pairs", "seeds", "scales")
    out = out_dir(args, NAME)
    t0 = time.perf_counter()
    pairs = list(PAIRS)[: s["pairs"]]
    methods = LADDER_METHODS if s.get("scales") else METHODS
    budget = s["popsize"] * (s["maxiter"] + 1) * s["steps"]  # steps per output of a full-fidelity search
    schedule = _schedule(args, s)
    brackets = {m: brackets_for(budget, _cost_schedule(args, s, m)) for m in methods if m.startswith("dehb")}
    # random search over the ladder: as many generations of full ladders as the budget buys
    maxiter = int(budget // (s["popsize"] * ladder_cost(s))) - 1 if s.get("scales") else None
    work = Path(args.runs) if args.runs else Path(tempfile.mkdtemp(prefix="evostyle-multifidelity-"))
    runs = {}
    for seed in range(args.seed, args.seed + s["seeds"]):  # seeds outermost: a run cut short has whole seeds
        for pair in pairs:
            for method in methods:
                t = time.perf_counter()
                d = work / f"{pair}-{seed}-{method}"
                cfg = search_config(args, s, pair, seed, method, brackets.get(method),
                                    maxiter if method == "random-scales" else None)
                res = run_or_resume(cfg, d)
                cands = load_run(d)[0]
                cands["image_steps"] = _image_steps(cands, s, method, s["outputs"])
                full = cands.steps == s["steps"] if "steps" in cands else np.ones(len(cands), bool)
                runs[pair, seed, method] = (cands.assign(full=full), res.seconds, _floor(res))
                say(f"{pair} seed {seed} {method}: {time.perf_counter() - t:.1f} s")

    def points(c):
        ok = c[c.full & np.isfinite(c.fitness)]
        return np.stack([ok.fidelity.to_numpy(), -ok.diversity_feature.to_numpy()], 1)

    rows, anytime = [], []
    for pair in pairs:
        ideal, nadir = normalisation([points(c) for (p, _, _), (c, _, _) in runs.items() if p == pair])
        for (p, seed, method), (c, seconds, floor) in runs.items():
            if p != pair:
                continue
            curve = []
            for g in sorted(c.generation.unique()):
                upto = c[c.generation <= g]
                hv = normalised_hypervolume(points(upto), ideal, nadir) if upto.full.any() else 0.0
                curve.append((float(upto.image_steps.sum()), hv, float(upto[SECONDS_COLUMN].sum())))
                anytime.append({"pair": pair, "seed": seed, "method": method, "image_steps": curve[-1][0],
                                "hypervolume": hv})
            done = c[c.full]
            rows.append({"pair": pair, "seed": seed, "method": method, "hypervolume": curve[-1][1],
                         "image_steps": curve[-1][0], "evaluations": len(c), "full_transfers": int(c.full.sum()),
                         "seconds": seconds, "eval_seconds": curve[-1][2], "best_fidelity": done.fidelity.min(),
                         "diversity_median": done.diversity_feature.median(),
                         "diversity_max": done.diversity_feature.max(), **floor, "curve": curve})
    table = pd.DataFrame(rows)
    for i, r in table.iterrows():  # when did it first reach random search's final hypervolume?
        rnd = table[(table.pair == r.pair) & (table.seed == r.seed) & (table.method == "random")].iloc[0]
        reached = next(((steps, sec) for steps, hv, sec in r.curve if hv >= rnd.hypervolume - 1e-12),
                       (float("nan"), float("nan")))
        table.loc[i, "share_to_random_final"] = reached[0] / rnd.image_steps
        table.loc[i, "wall_share_to_random_final"] = reached[1] / rnd.eval_seconds
    table.drop(columns="curve").to_csv(out / "runs.csv", index=False)
    pd.DataFrame(anytime).to_csv(out / "anytime.csv", index=False)
    _plot(pd.DataFrame(anytime), out / "anytime.png")

    scores = {m: table[table.method == m].sort_values(["pair", "seed"]).hypervolume.tolist() for m in methods}
    stats = compare(scores, "random")
    out_rows = []
    for m, st in stats.items():
        g = table[table.method == m]
        share = g.share_to_random_final
        never = lambda x: x.fillna(np.inf).median()  # a run that never got there counts as the slowest
        out_rows.append({"method": m, "median HV": st["median"], "IQR": f"{st['q1']:.3f}-{st['q3']:.3f}",
                         "n": st["n"], "median diff": st.get("median_difference", 0.0),
                         "p (Holm)": st.get("p_holm", float("nan")),
                         "image-steps": g.image_steps.median(), "full transfers": g.full_transfers.median(),
                         "wall s": g.seconds.median(), "reached": f"{int(share.notna().sum())} of {len(share)}",
                         "share to random's final HV": never(share),
                         "wall share": never(g.wall_share_to_random_final),
                         "within 1/3": f"{int((share <= 1 / 3).sum())} of {len(share)}"})
    cols = ["method", "median HV", "IQR", "n", "median diff", "p (Holm)", "image-steps", "full transfers", "wall s",
            "reached", "share to random's final HV", "within 1/3", "wall share"]
    eng = build(search_config(args, s, pairs[0], args.seed, "gde3")).engine
    if s.get("scales"):
        ladder = " -> ".join(f"{n} steps at {round(s['size'] * a ** 0.5)} px" for n, a in ladder_shares(s))
        levels = (f"the ladder {ladder} ({ladder_cost(s):g} full-size image-steps per output against "
                  f"{s['steps']}); dehb-scales' budget levels are its scales; random-scales "
                  f"{s['popsize']} x {maxiter + 1} ladders")
        runs_of = (f"random search {s['popsize']} x {s['maxiter'] + 1} full transfers; {levels}; brackets "
                   + ", ".join(f"{m} {n}" for m, n in brackets.items()))
    else:
        runs_of = (f"DE and random search {s['popsize']} x {s['maxiter'] + 1} full transfers, DEHB "
                   f"{brackets['dehb']} brackets")
    against = "random search, with and without a ladder" if s.get("scales") else "DE and random search"
    text = (f"# Multi-fidelity search: DEHB against {against}\n\n"
            f"Setting: {s['size']} px, {s['steps']} Adam steps (DEHB from {schedule.min_budget:g}, eta 3: budget "
            f"levels {[int(b) for b in schedule.budgets]}), K = {s['outputs']} outputs; {runs_of}; pairs "
            f"{', '.join(pairs)}, seeds {args.seed}..{args.seed + s['seeds'] - 1}. {weights_line(eng)}\n\n"
            "Score: hypervolume of each run's full transfers, (fidelity, -diversity_feature) scaled by the ideal and "
            "nadir of every method's full transfers on the pair, reference (1.1, 1.1); median and IQR over pairs x "
            "seeds; Wilcoxon signed-rank paired by pair and seed against random search, Holm-corrected. "
            "'share to random's final HV': the image-steps after which a method first reached random search's final "
            "hypervolume, as a share of random search's image-steps ('reached': in how many runs it did at all; "
            "a run that never did counts as inf in the median; the goal is at most 1/3); 'wall "
            "share': the same in the wall seconds of the generations' evaluations (without the run's start, "
            "baseline and noise floor), this CPU's measure of what a coarse step costs.\n\n"
            + md_table(out_rows, cols) + "\n")
    finish(out, NAME, args, s, eng, text,
           {"brackets": brackets if s.get("scales") else brackets["dehb"], "methods": list(methods)}, t0)


def _plot(df, path: Path) -> None:
    import numpy as np

    from evostyle.report.plots import pyplot
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (method, g) in enumerate(df.groupby("method", sort=False)):
        grid = np.linspace(0, g.image_steps.max(), 60)
        curves = []
        for _, run in g.groupby(["pair", "seed"]):
            run = run.sort_values("image_steps")
            idx = np.searchsorted(run.image_steps.to_numpy(), grid, side="right") - 1
            curves.append(np.where(idx >= 0, run.hypervolume.to_numpy()[np.clip(idx, 0, None)], 0.0))
        curves = np.array(curves)
        ax.plot(grid, np.median(curves, 0), "-", color=f"C{i}", label=method)
        ax.fill_between(grid, np.quantile(curves, 0.25, 0), np.quantile(curves, 0.75, 0), color=f"C{i}", alpha=0.15)
    ax.set_xlabel("image-steps spent (one inner step of one output image at full size)")
    ax.set_ylabel("normalised hypervolume of full transfers\n(median, IQR over pairs x seeds)")
    ax.set_title("Anytime hypervolume against the transfer work spent")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(run_main(run))
