"""Coarse-to-fine transfers against one scale, at equal steps and at equal wall time, on real features.

    python experiments/coarse_to_fine.py [--quick]

For each content/painting pair, K = 2 outputs (the painting itself and the painting turned 90 degrees,
``pixel`` rotation) are transferred at ``size`` px with ``steps`` Adam steps: at one scale, and as each
ladder of ``LADDERS`` (the same steps shared among the scales, the remainder at the finest; the engine's
``scales``). Every result is measured with one yardstick, the full-size terms the transfer ends on: its
content and style losses against the full-size targets and their weighted total (lower is better), and
the transfer's wall time. A ladder's coarse steps are cheaper, so each ladder also meets a one-scale
transfer given the steps that fit in the ladder's wall time on this machine: the fair opponent on time.

Writes results/coarse_to_fine/: table.md, runs.csv and record.json.
"""

from __future__ import annotations

import time

from _common import PAIRS, experiment, finish, md_table, out_dir, run_main, say, settings, weights_line

NAME = "coarse_to_fine"
QUICK = {"size": 64, "steps": 6, "pairs": 1}
FULL = {"size": 192, "steps": 90, "pairs": 3}
LADDERS = {"quick": [(32, 64)], "full": [(48, 96, 192), (96, 192)]}
"""Long sides of each ladder, coarse to fine, the last the output size."""
ANGLES = (0.0, 90.0)


def _options(ap):
    ap.add_argument("--pairs", type=int, help=f"how many of the content/painting pairs (full: {FULL['pairs']})")


def _engine(args, s, pair: str, scales=(), steps: int | None = None):
    from evostyle.transfer.config import TransferConfig
    from evostyle.transfer.engine import StyleEngine
    content, style = PAIRS[pair]
    cfg = TransferConfig(steps=steps or s["steps"])
    return StyleEngine(str(content), [str(style)], cfg, size=s["size"], rotation_mode="pixel", weights=args.weights,
                       seed=args.seed, device=args.device, scales=scales)


def _transfer(eng) -> dict:
    import torch
    n = len(ANGLES)
    res = eng.run(torch.ones(n, 1), torch.tensor(ANGLES, dtype=torch.float64), torch.ones(n))
    return {"total": float(res.final["total"].mean()), "content": float(res.final["content"].mean()),
            "style": float(res.final["style"].mean()), "seconds": res.seconds, "failed": int(res.failed.sum())}


@experiment(NAME, __doc__, QUICK, FULL, _options)
def run(args):
    import pandas as pd
    s = settings(args, "pairs")
    out = out_dir(args, NAME)
    t0 = time.perf_counter()
    ladders = [tuple(x for x in lad if x <= s["size"]) for lad in LADDERS["quick" if args.quick else "full"]]
    ladders = [lad if lad[-1] == s["size"] else (*lad, s["size"]) for lad in ladders]
    rows = []
    eng = _engine(args, s, next(iter(PAIRS)), steps=2)
    _transfer(eng)  # warm-up: the first transfer's one-off costs untimed
    for pair in list(PAIRS)[: s["pairs"]]:
        one = {"pair": pair, "method": "one scale", "scales": str(s["size"]), "steps": s["steps"],
               **_transfer(_engine(args, s, pair))}
        rows.append(one)
        for lad in ladders:
            r = {"pair": pair, "method": "ladder", "scales": " ".join(map(str, lad)), "steps": s["steps"],
                 **_transfer(_engine(args, s, pair, scales=lad))}
            rows.append(r)
            # the one-scale transfer that fits in this ladder's wall time (this run's own step time)
            fit = max(1, round(s["steps"] * r["seconds"] / one["seconds"]))
            rows.append({"pair": pair, "method": "one scale, ladder's time", "steps": fit,
                         "scales": f"{s['size']} (vs {r['scales']})", **_transfer(_engine(args, s, pair, steps=fit))})
            say(f"{pair} {r['scales']}: total {r['total']:.4g} in {r['seconds']:.1f} s; one scale "
                f"{rows[-1]['total']:.4g} in {fit} steps")
    df = pd.DataFrame(rows)
    df.to_csv(out / "runs.csv", index=False)
    ref = df[df.method == "one scale"].set_index("pair")
    df["total / one scale"] = df.total / df.pair.map(ref.total)
    df["time / one scale"] = df.seconds / df.pair.map(ref.seconds)
    summary = []
    for (method, scales), g in df.groupby(["method", "scales"], sort=False):
        summary.append({"method": method, "scales": scales, "steps": g.steps.median(), "n": len(g),
                        "total (median)": g.total.median(), "content": g["content"].median(),
                        "style": g["style"].median(),
                        "total / one scale": g["total / one scale"].median(),
                        "worse than one scale": f"{int((g['total / one scale'] > 1).sum())} of {len(g)}",
                        "time / one scale": g["time / one scale"].median(), "wall s": g.seconds.median()})
    cols = ["method", "scales", "steps", "n", "total (median)", "content", "style", "total / one scale",
            "worse than one scale", "time / one scale", "wall s"]
    text = (f"# Coarse to fine against one scale\n\n"
            f"Setting: {s['size']} px, {s['steps']} Adam steps shared among a ladder's scales (the remainder at the "
            f"finest), K = {len(ANGLES)} outputs (pixel rotation {', '.join(f'{a:g}' for a in ANGLES)} degrees), "
            f"pairs {', '.join(df.pair.unique())}. {weights_line(eng)}\n\n"
            "Quality: the weighted total of content and style loss the transfer ends on, at full size against the "
            "full-size targets (lower is better), mean over the outputs, median over pairs; 'total / one scale': "
            "the ratio to the one-scale transfer of the same pair (below 1: the ladder is better). "
            "'one scale, ladder's time': one scale with the steps that fit in the ladder's wall time. Wall times "
            f"from this run on {'the CPU' if eng.device.type == 'cpu' else eng.device}.\n\n"
            + md_table(summary, cols) + "\n")
    finish(out, NAME, args, s, eng, text, {"ladders": [list(x) for x in ladders],
                                            "angles": list(ANGLES)}, t0)


if __name__ == "__main__":
    raise SystemExit(run_main(run))
