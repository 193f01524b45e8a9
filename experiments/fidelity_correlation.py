"""Does a short or a small transfer predict a long one? The ground a multi-fidelity search stands on.

    python experiments/fidelity_correlation.py [--quick]

For each content/painting pair, N candidates drawn uniformly from the diversity experiment's space
(every lever: per-output pixel rotation, rotation weight, start noise, content perturbation, inner
diversity reward; K outputs each) are transferred once at the full setting and scored (fidelity,
feature and pixel diversity, and the scalar fitness fidelity - diversity_feature) after 10, 25, 50 and
100% of the steps: one transfer continued from its state (evostyle.transfer.state), so the earlier
checkpoints cost nothing extra. They are also transferred with every step at half the resolution.
Reported per pair and fidelity: Spearman's rho and Kendall's tau of each score against the full
transfer's, and how many of the full transfer's best third (by fitness) the cheap one's best third
holds (chance: a third).

Writes results/fidelity_correlation/: table.md, correlations.csv (every pair, fidelity and score),
scores.csv (every candidate at every fidelity), correlation.png and record.json.
"""

from __future__ import annotations

import time

from _common import PAIRS, experiment, finish, md_table, out_dir, run_main, say, settings, weights_line

NAME = "fidelity_correlation"
QUICK = {"size": 32, "steps": 8, "outputs": 2, "candidates": 6, "pairs": 1}
FULL = {"size": 64, "steps": 40, "outputs": 3, "candidates": 24, "pairs": 3}
"""The diversity experiment's 64 px setting; 24 candidates per pair, about 3 minutes a pair here."""
FRACTIONS = (0.1, 0.25, 0.5, 1.0)
SCORES = ("fitness", "fidelity", "diversity_feature", "diversity_pixel")
SEARCH = ["angles", "rotation_weight", "noise", "perturb", "diversity_loss"]


def _options(ap):
    ap.add_argument("--candidates", type=int, help=f"candidates per pair (full: {FULL['candidates']})")
    ap.add_argument("--pairs", type=int, help=f"how many of the content/painting pairs (full: {FULL['pairs']})")


def _config(args, s, pair: str, size: int):
    from evostyle.search.config import make_config
    content, style = PAIRS[pair]
    return make_config({"content": str(content), "style": [str(style)], "outputs": s["outputs"], "search": SEARCH,
                        "fixed": {"angle_0": 0.0}, "rotation_mode": "pixel", "size": size, "steps": s["steps"],
                        "seed": args.seed, "weights": args.weights, "device": args.device,
                        "diversity_metric": "feature", "save_images": "best"})


def _scores(ev, fidelity: str, steps: int, pair: str) -> list[dict]:
    return [{"pair": pair, "candidate": i, "fidelity_level": fidelity, "steps": steps,
             **{k: float(ev.fitness[i]) if k == "fitness" else float(ev.terms[k][i]) for k in SCORES}}
            for i in range(ev.fitness.shape[0])]


