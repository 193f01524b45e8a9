"""``python -m evostyle.transfer``: one style transfer (several outputs) from the command line.

Writes ``output_<k>.png`` per output, ``grid.jpg`` (the content, the paintings and the outputs, each
labelled) and ``losses.json`` (initial and final loss terms of every output, the resolved config, the
weights used, device and versions), and copies nothing else.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

import torch

from evostyle.cli.common import MEMORY_FIX, plain, show_defaults
from evostyle.errors import EvostyleError, cli_errors
from evostyle.io.atomic import atomic_write_json
from evostyle.io.images import load_image, resize, save_image
from evostyle.io.samples import resolve_image
from evostyle.network.backbones import BACKBONES, POOLS
from evostyle.network.device import PRECISIONS
from evostyle.progress import setup_logging, step_counter
from evostyle.rundir.record import environment
from evostyle.seeding import check_seed, derived_seed
from evostyle.style.colour import ORIGINAL_COLOURS
from evostyle.style.measures import MEASURES
from evostyle.style.rotations import ROTATION_MODES
from evostyle.style.targets import SHUFFLE_MODES
from evostyle.transfer.compiling import resolve_compile_mode
from evostyle.transfer.config import COMPILE_MODES, INITS, TransferConfig
from evostyle.transfer.optimisers import INNER_OPTIMIZERS

logger = logging.getLogger("evostyle")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evostyle.transfer", description=plain(__doc__))
    p.add_argument("--content", required=True, help="content image")
    p.add_argument("--style", action="append", required=True, help="style image (repeat for several)")
    p.add_argument("--mix", type=float, nargs="+", default=None,
                   help="with 2 styles: weight(s) of the second style, one output per value (e.g. 0 0.25 "
                        "0.5 0.75 1); with S styles: S non-negative weights (default: an equal mix)")
    p.add_argument("--rotation-mode", default="none", choices=ROTATION_MODES,
                   help="how the style features are rotated")
    p.add_argument("--angles", type=float, nargs="+", default=[0.0], help="degrees, one output per angle")
    p.add_argument("--rotation-weight", type=float, default=1.0, help="DFR fusion weight in [0, 1]")
    p.add_argument("--shuffle", default="none", choices=SHUFFLE_MODES, help="shuffle the style feature maps")
    p.add_argument("--measure", default=TransferConfig.measure, choices=MEASURES, help="style statistic compared")
    p.add_argument("--backbone", default=TransferConfig.backbone, choices=("auto", *BACKBONES),
                   help="feature network (auto: the weights' own, vgg19 for imagenet and random)")
    p.add_argument("--style-layers", nargs="+", default=list(TransferConfig.style_layers),
                   help="layers of the style loss")
    p.add_argument("--content-layer", default=TransferConfig.content_layer, help="layer of the content loss")
    p.add_argument("--content-weight", type=float, default=TransferConfig.content_weight,
                   help="weight of the content term")
    p.add_argument("--style-weight", type=float, default=TransferConfig.style_weight, help="weight of the style term")
    p.add_argument("--tv-weight", type=float, default=TransferConfig.tv_weight,
                   help="weight of the total-variation term")
    p.add_argument("--size", type=int, default=256, help="long side of the output in px")
    p.add_argument("--steps", type=int, default=TransferConfig.steps, help="inner optimisation steps")
    p.add_argument("--scales", type=int, nargs="+", default=[], metavar="PX",
                   help="coarse to fine: long sides to optimise at first, rising to --size, the steps shared among "
                        "them (e.g. --scales 64 128 256; default: one scale)")
    p.add_argument("--optimizer", default=TransferConfig.optimizer, choices=INNER_OPTIMIZERS, help="inner optimiser")
    own = ", ".join(f"{name} {opt.DEFAULT_LR:g}" for name, opt in INNER_OPTIMIZERS.items())
    p.add_argument("--lr", type=float, default=TransferConfig.lr,
                   help=f"learning rate (default: the optimiser's own: {own})")
    p.add_argument("--init", default=TransferConfig.init, choices=INITS, help="start image")
    p.add_argument("--init-image", metavar="IMAGE",
                   help="start every output from this image (resized to the content's size) instead of --init")
    p.add_argument("--original-colors", choices=list(ORIGINAL_COLOURS), default=None,
                   help="keep the photo's colours (Gatys et al. 2017): luminance (the outputs' luminance in the "
                        "photo's chroma) or histogram (each painting recoloured to the photo's colour statistics "
                        "first)")
    p.add_argument("--save-every", type=int, default=0, metavar="N",
                   help="also save each output every N steps, as output_<k>_step<step>.png (neural-style's "
                        "-save_iter; default 0: only the final outputs)")
    p.add_argument("--pool", default="max", choices=POOLS, help="the network's pooling (avg: Gatys et al.'s choice)")
    p.add_argument("--init-noise", type=float, default=TransferConfig.init_noise,
                   help="noise amplitude of the content+noise init")
    p.add_argument("--seed", type=int, default=0, help="seeds the noise inits and the random-init weights")
    p.add_argument("--weights", default="auto",
                   help="auto (ImageNet: torchvision's, else the offline VGG16, else random) | imagenet | offline | "
                        "random | a weights file (.pt state dict, .onnx, .h5)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--precision", default=TransferConfig.precision, choices=PRECISIONS,
                   help="auto: bf16 autocast + channels_last on CUDA, fp32 on the CPU")
    p.add_argument("--max-batch", type=int, default=TransferConfig.max_batch,
                   help="most rows per forward pass (default: all; halved on out of memory)")
    p.add_argument("--compile", action="store_true", default=TransferConfig.compile,
                   help="torch.compile the inner step (fuses the elementwise work; compiles once per batch shape)")
    p.add_argument("--compile-mode", default=None, choices=COMPILE_MODES,
                   help=f"torch.compile's mode (implies --compile; default: {TransferConfig.compile_mode}, which "
                        "is reduce-overhead (CUDA graphs) on CUDA and default elsewhere)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier transfer's outputs in --out (other files there are kept)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages, only warnings and errors")
    p.add_argument("-v", "--verbose", action="store_true", help="debug detail too")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    show_defaults(p)
    return p


def _rows(args, n_styles: int):
    """Expand (mix values x angles) into per-output rows: list of (mix weights, angle)."""
    if args.mix is None:
        mixes = [[1.0 / n_styles] * n_styles]
    elif n_styles == 2:
        if any(not 0 <= m <= 1 for m in args.mix):
            raise EvostyleError(f"with 2 styles each --mix value is the second style's weight in [0, 1], "
                                f"got {args.mix}")
        mixes = [[1 - m, m] for m in args.mix]
    elif len(args.mix) == n_styles:
        mixes = [list(args.mix)]
    else:
        raise EvostyleError(f"--mix needs {n_styles} weights for {n_styles} styles, got {len(args.mix)}")
    for m in mixes:
        if any(not (v >= 0) for v in m) or sum(m) <= 0:
            raise EvostyleError(f"mixing weights must be >= 0 and not all 0, got {m}; use values in [0, 1]")
    return [(m, a) for m in mixes for a in args.angles]


def run(args: argparse.Namespace) -> dict:
    from evostyle.transfer.engine import StyleEngine
    check_seed(args.seed)
    if args.save_every < 0:
        raise EvostyleError(f"--save-every must be >= 0 (0: only the final outputs), got {args.save_every}")
    if not 0.0 <= args.rotation_weight <= 1.0:
        raise EvostyleError(f"--rotation-weight must be in [0, 1], got {args.rotation_weight}")
    cfg = TransferConfig(backbone=args.backbone, style_layers=tuple(args.style_layers),
                         content_layer=args.content_layer, measure=args.measure, content_weight=args.content_weight,
                         style_weight=args.style_weight, tv_weight=args.tv_weight, steps=args.steps,
                         optimizer=args.optimizer, lr=args.lr, init=args.init, init_noise=args.init_noise,
                         max_batch=args.max_batch, precision=args.precision,
                         compile=args.compile or args.compile_mode is not None,
                         compile_mode=args.compile_mode or TransferConfig.compile_mode)
    rows = _rows(args, len(args.style))
    content, styles = resolve_image(args.content), [resolve_image(s) for s in args.style]
    when, recolour = ORIGINAL_COLOURS.get(args.original_colors) if args.original_colors else (None, None)
    if when == "before":  # each painting in the photo's palette, before its targets are built
        photo = load_image(content, args.size)
        styles = [recolour(load_image(s, tuple(photo.shape[-2:])), photo) for s in styles]
    engine = StyleEngine(content, styles, cfg,
                         size=args.size, rotation_mode=args.rotation_mode, shuffle=args.shuffle,
                         weights=args.weights, seed=args.seed, device=args.device, pool=args.pool,
                         scales=args.scales)  # checks cfg and the scales, resolves lr
    init = None
    if args.init_image is not None:
        init = load_image(resolve_image(args.init_image), tuple(engine.content.shape[-2:]))
    engine.targets.mode.check_angles(args.angles)  # before --out is touched
    from evostyle.rundir.layout import TRANSFER, ensure_dir, prepare_new
    out = ensure_dir(Path(args.out))
    kept = prepare_new(out, args.overwrite, TRANSFER)  # never a user's file; only a transfer's own
    if kept:
        logger.warning("kept %d file(s) evostyle did not write in %s", len(kept), out)
    mix = torch.tensor([r[0] for r in rows])
    angles = torch.tensor([r[1] for r in rows], dtype=torch.float64)
    logger.info("transfer: %d output(s), %d steps at %dx%d px, into %s", len(rows), cfg.steps,
                engine.content.shape[-1], engine.content.shape[-2], out)
    progress, close = step_counter("transfer", args.quiet)

    def as_saved(images: torch.Tensor) -> torch.Tensor:
        """The outputs as they are written: recoloured now when --original-colors recolours after the
        transfer (a coarse scale's snapshot against the photo at its own size)."""
        if when != "after":
            return images
        hw = tuple(images.shape[-2:])
        photo = engine.content if hw == tuple(engine.content.shape[-2:]) else resize(engine.content, hw)
        return recolour(images, photo)

    def save_step(step: int, first: int, images: torch.Tensor) -> None:
        for i, image in enumerate(as_saved(images)):
            save_image(image, out / f"output_{first + i}_step{step:05d}.png")
    try:
        res = engine.run(mix, angles, torch.full((len(rows),), args.rotation_weight),
                         noise_seeds=[derived_seed(args.seed, i) for i in range(len(rows))], progress=progress,
                         init_images=None if init is None else init.expand(len(rows), -1, -1, -1).contiguous(),
                         snapshot=(args.save_every, save_step) if args.save_every else None)
    finally:
        close()
    images = as_saved(res.images)
    outputs = []
    for k, (m, a) in enumerate(rows):
        name = f"output_{k}.png"
        save_image(images[k], out / name)
        outputs.append({"file": name, "mix": m, "angle": a, "failed": bool(res.failed[k]),
                        "initial": {t: float(v[k]) for t, v in res.initial.items()},
                        "final": {t: float(v[k]) for t, v in res.final.items()}})
    from evostyle.report.figures import save_grid
    recoloured = " (recoloured)" if when == "before" else ""
    labels = [f"content: {Path(args.content).name}", *(f"style: {Path(s).name}{recoloured}" for s in args.style),
              *(f"output {k}" + (f", mix {m[-1]:g}" if len(m) > 1 else "") + (f", {a:g} deg" if a else "")
                for k, (m, a) in enumerate(rows))]
    save_grid([engine.content, *engine.styles, *images], out / "grid.jpg", ncol=min(4, len(labels)), labels=labels)
    record = {"config": {**{k: v for k, v in vars(args).items() if k not in ("debug",)},
                         "transfer": dataclasses.asdict(engine.cfg)},  # the backbone and lr as resolved
              "weights": engine.weights_info, "environment": environment(engine.device),
              "compile_mode_used": resolve_compile_mode(cfg.compile_mode, engine.device) if cfg.compile else None,
              "seconds": res.seconds, "chunk_size": res.chunk_size, "precision": res.precision,
              "outputs": outputs}
    atomic_write_json(out / "losses.json", record)
    return record


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(-1 if args.quiet else 1 if args.verbose else 0)
    with cli_errors(args.debug, "evostyle.transfer", memory_fix=MEMORY_FIX):
        rec = run(args)
        for o in rec["outputs"]:
            flag = "  FAILED" if o["failed"] else ""
            print(f"{o['file']}: angle {o['angle']:g} mix {o['mix']} style {o['initial']['style']:.4g} -> "
                  f"{o['final']['style']:.4g}, content {o['final']['content']:.4g}{flag}")
        print(f"wrote {len(rec['outputs'])} image(s), grid.jpg and losses.json to {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
