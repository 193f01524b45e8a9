"""Can post-ReLU features reach a rotated style target? Every rotation mode at angles 0..330 degrees.

    python experiments/reachability.py [--quick]

For each content/style pair, rotation mode and angle it builds the rotated Gram targets and runs one
transfer towards them (content init, the default weights, every angle of a mode in one batch), then
records, as means over the style layers:

* ``neg_fraction``: the fraction of target entries below zero (below -1e-6 x the layer's largest
  entry, so rounding around exact zeros does not count). A Gram matrix of non-negative (post-ReLU)
  features has none, so a negative entry cannot be matched.
* ``target_change``: ||T(a) - T(0)|| / ||T(0)||, how much the angle changes the target.
* ``style_fallen``: 1 - final / initial style loss against the output's own (rotated) target, and
  ``reachability`` = style_fallen(a) / style_fallen(0): 1 means the rotated target is as reachable
  in these steps as the unrotated one.
* ``fidelity_style``: the output's style error against the *unrotated* painting (lower is more
  faithful) and ``pixel_distance``: mean |a - b| between the output and the angle-0 output of the
  same mode (what rotation adds to a set of outputs).
* ``tradeoff_hv``, per mode and pair: the hypervolume of the mode's (fidelity_style, -pixel_distance)
  points over its angles against (the unstylised content image's fidelity_style, 0): how much of
  "faithful and different" the mode can offer at all.

A second table repeats the three channel-space modes with ``--long-steps`` steps (at ``--long-size``
px, angles 0/60/120/180) to tell targets that are not reached *yet* from targets that are not reached
at all. Writes results/reachability/: table.md, reachability.csv (every pair and angle), long.csv,
plot.png and record.json.
"""

from __future__ import annotations

import time

import torch
from _common import PAIRS, experiment, finish, md_table, out_dir, run_main, say, settings, steps_bar, weights_line

NAME = "reachability"
QUICK = {"size": 32, "steps": 10, "long_size": 32, "long_steps": 20}
FULL = {"size": 48, "steps": 40, "long_size": 32, "long_steps": 300}
MODES = ("channel", "rectified", "preact", "spatial", "pixel", "dfr")
ANGLES = (0, 5, 10, 20, 30, 45, 60, 90, 120, 150, 180, 210, 240, 270, 300, 330)
LONG_MODES, LONG_ANGLES = ("channel", "rectified", "preact"), (0, 60, 120, 180)


def _negative_fraction(t: torch.Tensor) -> float:
    """Fraction of entries of (B, C, C) targets below -1e-6 x each row's largest |entry|, (B,) -> mean."""
    scale = t.flatten(1).abs().amax(1).clamp_min(1e-30).view(-1, 1, 1)
    return (t < -1e-6 * scale).flatten(1).float().mean(1)


def measure_mode(args, s, pair: str, mode: str, angles=ANGLES, size=None, steps=None):
    """One transfer per angle of ``mode`` on ``pair`` (one batch): (rows with the module doc's columns,
    one per angle, the engine)."""
    from evostyle.search.scoring import output_terms
    from evostyle.style.targets import relative_change
    from evostyle.transfer.config import TransferConfig
    from evostyle.transfer.engine import StyleEngine

    content, style = PAIRS[pair]
    angles = torch.tensor([a for a in angles if mode != "dfr" or a % 90 == 0], dtype=torch.float64)
    eng = StyleEngine(str(content), [str(style)], TransferConfig(steps=steps or s["steps"]), size=size or s["size"],
                      rotation_mode=mode, weights=args.weights, seed=args.seed, device=args.device)
    n, layers = angles.numel(), eng.cfg.style_layers
    targets = eng.build_targets(torch.ones(n, 1), angles, torch.ones(n))
    base = eng.targets.stats[0]
    with steps_bar(f"{mode}: {n} angles") as progress:
        res = eng.optimise(targets, noise_seeds=list(range(n)), progress=progress)
    images = torch.cat([res.images, eng.content[None]])  # the photo itself last: the reference
    per_image, _ = output_terms(eng.model, images, eng.content_features,
                                eng.targets.unrotated(torch.ones(n + 1, 1)), layers, eng.cfg.content_layer,
                                eng.cfg.measure)
    mean = lambda d, pre: torch.stack([d[f"{pre}{l}"].double() for l in layers], 1).mean(1)
    fallen = 1 - mean(res.final, "style_") / mean(res.initial, "style_")
    neg = torch.stack([_negative_fraction(targets[l].cpu()) for l in layers], 1).mean(1)
    rows = []
    for i, a in enumerate(angles.tolist()):
        rows.append({"pair": pair, "mode": mode, "angle": a, "neg_fraction": float(neg[i]),
                     "target_change": sum(relative_change(targets[l][i], base[l][0]) for l in layers) / len(layers),
                     "style_fallen": float(fallen[i]), "reachability": float(fallen[i] / fallen[0]),
                     "fidelity_style": float(mean(per_image, "style_")[i]),
                     "pixel_distance": float((res.images[i] - res.images[0]).abs().mean()),
                     "photo_fidelity_style": float(mean(per_image, "style_")[n]), "failed": bool(res.failed[i])})
    return rows, eng


