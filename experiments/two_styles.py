"""Two styles mixed by convex combinations of their Gram targets: weights 0, 1/4, 1/2, 3/4, 1.

    python experiments/two_styles.py [--quick]

Writes results/two_styles/: grid.jpg (content, style A, style B, then the five mixes), table.md and
mixes.csv with each output's style loss against *each pure style's* target, so the table shows the
outputs moving from style A to style B as the weight of B grows.
"""

from __future__ import annotations

import time

import torch
from _common import (
    STYLE_A,
    STYLE_B,
    engine,
    experiment,
    finish,
    md_table,
    out_dir,
    run_main,
    settings,
    steps_bar,
    weights_line,
)

NAME = "two_styles"
QUICK = {"size": 64, "steps": 60}
FULL = {"size": 256, "steps": 300}
MIXES = [0.0, 0.25, 0.5, 0.75, 1.0]


@experiment(NAME, __doc__, QUICK, FULL)
def run(args):
    import pandas as pd

    from evostyle.report.figures import save_grid
    from evostyle.style.measures import style_term

    t0 = time.perf_counter()
    s = settings(args)
    out = out_dir(args, NAME)
    eng = engine(args, s, [STYLE_A, STYLE_B])
    mix = torch.tensor([[1 - m, m] for m in MIXES])
    with steps_bar("five mixes") as progress:
        res = eng.run(mix, torch.zeros(len(MIXES)), torch.zeros(len(MIXES)), progress=progress)
    layers = eng.cfg.style_layers
    with torch.no_grad():
        feats = eng.model(res.images.to(eng.device))
    rows = []
    for i, m in enumerate(MIXES):
        row = {"weight_of_B": m, "style_loss_own_target": float(res.final["style"][i]) / len(layers),
               "content_loss": float(res.final["content"][i])}
        for tag, j in (("A", 0), ("B", 1)):
            row[f"style_loss_vs_{tag}"] = float(sum(
                style_term(feats[l][i:i + 1], eng.targets.stats[j][l], "gram") for l in layers) / len(layers))
        rows.append(row)
    pd.DataFrame(rows).to_csv(out / "mixes.csv", index=False)
    labels = ["content", "style A", "style B"] + [f"B weight {m:g}" for m in MIXES]
    save_grid([eng.content, *eng.styles, *res.images], out / "grid.jpg", ncol=4, labels=labels,
              cell=256)
    cols = ["weight_of_B", "style_loss_vs_A", "style_loss_vs_B", "style_loss_own_target", "content_loss"]
    text = (f"# Two styles, convex mixing of Gram targets\n\n{weights_line(eng)} Size {s['size']} px, "
            f"{s['steps']} Adam steps, style A = The Starry Night, B = The Great Wave, content = cat.\n"
            "Style losses are mean relative Gram errors over relu1_1..relu5_1.\n\n" + md_table(rows, cols) + "\n")
    finish(out, NAME, args, s, eng, text, {"rows": rows}, t0)


if __name__ == "__main__":
    raise SystemExit(run_main(run))
