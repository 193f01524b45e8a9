"""Channel vs spatial shuffling of the style features: what each does to the Gram target and the output.

    python experiments/shuffle.py [--quick]

A seeded channel permutation changes a Gram target (G' = P G P^T); a spatial permutation leaves it
exactly unchanged (a Gram matrix sums over positions). Writes results/shuffle/: table.md (relative
target change per layer, pixel distance of each output from the unshuffled output), grid.jpg.
"""

from __future__ import annotations

import time

import torch
from _common import STYLE_A, engine, experiment, finish, md_table, out_dir, run_main, settings, steps_bar, weights_line

NAME = "shuffle"
QUICK = {"size": 64, "steps": 60}
FULL = {"size": 256, "steps": 300}
MODES = ("none", "channel", "spatial")


@experiment(NAME, __doc__, QUICK, FULL)
def run(args):
    from evostyle.report.figures import save_grid
    from evostyle.style.targets import relative_change

    t0 = time.perf_counter()
    s = settings(args)
    out = out_dir(args, NAME)
    engines = {m: engine(args, s, [STYLE_A], shuffle=m) for m in MODES}
    base = engines["none"]
    layers = base.cfg.style_layers
    outs = {}
    for m, e in engines.items():
        with steps_bar(f"shuffle {m}") as progress:
            outs[m] = e.run(torch.ones(1, 1), torch.zeros(1), torch.zeros(1), progress=progress)
    rows = []
    for m in MODES:
        row = {"shuffle": m}
        for l in layers:
            row[l] = relative_change(engines[m].targets.stats[0][l], base.targets.stats[0][l])
        row["output_vs_unshuffled"] = float((outs[m].images[0] - outs["none"].images[0]).abs().mean())
        row["final_style_loss"] = float(outs[m].final["style"][0]) / len(layers)
        rows.append(row)
    save_grid([base.content, base.styles[0]] + [outs[m].images[0] for m in MODES], out / "grid.jpg", ncol=5,
              labels=["content", "style"] + [f"shuffle {m}" for m in MODES], cell=256)
    text = (f"# Shuffling style feature maps\n\n{weights_line(base)} Size {s['size']} px, {s['steps']} Adam "
            "steps. Columns relu*: relative change ||G' - G|| / ||G|| of the Gram target; "
            "output_vs_unshuffled: mean |a - b| between the output and the unshuffled one. The spatial shuffle "
            "changes the target only by float rounding (1e-7), yet its output differs by a few hundredths: "
            "the optimisation is chaotic, so that is the noise floor for output distances.\n\n"
            + md_table(rows, ["shuffle", *layers, "output_vs_unshuffled", "final_style_loss"]) + "\n")
    finish(out, NAME, args, s, base, text, {"rows": rows}, t0)


if __name__ == "__main__":
    raise SystemExit(run_main(run))
