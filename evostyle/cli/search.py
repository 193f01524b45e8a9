"""``python -m evostyle.search``: differential evolution over style-transfer parameters.

With no arguments it runs a small search on the bundled images (a few minutes on a 2-core CPU), writes a
run directory under ``results/`` and prints where it is and the best parameters. See ``--help``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evostyle.cli.common import show_defaults
from evostyle.errors import EvostyleError, cli_errors
from evostyle.io.atomic import read_json
from evostyle.search.config import OPTIMIZERS, SearchConfig, load_toml, make_config
from evostyle.search.run import default_run_dir, run_search
from evostyle.search.signals import Interrupted


def build_parser() -> argparse.ArgumentParser:
    from evostyle.de import STRATEGIES
    from evostyle.network.device import PRECISIONS
    from evostyle.search.config import SAVE_IMAGES
    from evostyle.search.scoring import DIVERSITY_METRICS, FITNESS_LOSSES, OBJECTIVES
    from evostyle.search.space import SEARCH_GROUPS
    from evostyle.style.measures import MEASURES
    from evostyle.style.rotations import ROTATION_MODES
    from evostyle.style.targets import SHUFFLE_MODES
    from evostyle.transfer.config import COMPILE_MODES, INITS
    p = argparse.ArgumentParser(prog="python -m evostyle.search", description=__doc__.splitlines()[0])
    a = p.add_argument
    alt = " | ".join
    a("--config", help="TOML file with any of the settings below (flags override it)")
    a("--content", help="content image (sample:NAME is a bundled image)")
    a("--style", action="append", help="style image; repeat for several")
    a("--optimizer", choices=OPTIMIZERS, help="outer loop: our torch-batched DE, scipy's DE, or random search "
      "(the baseline, same budget)")
    a("--objective", choices=OBJECTIVES, help="scalar: minimise fitness = quality - lambda * diversity; pareto: "
      "the front of (quality, diversity) (GDE3 with torch-de)")
    a("--strategy", help=f"DE strategy: auto (best1bin; rand1bin for pareto) | {alt(STRATEGIES)}")
    a("--popsize", type=int, help="population size P (total, not scipy's multiplier)")
    a("--maxiter", type=int, help="generations after the initial population")
    a("--outputs", type=int, help="K outputs per candidate")
    a("--search", nargs="+", help=f"parameter groups to search: {' '.join(SEARCH_GROUPS)}")
    a("--fix", action="append", metavar="NAME=VALUE", help="fix one parameter, e.g. angle_0=0")
    a("--bounds", action="append", metavar="NAME=LOW,HIGH", help="bounds of a parameter or group")
    a("--rotation-mode", help=alt(ROTATION_MODES))
    a("--shuffle", help=alt(SHUFFLE_MODES))
    a("--measure", help=alt(MEASURES))
    a("--size", type=int, help="long side of the outputs in px")
    a("--steps", type=int, help="inner optimisation steps per candidate")
    a("--lr", type=float, help="inner learning rate")
    a("--image-init", help=alt(INITS))
    a("--diversity-metric", help=alt(DIVERSITY_METRICS))
    a("--diversity-weight", type=float, help="lambda in fitness = loss - lambda * diversity")
    a("--loss-cap", type=float, help="penalise candidates whose quality exceeds this")
    a("--fitness-loss", choices=FITNESS_LOSSES, help="the objectives' quality: fidelity (the outputs vs the "
      "unrotated painting and the content) or own_target (vs each output's own rotated target)")
    a("--reference-point", type=float, nargs=2, metavar=("QUALITY", "DIVERSITY"),
      help="hypervolume reference (default: the unstylised content image's quality, diversity 0)")
    a("--save-images", choices=SAVE_IMAGES, help="outputs kept under images/: all candidates', or each "
      "generation's best and the front members")
    a("--max-batch", type=int,
      help="most transfer rows per forward pass (none: a whole generation; halved on out of memory)")
    a("--precision", help=alt(PRECISIONS))
    a("--compile", nargs="?", const="on", choices=("auto", "on", "off"),
      help="torch.compile the inner step (fuses the elementwise work; compiles once per batch shape); "
           "auto: on CUDA for searches long enough to repay the compilation; a bare --compile means on")
    a("--compile-mode", help=alt(COMPILE_MODES) + " (torch.compile's mode; reduce-overhead adds CUDA graphs; "
      "auto: reduce-overhead on CUDA, default elsewhere)")
    a("--seed", type=int, help="seeds the DE, the noise inits and the random-init weights")
    a("--device", help="auto | cpu | cuda | cuda:N")
    a("--weights", help="auto | imagenet | random | path to a VGG19 state dict")
    a("--out", help="run directory (default results/run-<time>)")
    a("--resume", metavar="DIR", help="continue the run in DIR from its last finished generation")
    a("--overwrite", action="store_true", help="replace an existing run in --out")
    a("--no-report", action="store_true", help="skip report.html at the end")
    a("--quiet", action="store_true", help="no progress bar")
    a("--debug", action="store_true", help="show tracebacks")
    show_defaults(p, {k: getattr(SearchConfig(), k) for k in _FLAG_KEYS})  # not argparse's None
    return p


_FLAG_KEYS = ("content", "style", "optimizer", "objective", "strategy", "popsize", "maxiter", "outputs", "search",
              "rotation_mode", "shuffle", "measure", "size", "steps", "lr", "image_init", "diversity_metric",
              "diversity_weight", "loss_cap", "fitness_loss", "reference_point", "save_images", "max_batch",
              "precision", "compile", "compile_mode", "seed", "device", "weights")
"""Flags that set a SearchConfig field of the same name (None when not given: the config file or the
field's default applies)."""


def _pairs(items, what):
    out = {}
    for item in items or []:
        if "=" not in item:
            raise EvostyleError(f"--{what} takes NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = [float(x) for x in v.split(",")] if what == "bounds" else float(v)
        except ValueError:
            raise EvostyleError(f"--{what} {item!r}: not a number") from None
    return out


def config_from_args(args) -> SearchConfig:
    file_values = load_toml(args.config) if args.config else {}
    over = {key: getattr(args, key) for key in _FLAG_KEYS}
    if over["compile"] is not None:  # --compile auto | on | off (a bare --compile: on)
        over["compile"] = {"on": True, "off": False}.get(over["compile"], over["compile"])
    fixed, bounds = _pairs(args.fix, "fix"), _pairs(args.bounds, "bounds")
    if fixed:
        over["fixed"] = {**file_values.get("fixed", {}), **fixed}
    if bounds:
        over["bounds"] = {**file_values.get("bounds", {}), **bounds}
    return make_config(file_values, over)


def _config_for_resume(args) -> SearchConfig:
    from evostyle.io.rundir import read_marker
    read_marker(Path(args.resume))  # an evostyle run, before anything in it is read
    rec = read_json(Path(args.resume) / "config.json", "resume config")
    try:
        return make_config(rec["config"])
    except (KeyError, TypeError):
        raise EvostyleError(f"{Path(args.resume) / 'config.json'} is not an evostyle run config") from None


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with cli_errors(args.debug, "evostyle.search"):
        if args.resume:
            given = [k for k in _FLAG_KEYS if getattr(args, k) is not None] + (["config"] if args.config else [])
            if given:
                flags = ", ".join("--" + g.replace("_", "-") for g in given)
                raise EvostyleError(f"--resume uses the run's saved config; drop {flags}")
            if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
                raise EvostyleError("--resume continues a run in its own directory; drop --out")
            cfg, out = _config_for_resume(args), Path(args.resume)
        else:
            cfg, out = config_from_args(args), (Path(args.out) if args.out else default_run_dir())
        try:
            summary = run_search(cfg, out, resume=bool(args.resume), overwrite=args.overwrite, quiet=args.quiet,
                                 report=not args.no_report)
        except Interrupted as exc:
            print(f"interrupted ({exc.name}); every finished generation is saved. Resume with:\n"
                  f"  python -m evostyle.search --resume {out}", file=sys.stderr)
            return exc.exit_code
        b = summary["best"]
        print(f"run directory: {out}")
        base = summary["baseline_same_target"]["diversity_pixel"]
        print(f"best fitness {b['fitness']:.5g} (fidelity {b['fidelity']:.4g}, pixel diversity "
              f"{b['diversity_pixel']:.4f}; same-target baseline {base:.4f}); front of {len(summary['front'])}, "
              f"hypervolume {summary['hypervolume']:.4g}")
        fixed = len(b["params"]) - len(b["searched"])
        print("best parameters: " + ", ".join(f"{k}={b['params'][k]:.4g}" for k in b["searched"])
              + (f" ({fixed} fixed, in {out / 'summary.json'})" if fixed else ""))
    return 0