def tradeoff(df):
    """Per pair and mode, the hypervolume of (fidelity_style, -pixel_distance) over the angles against
    (the photo's fidelity_style, 0)."""
    from evostyle.de import hypervolume_2d
    out = []
    for (pair, mode), g in df.groupby(["pair", "mode"], sort=False):
        ref = [float(g.photo_fidelity_style.iloc[0]), 0.0]
        out.append({"pair": pair, "mode": mode, "tradeoff_hv": hypervolume_2d(
            list(zip(g.fidelity_style, -g.pixel_distance)), ref)})
    return out


def _plot(df, path):
    from evostyle.report.plots import pyplot
    plt = pyplot()
    mean = df.groupby(["mode", "angle"], sort=False).mean(numeric_only=True).reset_index()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for mode, g in mean.groupby("mode", sort=False):
        axes[0].plot(g.angle, g.neg_fraction, "o-", ms=3, label=mode)
        axes[1].plot(g.angle, g.reachability, "o-", ms=3, label=mode)
        axes[2].plot(g.pixel_distance, g.fidelity_style, "o", ms=4, label=mode)
    axes[0].set(xlabel="angle (degrees)", ylabel="negative target entries (fraction)", title="Reachable in principle?")
    axes[1].set(xlabel="angle (degrees)", ylabel="style loss removed, relative to 0 degrees",
                title="Reached in the same steps?")
    axes[2].set(xlabel="pixel distance to the 0-degree output", ylabel="style error vs the painting",
                title="Different, and still the painting?")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@experiment(NAME, __doc__, QUICK, FULL)
def run(args):
    import pandas as pd

    t0 = time.perf_counter()
    s = settings(args)
    out = out_dir(args, NAME)
    rows, long_rows, eng = [], [], None
    for pair in PAIRS:
        for mode in MODES:
            say(f"{pair}: {mode}")
            r, eng = measure_mode(args, s, pair, mode)
            rows += r
        for mode in LONG_MODES:
            say(f"{pair}: {mode}, {s['long_steps']} steps at {s['long_size']} px")
            long_rows += measure_mode(args, s, pair, mode, LONG_ANGLES, s["long_size"], s["long_steps"])[0]
    df, long = pd.DataFrame(rows), pd.DataFrame(long_rows)
    df.to_csv(out / "reachability.csv", index=False)
    long.to_csv(out / "long.csv", index=False)
    _plot(df, out / "plot.png")
    cols = ["neg_fraction", "target_change", "style_fallen", "reachability", "fidelity_style", "pixel_distance"]
    by_angle = df.groupby(["mode", "angle"], sort=False)[cols].mean().reset_index()
    off = df[df.angle != 0].groupby("mode", sort=False)[cols].mean().reset_index()
    hv = pd.DataFrame(tradeoff(df)).pivot(index="mode", columns="pair", values="tradeoff_hv")
    hv = hv.loc[list(MODES), list(PAIRS)]
    hv["mean"] = hv.mean(axis=1)
    off["tradeoff_hv"] = hv["mean"].to_numpy()
    long_tab = long.groupby(["mode", "angle"], sort=False)[["style_fallen", "reachability", "fidelity_style",
                                                           "pixel_distance"]].mean().reset_index()
    base, photo = float(df[df.angle == 0].fidelity_style.mean()), float(df.photo_fidelity_style.mean())
    text = (f"# Reachability of rotated style targets\n\n{weights_line(eng)} Size {s['size']} px, {s['steps']} "
            f"Adam steps from the content image, Gram measure, {len(PAIRS)} content/style pairs "
            f"({', '.join(PAIRS)}), seed {args.seed}. Means over the pairs and the style layers; columns as "
            "in the script's doc.\n\n"
            f"## Summary over the angles other than 0\n\nAt 0 degrees every mode is the unrotated target "
            f"(fidelity_style {base:.4g}); the unstylised photo has fidelity_style {photo:.4g}.\n\n"
            + md_table(off.to_dict("records"), ["mode"] + cols + ["tradeoff_hv"])
            + "\n\n## Trade-off hypervolume per pair\n\n"
            + md_table(hv.reset_index().to_dict("records"), ["mode", *PAIRS, "mean"])
            + f"\n\n## Longer optimisation: {s['long_steps']} steps at {s['long_size']} px\n\n"
            + md_table(long_tab.to_dict("records"), ["mode", "angle", "style_fallen", "reachability",
                                                     "fidelity_style", "pixel_distance"])
            + "\n\n## Every angle\n\n" + md_table(by_angle.to_dict("records"), ["mode", "angle"] + cols) + "\n")
    finish(out, NAME, args, s, eng, text, {"summary": off.to_dict("records")}, t0)


if __name__ == "__main__":
    raise SystemExit(run_main(run))
