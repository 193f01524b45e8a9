"""Calibrate the transfer's defaults on real (ImageNet) features: style weight, learning rate, rotation mode.

    python experiments/calibrate.py --part weights            # style weight x learning rate
    python experiments/calibrate.py --part rotation --style-weight W --lr LR   # rotation modes at those

Four content/style pairs (the three experiment pairs and the bundled cat / Starry Night). ``weights``:
every pair at each style weight (content weight 1, TV 0) and learning rate, one unrotated output each;
``rotation``: each rotation mode at 0/90/180/270 degrees (rotation weight 1). Per output: how much of
the style error to the *unrotated* painting it removed (``style_cut``, 1 - final / the photo's; the
per-layer Gram error |G - G_s|^2 / |G_s|^2, mean over relu1_1..relu5_1), its content error at relu4_2
(|F - F_c|^2 / |F_c|^2) and, for rotations, the mean pairwise pixel distance of a pair's four outputs.
Writes results/calibration/<part>/: table.md, record.json, grid.jpg.
"""

from __future__ import annotations

import time

import torch
from _common import PAIRS, experiment, finish, md_table, out_dir, run_main, say, settings, steps_bar, weights_line

NAME = "calibration"
QUICK = {"size": 48, "steps": 20}
FULL = {"size": 128, "steps": 100}
PAIRS_ALL = {**PAIRS, "cat-starry_night": ("sample:cat.jpg", "sample:starry_night.jpg")}
STYLE_WEIGHTS = (0.3, 1.0, 3.0, 10.0)
LRS = (0.02, 0.05)
MODES = ("rectified", "pixel")
ANGLES = (0.0, 90.0, 180.0, 270.0)


def options(ap):
    ap.add_argument("--part", choices=("weights", "rotation"), default="weights", help="what to calibrate")
    ap.add_argument("--style-weight", type=float, default=1.0, help="with --part rotation: the style weight")
    ap.add_argument("--lr", type=float, default=0.05, help="with --part rotation: Adam's learning rate")


def _engine(args, s, content, style, lr, mode="none"):
    from evostyle.io.samples import resolve_image
    from evostyle.transfer.config import TransferConfig
    from evostyle.transfer.engine import StyleEngine
    cfg = TransferConfig(steps=s["steps"], lr=lr, style_weight=1.0, content_weight=1.0)
    return StyleEngine(resolve_image(str(content)), [resolve_image(str(style))], cfg, size=s["size"],
                       rotation_mode=mode, weights=args.weights, seed=args.seed, device=args.device)


def _scores(eng, images):
    """(style error to the unrotated painting, content error) of each image, and the photo's style error."""
    from evostyle.search.scoring import output_terms
    cfg = eng.cfg
    ref = {l: eng.targets.stats[0][l].expand(images.shape[0], *eng.targets.stats[0][l].shape[1:])
           for l in cfg.style_layers}
    with torch.no_grad():
        terms, _ = output_terms(eng.model, images, eng.content_features, ref, cfg.style_layers, cfg.content_layer,
                                cfg.measure)
        photo, _ = output_terms(eng.model, eng.content[None], eng.content_features, {l: r[:1] for l, r in ref.items()},
                                cfg.style_layers, cfg.content_layer, cfg.measure)
    style = torch.stack([terms[f"style_{l}"] for l in cfg.style_layers], 1).mean(1)
    photo_style = float(torch.stack([photo[f"style_{l}"] for l in cfg.style_layers], 1).mean())
    return style, terms["content"], photo_style


