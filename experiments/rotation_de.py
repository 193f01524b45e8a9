"""Rotation + DE: search K = 4 rotation angles for diverse outputs at bounded loss, against DFR's fixed
0/90/180/270 and a same-target baseline.

    python experiments/rotation_de.py [--quick]

Steps: (1) optimise K outputs of the unrotated target (the same-target baseline; outputs differ only by
their initial noise) and K outputs at the evenly spaced angles 0/90/180/270 in ``channel`` mode, whose
mean loss L_even sets the cap; (2) run DE over angle_0..angle_3 in ``channel`` mode with
fitness = loss - lambda * pixel diversity + penalty * max(0, loss - cap), cap = cap_factor * L_even,
i.e. "more diverse than the fixed angles at no more loss"; (3) evaluate DFR's fixed angles with the
official code's ops (``dfr`` mode). Every method uses the same init noise, steps and weights. Writes
results/rotation_de/: table.md, methods.csv, grid.jpg and the search's run directory (search/).
"""

from __future__ import annotations

import time

import torch
from _common import CONTENT, STYLE_A, experiment, finish, md_table, out_dir, run_main, settings, weights_line

NAME = "rotation_de"
QUICK = {"size": 64, "steps": 30, "popsize": 6, "maxiter": 2}
FULL = {"size": 256, "steps": 300, "popsize": 16, "maxiter": 12}
K = 4


def _cfg(args, s, mode, cap=None):
    from evostyle.config import make_config
    return make_config({"content": CONTENT, "style": [STYLE_A], "outputs": K, "search": ["angles"],
                        "rotation_mode": mode, "size": s["size"], "steps": s["steps"], "popsize": s["popsize"],
                        "maxiter": s["maxiter"], "image_init": "content+noise", "diversity_metric": "pixel",
                        "diversity_weight": s.get("lambda", 100.0), "loss_cap": cap, "seed": args.seed,
                        "weights": args.weights, "device": args.device})


def _style_vs_original(ev, images):
    """Mean style loss (relative Gram error over layers) of (P, K, 3, H, W) outputs vs the unrotated target."""
    from evostyle.measures import style_term
    eng = ev.engine
    flat = images.flatten(0, 1).to(eng.device)
    with torch.no_grad():
        feats = eng.model(flat)
    layers = eng.cfg.style_layers
    return float(sum(style_term(feats[l], eng.targets.stats[0][l], "gram").mean() for l in layers) / len(layers))


@experiment(NAME, __doc__, QUICK, FULL)
def run(args):
    import pandas as pd
    from evostyle.images import save_grid
    from evostyle.search import _build, run_search

    t0 = time.perf_counter()
    s = settings(args)
    out = out_dir(args, NAME)
    s.setdefault("lambda", 100.0)
    s.setdefault("cap_factor", 1.0)
    _, _, ev = _build(_cfg(args, s, "channel"))
    fixed = {n: float(p.value if p.value is not None else 0.0) for n, p in ev.space.by_name.items()}

    def evaluate(evaluator, angles):
        return evaluator.evaluate_point(fixed, angles)

    base = evaluate(ev, [0.0] * K)
    even = evaluate(ev, [0, 90, 180, 270])
    cap = s["cap_factor"] * float(even.terms["loss_score"][0])
    summary = run_search(_cfg(args, s, "channel", cap), out / "search", overwrite=True, quiet=True)
    best_angles = [summary["best"]["params"][f"angle_{k}"] for k in range(K)]
    found = evaluate(ev, best_angles)
    _, _, ev_dfr = _build(_cfg(args, s, "dfr"))
    dfr = evaluate(ev_dfr, [0, 90, 180, 270])
    methods = [("DE-found angles (channel)", best_angles, found, ev),
               ("DFR fixed 0/90/180/270 (dfr ops)", [0, 90, 180, 270], dfr, ev_dfr),
               ("fixed 0/90/180/270 (channel)", [0, 90, 180, 270], even, ev),
               ("same-target baseline (all 0)", [0.0] * K, base, ev)]
    rows = []
    for name, angles, e, evaluator in methods:
        rows.append({"method": name, "angles": " ".join(f"{a:.0f}" for a in angles),
                     "diversity_pixel": float(e.terms["diversity_pixel"][0]),
                     "diversity_feature": float(e.terms["diversity_feature"][0]),
                     "loss_own_target": float(e.terms["loss_score"][0]),
                     "style_vs_original": _style_vs_original(evaluator, e.images),
                     "content_loss": float(e.terms["loss_content"][0])})
    pd.DataFrame(rows).to_csv(out / "methods.csv", index=False)
    tiles, labels = [], []
    for name, _, e, _ in methods:
        tiles += list(e.images[0])
        labels += [f"{name.split(' (')[0][:18]} {k}" for k in range(K)]
    save_grid(tiles, out / "grid.jpg", ncol=K, labels=labels, cell=min(256, s["size"]))
    cols = ["method", "angles", "diversity_pixel", "diversity_feature", "loss_own_target", "style_vs_original",
            "content_loss"]
    text = (f"# Rotation + DE vs fixed rotations\n\n{weights_line(ev.engine)} Size {s['size']} px, {s['steps']} "
            f"Adam steps, K = {K} outputs, init = content + noise (the same noise per output index for every "
            f"method), style = The Starry Night. DE: torch-de best1bin, population {s['popsize']}, "
            f"{s['maxiter']} generations, fitness = loss - {s['lambda']:g} x pixel diversity, loss cap "
            f"{s['cap_factor']:g} x the loss at fixed 0/90/180/270 (channel) = {cap:.4g}.\n\n"
            "diversity_pixel: mean pairwise mean |a - b| over the 4 outputs (0-1 scale); loss_own_target: "
            "content + 10 x style loss against each output's own (rotated) target; style_vs_original: mean "
            "relative Gram error against the unrotated painting.\n\n" + md_table(rows, cols) + "\n")
    finish(out, NAME, args, s, ev.engine, text, {"rows": rows, "cap": cap}, t0)


if __name__ == "__main__":
    raise SystemExit(run_main(run))
