"""Gram vs Euclidean vs mean/std style measures on one pair, and rotation under each measure.

    python experiments/measures.py [--quick]

For each measure it transfers the style unrotated, with the style feature maps rotated spatially by
90 degrees, and with a channel rotation of 90 degrees. The table gives the relative change of the
target (mean over layers) and the pixel distance between the rotated and the unrotated output: a Gram
target is blind to the spatial rotation, the Euclidean one is not. Writes results/measures/.
"""

from __future__ import annotations

import time

import torch
from _common import STYLE_A, engine, experiment, finish, md_table, out_dir, run_main, settings, steps_bar, weights_line

NAME = "measures"
QUICK = {"size": 64, "steps": 60}
FULL = {"size": 256, "steps": 300}
MEASURES = ("gram", "euclidean", "meanstd")
ROTATIONS = (("none", 0.0), ("spatial", 90.0), ("channel", 90.0))


@experiment(NAME, __doc__, QUICK, FULL)
def run(args):
    from evostyle.report.figures import save_grid
    from evostyle.style.targets import relative_change

    t0 = time.perf_counter()
    s = settings(args)
    out = out_dir(args, NAME)
    rows, tiles, labels, first = [], [], [], None
    for measure in MEASURES:
        imgs = {}
        for mode, angle in ROTATIONS:
            eng = engine(args, s, [STYLE_A], rotation_mode=mode, measure=measure)
            first = first or eng
            t = eng.targets.build(torch.ones(1, 1), torch.tensor([angle]), torch.ones(1))
            change = sum(relative_change(t[l][0], eng.targets.stats[0][l][0]) for l in eng.cfg.style_layers)
            with steps_bar(f"{measure} {mode} {angle:g}") as progress:
                res = eng.run(torch.ones(1, 1), torch.tensor([angle]), torch.ones(1), progress=progress)
            imgs[mode] = res.images[0]
            rows.append({"measure": measure, "rotation": f"{mode} {angle:g}",
                         "target_change": change / len(eng.cfg.style_layers),
                         "final_style_loss": float(res.final["style"][0]) / len(eng.cfg.style_layers),
                         "final_content_loss": float(res.final["content"][0])})
            tiles.append(res.images[0])
            labels.append(f"{measure} {mode} {angle:g}")
        for r in rows[-3:]:
            r["pixel_dist_to_unrotated"] = float((imgs[r["rotation"].split()[0]] - imgs["none"]).abs().mean())
    save_grid(tiles, out / "grid.jpg", ncol=3, labels=labels, cell=256)
    cols = ["measure", "rotation", "target_change", "pixel_dist_to_unrotated", "final_style_loss",
            "final_content_loss"]
    text = (f"# Style measures and rotation\n\n{weights_line(first)} Size {s['size']} px, {s['steps']} Adam "
            "steps, style = The Starry Night. target_change: mean over layers of ||T' - T|| / ||T||; "
            "pixel_dist_to_unrotated: mean |a - b| to the same measure's unrotated output. The optimisation "
            "is deterministic (the same target gives 0), but it is chaotic: a target that differs only by "
            "float rounding (about 1e-7, as after an exact rot90) already moves the output by a few "
            "hundredths, so read small distances against that floor (see results/shuffle).\n\n"
            + md_table(rows, cols) + "\n")
    finish(out, NAME, args, s, first, text, {"rows": rows}, t0)


if __name__ == "__main__":
    raise SystemExit(run_main(run))
