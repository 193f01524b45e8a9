"""Shared options and helpers for the experiment scripts (not part of the package API)."""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from evostyle.cli.common import show_defaults  # noqa: E402
from evostyle.errors import EvostyleError, cli_errors  # noqa: E402
from evostyle.io.atomic import atomic_write_json  # noqa: E402
from evostyle.io.samples import resolve_image  # noqa: E402
from evostyle.report.html import markdown_table  # noqa: E402
from evostyle.rundir.record import environment  # noqa: E402
from evostyle.transfer.config import TransferConfig  # noqa: E402
from evostyle.transfer.engine import StyleEngine  # noqa: E402

CONTENT = "sample:cat.jpg"
STYLE_A = "sample:starry_night.jpg"
STYLE_B = "sample:great_wave.jpg"
IMAGES = Path(__file__).resolve().parent / "images"
PAIRS = {"astronaut-scream": (IMAGES / "astronaut.jpg", IMAGES / "the_scream.jpg"),
         "mountains-kandinsky": (IMAGES / "mountains.jpg", IMAGES / "composition_vii.jpg"),
         "coffee-shipwreck": (IMAGES / "coffee.jpg", IMAGES / "shipwreck.jpg")}
"""The experiments' content/style pairs (images/ATTRIBUTION.md gives each licence)."""


def parser(name: str, doc: str, quick: dict, full: dict, options=None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=f"python experiments/{name}.py", description=doc)
    shown = lambda d: ", ".join(f"{k} {v}" for k, v in d.items())
    ap.add_argument("--quick", action="store_true", help=f"small CPU setting ({shown(quick)}) instead of the "
                                                          f"full one ({shown(full)})")
    ap.add_argument("--size", type=int, help=f"long side in px (full: {full.get('size')})")
    ap.add_argument("--steps", type=int, help=f"inner steps (full: {full.get('steps')})")
    ap.add_argument("--popsize", type=int, help=f"DE population, searching experiments only (full: "
                                                f"{full.get('popsize', '-')})")
    ap.add_argument("--maxiter", type=int, help=f"DE generations, searching experiments only (full: "
                                                f"{full.get('maxiter', '-')})")
    ap.add_argument("--weights", default="auto", help="auto (ImageNet: torchvision's, else the offline VGG16) | "
                                                      "imagenet | offline | random | a weights file")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--seed", type=int, default=0,
                    help="seeds the DE, noise inits and random-init weights")
    ap.add_argument("--out", help=f"output directory (default: results/{name}, or runs/quick/{name} with --quick)")
    ap.add_argument("--overwrite", action="store_true",
                    help="write into an output directory that already holds this experiment's results")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    if options is not None:  # the experiment's own flags
        options(ap)
    show_defaults(ap)
    ap.set_defaults(_quick=quick, _full=full)
    return ap


def settings(args, *own: str) -> dict:
    """The quick or full setting, with the common flags (--size, --steps, --popsize, --maxiter) and the
    experiment's ``own`` flags (e.g. "pairs", "seeds") overriding it where given."""
    s = dict(args._quick if args.quick else args._full)
    if args.size:
        s["size"] = args.size
    if args.steps:
        s["steps"] = args.steps
    for key in ("popsize", "maxiter"):
        if getattr(args, key) and key in s:
            s[key] = getattr(args, key)
    for key in own:
        if getattr(args, key):
            s[key] = getattr(args, key)
    return s


def engine(args, s: dict, styles, rotation_mode="none", measure="gram", shuffle="none", init="content"):
    cfg = TransferConfig(steps=s["steps"], measure=measure, init=init, lr=s.get("lr"))
    return StyleEngine(resolve_image(CONTENT), [resolve_image(x) for x in styles], cfg, size=s["size"],
                       rotation_mode=rotation_mode, shuffle=shuffle, weights=args.weights, seed=args.seed,
                       device=args.device)


def out_dir(args, name: str) -> Path:
    """The experiment's output directory, created. ``--quick`` writes under runs/quick/ (ignored by git)
    unless --out says otherwise, so a quick check never replaces committed results; a directory that
    already holds results (a record.json) other than an earlier quick run's is refused without
    --overwrite."""
    p = Path(args.out) if args.out else Path("runs/quick" if args.quick else "results") / name
    try:
        earlier = json.loads((p / "record.json").read_text()).get("setting")
    except (OSError, ValueError, AttributeError):
        earlier = None if not (p / "record.json").exists() else "unreadable"
    if earlier is not None and not args.overwrite and not (args.quick and earlier == "quick"):
        raise EvostyleError(f"{p} already holds results of an experiment; pass --overwrite to replace them "
                            "or --out DIR to write elsewhere")
    p.mkdir(parents=True, exist_ok=True)
    return p