@experiment(NAME, __doc__, QUICK, FULL, _options)
def run(args):
    import pandas as pd
    import torch
    from scipy.stats import kendalltau, spearmanr

    from evostyle.search.evaluator import Fidelity
    from evostyle.search.run import build
    s = settings(args, "candidates", "pairs")
    out = out_dir(args, NAME)
    t0 = time.perf_counter()
    checkpoints = sorted({max(1, round(f * s["steps"])) for f in FRACTIONS})
    rows, eng = [], None
    for pair in list(PAIRS)[: s["pairs"]]:
        full = build(_config(args, s, pair, s["size"]))
        eng = eng or full.engine
        gen = torch.Generator().manual_seed(args.seed)
        values = full.space.to_values(torch.rand(s["candidates"], full.space.dim, generator=gen, dtype=torch.float64))
        state, done = None, 0
        for c in checkpoints:  # one transfer, scored at each checkpoint
            t = time.perf_counter()
            ev = full.evaluator.evaluate_here(values, compile=False, fidelity=Fidelity(c - done, state, True))
            state, done = ev.state, c
            level = "full" if c == s["steps"] else f"{c / s['steps']:.0%} of the steps"
            rows += _scores(ev, level, c, pair)
            say(f"{pair}: {c} steps scored ({time.perf_counter() - t:.1f} s)")
        small = build(_config(args, s, pair, s["size"] // 2))
        t = time.perf_counter()
        rows += _scores(small.evaluator.evaluate_here(values, compile=False), f"half size ({s['size'] // 2} px)",
                        s["steps"], pair)
        say(f"{pair}: half size scored ({time.perf_counter() - t:.1f} s)")
    scores = pd.DataFrame(rows)
    scores.to_csv(out / "scores.csv", index=False)

    corr = []
    for (pair, level), g in scores[scores.fidelity_level != "full"].groupby(["pair", "fidelity_level"], sort=False):
        ref = scores[(scores.pair == pair) & (scores.fidelity_level == "full")].set_index("candidate")
        g = g.set_index("candidate").loc[ref.index]
        third = max(1, len(ref) // 3)
        kept = len(set(g.fitness.nsmallest(third).index) & set(ref.fitness.nsmallest(third).index)) / third
        for k in SCORES:
            corr.append({"pair": pair, "fidelity": level, "steps": int(g.steps.iloc[0]), "score": k,
                         "spearman": float(spearmanr(g[k], ref[k]).statistic),
                         "kendall": float(kendalltau(g[k], ref[k]).statistic),
                         "best third kept": kept if k == "fitness" else float("nan")})
    corr = pd.DataFrame(corr)
    corr.to_csv(out / "correlations.csv", index=False)
    _plot(corr, out / "correlation.png")

    order = list(dict.fromkeys(corr.fidelity))
    table_rows = []
    for level in order:
        for k in SCORES:
            g = corr[(corr.fidelity == level) & (corr.score == k)]
            table_rows.append({"fidelity": level, "score": k, "Spearman (mean)": g.spearman.mean(),
                               "Spearman (min)": g.spearman.min(), "Kendall (mean)": g.kendall.mean(),
                               "best third kept": g["best third kept"].mean() if k == "fitness" else "-"})
    cols = ["fidelity", "score", "Spearman (mean)", "Spearman (min)", "Kendall (mean)", "best third kept"]
    text = (f"# Does a short or a small transfer predict a long one?\n\n"
            f"Setting: {s['size']} px, {s['steps']} Adam steps, K = {s['outputs']} outputs, {s['candidates']} "
            f"candidates per pair drawn uniformly from the space of every lever ({', '.join(SEARCH)}), pairs "
            f"{', '.join(list(PAIRS)[: s['pairs']])}, seed {args.seed}. {weights_line(eng)}\n\n"
            "Each cheap fidelity's scores against the full transfer's, per pair (mean and minimum over pairs); "
            "'best third kept': the share of the full transfer's best third by fitness (fidelity - "
            "diversity_feature) that the cheap fidelity's best third holds (chance: 1/3). The step checkpoints are "
            "one transfer continued, scored on the way.\n\n" + md_table(table_rows, cols) + "\n")
    finish(out, NAME, args, s, eng, text, {"checkpoints": checkpoints}, t0)


def _plot(corr, path) -> None:
    from evostyle.report.plots import pyplot
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    steps = corr[~corr.fidelity.str.startswith("half")]
    for i, k in enumerate(SCORES):
        g = steps[steps.score == k].groupby("steps").spearman
        ax.plot(g.mean().index, g.mean().values, "o-", color=f"C{i}", label=f"{k} (steps)")
        ax.fill_between(g.min().index, g.min().values, g.max().values, color=f"C{i}", alpha=0.12)
        half = corr[corr.fidelity.str.startswith("half") & (corr.score == k)].spearman
        if len(half):
            ax.axhline(half.mean(), color=f"C{i}", ls=":", lw=1)
    ax.set_xlabel("inner steps of the cheap transfer (dotted: every step at half size)")
    ax.set_ylabel("Spearman rho vs the full transfer\n(mean, range over pairs)")
    ax.set_title("Does a short transfer rank candidates like a long one?")
    ax.set_ylim(-0.2, 1.02)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(run_main(run))