def _weights(args, s, out):
    rows, panels, labels, eng = [], [], [], None
    n = len(STYLE_WEIGHTS)
    for pair, (content, style) in PAIRS_ALL.items():
        for lr in LRS:
            eng = _engine(args, s, content, style, lr)
            with steps_bar(f"{pair} lr {lr}") as progress:
                res = eng.run(torch.ones(n, 1), torch.zeros(n), torch.zeros(n),
                              style_weights=torch.tensor(STYLE_WEIGHTS), progress=progress)
            style_err, content_err, photo = _scores(eng, res.images)
            for i, sw in enumerate(STYLE_WEIGHTS):
                rows.append({"pair": pair, "lr": lr, "style_weight": sw, "style_cut": 1 - float(style_err[i]) / photo,
                             "style_error": float(style_err[i]), "content_error": float(content_err[i])})
            if lr == LRS[-1]:
                panels += [eng.content, eng.styles[0], *res.images]
                labels += [f"{pair}", "painting", *(f"style weight {sw:g}" for sw in STYLE_WEIGHTS)]
            say(f"{pair} lr {lr}: style cut " + ", ".join(f"{r['style_cut']:.2f}" for r in rows[-n:]))
    return rows, panels, labels, n + 2, eng, ["pair", "lr", "style_weight", "style_cut", "style_error",
                                              "content_error"]


def _rotation(args, s, out):
    from evostyle.search.scoring import pairwise_pixel
    rows, panels, labels, eng = [], [], [], None
    k = len(ANGLES)
    for pair, (content, style) in PAIRS_ALL.items():
        for mode in MODES:
            eng = _engine(args, s, content, style, args.lr, mode)
            with steps_bar(f"{pair} {mode}") as progress:
                res = eng.run(torch.ones(k, 1), torch.tensor(ANGLES, dtype=torch.float64), torch.ones(k),
                              style_weights=torch.full((k,), args.style_weight), progress=progress)
            style_err, content_err, photo = _scores(eng, res.images)
            cuts = [1 - float(e) / photo for e in style_err]
            rows.append({"pair": pair, "mode": mode, **{f"style_cut_{a:g}": c for a, c in zip(ANGLES, cuts)},
                         "content_error": float(content_err.mean()),
                         "diversity_pixel": float(pairwise_pixel(res.images[None])[0])})
            panels += [eng.content, eng.styles[0], *res.images]
            labels += [pair, "painting", *(f"{mode} {a:g} deg" for a in ANGLES)]
            say(f"{pair} {mode}: cuts {', '.join(f'{c:.2f}' for c in cuts)}, "
                f"diversity {rows[-1]['diversity_pixel']:.3f}")
    cols = ["pair", "mode", *(f"style_cut_{a:g}" for a in ANGLES), "content_error", "diversity_pixel"]
    return rows, panels, labels, k + 2, eng, cols


@experiment(NAME, __doc__, QUICK, FULL, options)
def run(args):
    from evostyle.report.figures import save_grid
    t0 = time.perf_counter()
    s = settings(args)
    if args.part == "rotation":
        s.update(style_weight=args.style_weight, lr=args.lr)
    args.out = args.out or (None if args.quick else f"results/{NAME}/{args.part}")
    out = out_dir(args, f"{NAME}/{args.part}")
    rows, panels, labels, ncol, eng, cols = (_weights if args.part == "weights" else _rotation)(args, s, out)
    save_grid(panels, out / "grid.jpg", ncol=ncol, labels=labels, cell=192)
    what = ("Style weight (content weight 1, TV 0) x Adam learning rate, one unrotated output per row"
            if args.part == "weights" else
            f"Rotation modes at 0/90/180/270 degrees, rotation weight 1, style weight {args.style_weight:g}, "
            f"lr {args.lr:g}")
    text = (f"# Calibration on real features: {args.part}\n\n{weights_line(eng)} {what}; {s['size']} px, "
            f"{s['steps']} Adam steps. style_cut: share of the photo's style error to the unrotated painting "
            "(mean over the style layers of |G - G_s|^2 / |G_s|^2) that the output removed; content_error: "
            "|F - F_c|^2 / |F_c|^2 at the content layer; diversity_pixel: mean pairwise |a - b| of the four "
            "outputs.\n\n" + md_table(rows, cols) + "\n")
    finish(out, f"{NAME}", args, s, eng, text, {"part": args.part, "rows": rows}, t0)


if __name__ == "__main__":
    raise SystemExit(run_main(run))
