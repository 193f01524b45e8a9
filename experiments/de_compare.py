"""scipy DE vs torch DE on the same style search: fitness reached against evaluations and wall time.

    python experiments/de_compare.py [--quick]

Both start from the same Latin-hypercube population (same seed), use best1bin with dithered mutation
and one batched evaluation per generation. Writes results/de_compare/: table.md, curves.png and both
runs' generations.csv.
"""

from __future__ import annotations

import shutil
import time

from _common import CONTENT, STYLE_A, STYLE_B, experiment, finish, md_table, out_dir, run_main, settings

from evostyle.rundir import files

NAME = "de_compare"
QUICK = {"size": 48, "steps": 20, "popsize": 6, "maxiter": 3}
FULL = {"size": 256, "steps": 300, "popsize": 16, "maxiter": 15}


@experiment(NAME, __doc__, QUICK, FULL)
def run(args):

    from evostyle.report.plots import pyplot
    from evostyle.search.config import make_config
    from evostyle.search.run import build, run_search

    t0 = time.perf_counter()
    s = settings(args)
    out = out_dir(args, NAME)
    rows, curves = [], {}
    for opt in ("torch-de", "scipy-de"):
        cfg = make_config({"content": CONTENT, "style": [STYLE_A, STYLE_B], "outputs": 3,
                           "search": ["angles", "mix", "layers"], "optimizer": opt, "size": s["size"],
                           "steps": s["steps"], "popsize": s["popsize"], "maxiter": s["maxiter"], "seed": args.seed,
                           "weights": args.weights, "device": args.device})
        run_dir = out / f"run_{opt}"
        summ = run_search(cfg, run_dir, overwrite=True, quiet=True, report=False)
        g = summ.generations()
        curves[opt] = g
        shutil.copy(run_dir / files.GENERATIONS, out / f"generations_{opt}.csv")
        rows.append({"optimizer": opt, "best_fitness": summ["best"]["fitness"], "evaluations": int(g.nfev.iloc[-1]),
                     "wall_seconds": float(g.elapsed.iloc[-1]),
                     "eval_share": float(g.eval_seconds.sum() / g.elapsed.iloc[-1]),
                     "best_diversity_pixel": summ["best"]["diversity_pixel"], "best_loss": summ["best"]["loss_score"]})
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for opt, g in curves.items():
        axes[0].plot(g.nfev, g.best_fitness, "o-", label=opt)
        axes[1].plot(g.elapsed, g.best_fitness, "o-", label=opt)
    axes[0].set_xlabel("evaluations (candidates)")
    axes[1].set_xlabel("wall time (s)")
    for ax in axes:
        ax.set_ylabel("best fitness")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=100)
    plt.close(fig)
    ev = build(cfg).evaluator
    w = ev.engine.weights_info
    text = (f"# scipy DE vs torch DE on one style search\n\nWeights: {w['used']}. Size {s['size']} px, {s['steps']} "
            f"Adam steps, 3 outputs, searching angles, mix and layer weights; population {s['popsize']}, "
            f"{s['maxiter']} generations, seed {args.seed}, same initial population. eval_share: fraction of wall "
            "time spent inside the evaluator (the rest is DE and logging).\n\n"
            + md_table(rows, list(rows[0])) + "\n")
    for opt in curves:
        shutil.rmtree(out / f"run_{opt}", ignore_errors=True)
    finish(out, NAME, args, s, ev.engine, text, {"rows": rows}, t0)


if __name__ == "__main__":
    raise SystemExit(run_main(run))
