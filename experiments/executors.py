"""The same search on the local executor and on Ray with 1 and 2 actors: wall time, their ratio, and what
Ray adds per generation.

    python experiments/executors.py [--quick] [--actors 1 2]

Runs one search config (fixed seed) three ways in one process, one after the other: ``local`` (this
process, torch's own threads), then Ray on this machine with each ``--actors`` count (one CPU, one
thread each; or one GPU each where Ray sees GPUs). Writes results/executors/: table.md and record.json
with, per way: the whole search's wall time and its ratio to local, the mean evaluation time of the
generations after the first, the per-generation time Ray spends beyond its slowest actor
(``dispatch``), the actors' start-up, and the best fitness (the ways agree to fp32 rounding; see
evostyle/search/ray_executor.py).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import experiment, finish, md_table, out_dir, run_main, say, settings

NAME = "executors"
QUICK = {"size": 32, "steps": 5, "popsize": 6, "maxiter": 1}
FULL = {"size": 64, "steps": 40, "popsize": 8, "maxiter": 2}


def options(ap):
    ap.add_argument("--actors", type=int, nargs="+", default=[1, 2], help="Ray actor counts to time")


@experiment(NAME, __doc__, QUICK, FULL, options)
def run(args):
    import ray

    from evostyle.search import make_config, run_search
    from evostyle.search.run import build

    t0 = time.perf_counter()
    s = settings(args)
    out = out_dir(args, NAME)
    base = {"size": s["size"], "steps": s["steps"], "popsize": s["popsize"], "maxiter": s["maxiter"], "outputs": 2,
            "weights": args.weights, "device": args.device, "seed": args.seed}
    t = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray_init = time.perf_counter() - t
    rows = []
    tmp = tempfile.TemporaryDirectory(prefix="evostyle-executors-")  # the runs themselves are not kept
    try:
        for name, extra in [("local", {}), *((f"ray, {n} actor(s)", {"executor": "ray", "ray_actors": n})
                                             for n in args.actors)]:
            say(f"{name} ...")
            run_dir = Path(tmp.name) / f"run{len(rows)}"
            t = time.perf_counter()
            res = run_search(make_config({**base, **extra}), run_dir, quiet=True, report=False)
            wall = time.perf_counter() - t
            gens = res.generations()
            n_gen = len(gens)
            rows.append({"executor": name, "wall_s": wall, "search_s": res.seconds,
                         "startup_s": wall - res.seconds, "later_gen_eval_s": float(gens.eval_seconds[1:].mean()),
                         "dispatch_per_eval_s": res["seconds_by_phase"].get("dispatch", 0.0) / (n_gen + 1),
                         "best_fitness": res.fitness})
    finally:
        ray.shutdown()
        tmp.cleanup()
    local = rows[0]
    for r in rows:
        r["search_ratio_vs_local"] = local["search_s"] / r["search_s"]
        r["later_gen_ratio_vs_local"] = local["later_gen_eval_s"] / r["later_gen_eval_s"]
    eng = build(make_config(base)).engine
    cols = ["executor", "search_s", "search_ratio_vs_local", "later_gen_eval_s", "later_gen_ratio_vs_local",
            "dispatch_per_eval_s", "startup_s", "best_fitness"]
    text = (f"# Executors: local against Ray on this machine\n\nOne search ({s['size']} px, {s['steps']} Adam "
            f"steps, population {s['popsize']}, {s['maxiter'] + 1} generations, K = 2, seed {args.seed}, "
            f"weights {eng.weights_info['used']}) run three ways in one process; ray.init took {ray_init:.1f} s "
            "(not in the rows). search_s: the generations and the baseline; startup_s: building the engine and "
            "(Ray) starting the actors; later_gen_eval_s: mean evaluation time of the generations after the "
            "first; dispatch_per_eval_s: what Ray spends per evaluation (a generation or the baseline) beyond "
            "its slowest actor. Ratios above 1 are faster than local.\n\n" + md_table(rows, cols) + "\n")
    finish(out, NAME, args, s, eng, text, {"rows": rows, "ray_init_s": ray_init, "ray": ray.__version__}, t0)


if __name__ == "__main__":
    raise SystemExit(run_main(run))