@contextlib.contextmanager
def steps_bar(desc: str):
    """A bar over a transfer's steps on a terminal (``progress`` for ``StyleEngine.run`` / ``optimise``)."""
    from evostyle.progress import step_counter
    progress, close = step_counter(desc)
    try:
        yield progress
    finally:
        close()


def publish_run(src: Path, dest: Path) -> Path:
    """Copy the run directory ``src`` (made in a temporary folder) to ``dest`` under results/ as a record
    that does not depend on where it was made: paths inside the repository become relative to its root,
    the run's own folder becomes ``dest`` (relative), and the marker is left out (a published copy is
    read, not resumed). Its report is rebuilt from the rewritten files."""
    import shutil

    from evostyle.report.html import write_report
    from evostyle.rundir import files
    if dest.exists():
        shutil.rmtree(dest)  # this experiment's own earlier copy
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(files.MARKER, files.LOCK))
    where = str(dest.resolve().relative_to(ROOT)) if dest.resolve().is_relative_to(ROOT) else dest.name
    for name in (files.CONFIG, files.SUMMARY, files.SUMMARY_MD):
        f = dest / name
        if f.is_file():
            f.write_text(f.read_text().replace(str(src.resolve()), where).replace(str(src), where)
                         .replace(str(ROOT) + "/", ""))
    write_report(dest)
    return dest


def run_or_resume(cfg, d: Path):
    """The search ``cfg`` in ``d``: read as it is when ``d`` holds a finished run of this very config
    (not replayed, so a run made by an earlier version of an optimiser still reads), resumed there
    (checked against ``cfg``) when it got as far as its state, else started anew. Returns its
    SearchResult."""
    from evostyle.rundir import RunDir, files
    from evostyle.search.run import config_differences, run_search
    if (d / files.STATE).is_file():
        rd = RunDir(d)
        if rd.finished() and not config_differences(cfg, rd):
            return rd.result()
        return run_search(cfg, d, resume=True, quiet=True, report=False)
    return run_search(cfg, d, quiet=True, report=False, overwrite=d.exists())


def say(msg: str) -> None:
    """A progress line on stderr (the table goes to stdout at the end)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def write_record(out: Path, name: str, args, s: dict, eng, extra: dict | None = None, t0: float | None = None):
    custom = any(getattr(args, k) for k in ("size", "steps", "popsize", "maxiter"))
    setting = "quick" if args.quick else ("custom" if custom else "full")
    rec = {"experiment": name, "setting": setting, "settings": s, "seed": args.seed,
           "weights": eng.weights_info, "environment": environment(eng.device),
           "command": " ".join(["python", f"experiments/{name}.py", *map(shlex.quote, sys.argv[1:])]),
           "seconds": None if t0 is None else round(time.perf_counter() - t0, 2)}
    rec.update(extra or {})
    atomic_write_json(out / "record.json", rec)
    return rec


def md_table(rows: list[dict], cols: list[str]) -> str:
    """The experiments' tables: the report's markdown table with 4 significant digits."""
    return markdown_table(rows, cols, digits=4)


def weights_line(eng) -> str:
    w = eng.weights_info
    net = w.get("backbone", "vgg19").upper()
    if w["used"] == "random":
        return f"Weights: seeded random-init {net} (seed {w.get('seed')}), not ImageNet."
    return (f"Weights: {w['used']} {net} ({w.get('source', w.get('file', ''))}; {w.get('preprocessing')} "
            "preprocessing).")


def finish(out: Path, name: str, args, s: dict, eng, text: str, extra: dict | None = None,
           t0: float | None = None) -> None:
    """Write table.md and record.json, and print the table."""
    (out / "table.md").write_text(text)
    write_record(out, name, args, s, eng, extra, t0)
    print(text)


def experiment(name: str, doc: str, quick: dict, full: dict, options=None):
    """Decorator: attach the standard parser (plus ``options(parser)``'s flags) to an experiment's
    ``run(args)`` function."""
    def wrap(fn):
        fn.parser = lambda: parser(name, doc.splitlines()[0], quick, full, options)
        return fn
    return wrap


def run_main(fn):
    from evostyle.progress import setup_logging
    args = fn.parser().parse_args()
    setup_logging(0)
    with cli_errors(args.debug, fn.__name__):
        torch.manual_seed(args.seed)
        fn(args)
    return 0


__all__ = ["parser", "settings", "engine", "out_dir", "run_or_resume", "say", "steps_bar", "publish_run",
           "write_record", "md_table", "weights_line", "finish", "experiment", "run_main", "json", "PAIRS"]
