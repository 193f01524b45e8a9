"""``python -m evostyle.search``: differential evolution over style-transfer parameters.

With no arguments it runs a small search on the bundled images (a few minutes on a 2-core CPU), writes a
run directory under ``results/`` and prints where it is and the best parameters. See ``--help``."""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path

from evostyle.cli.common import MEMORY_FIX, plain, show_defaults
from evostyle.errors import EvostyleError, cli_errors, dashed, flag, resume_hint
from evostyle.progress import setup_logging
from evostyle.rundir import files
from evostyle.search.config import (
    FIELDS,
    RESUME_MAY_CHANGE,
    SECTIONS,
    SearchConfig,
    annotation,
    flatten,
    load_toml,
    make_config,
)
from evostyle.search.run import default_run_dir, resume_search, run_search
from evostyle.search.signals import Interrupted
from evostyle.search.validation import choices


def _add_setting(p, name: str, f) -> None:
    """One flag for the config setting ``name``, shaped by its annotation (see evostyle.search.settings)."""
    hint, meta = annotation(name), f.metadata
    flags = [dashed(n) for n in (name, *meta["aliases"])]
    kw: dict = {"dest": name, "help": meta["help"], "default": None}
    if meta["choices"] is not None and name != "search":
        kw["help"] += ": " + " | ".join(choices(meta["choices"]))
    if name in ("bounds", "fixed"):
        kw.update(action="append", metavar=meta["metavar"])
        if name == "fixed":
            flags = ["--fix", "--fixed"]
    elif name == "compile":
        kw.update(nargs="?", const="on", choices=("auto", "on", "off"))
    elif name == "style":
        kw.update(action="append")
        kw["help"] += "; repeat for several"
    elif hint == list[str]:
        kw.update(nargs="+")
    elif hint == list[int]:
        kw.update(type=int, nargs="+", metavar=meta["metavar"])
    elif name == "mutation":
        kw.update(type=float, nargs="+", metavar="F")
    elif name == "reference_point":
        kw.update(type=float, nargs=2, metavar=meta["metavar"])
    elif int in (hint, *typing.get_args(hint)):
        kw.update(type=int)
    elif float in (hint, *typing.get_args(hint)):
        kw.update(type=float)
    p.add_argument(*flags, **kw)


def build_parser() -> argparse.ArgumentParser:
    """Every setting of :class:`~evostyle.search.config.SearchConfig` as a flag, plus the run's own."""
    p = argparse.ArgumentParser(prog="python -m evostyle.search", description=plain(__doc__))
    p.add_argument("--config", help="TOML file (or a run's config.json) with any of the settings below; flags "
                                    "override it")
    groups = {s: p.add_argument_group(f"{s} settings", plain(cls.__doc__))
              for s, cls in SECTIONS.items()}
    for name, (section, f) in FIELDS.items():
        _add_setting(groups[section], name, f)
    a = p.add_argument
    a("--out", help="run directory (default results/run-<time>)")
    a("--resume", metavar="DIR", help="continue the run in DIR from its last finished generation; with --maxiter N, "
                                      "extend a finished or interrupted run to N generations after the first")
    a("--overwrite", action="store_true", help="replace an existing evostyle run in --out (other files stay)")
    a("--accept-changed-inputs", action="store_true", help="with --resume: go on although the content, a style "
                                                           "or the weights file changed since the run started "
                                                           "(recorded in config.json)")
    a("--no-report", action="store_true", help="skip report.html at the end")
    a("-q", "--quiet", action="store_true", help="no progress bars or phase messages, only warnings and errors")
    a("-v", "--verbose", action="store_true", help="debug detail too")
    a("--debug", action="store_true", help="show tracebacks")
    show_defaults(p, {name: SearchConfig().get(name) for name in FIELDS})  # not argparse's None
    return p


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


def given_settings(args: argparse.Namespace) -> list[str]:
    """The settings given as flags."""
    return [name for name in FIELDS if getattr(args, name) is not None]


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    """Defaults <- ``--config`` file <- flags."""
    file_values = load_toml(args.config) if args.config else {}
    over = {name: getattr(args, name) for name in FIELDS}
    if over["compile"] is not None:  # --compile auto | on | off (a bare --compile: on)
        over["compile"] = {"on": True, "off": False}.get(over["compile"], over["compile"])
    if over["mutation"] is not None:
        m = over["mutation"]
        if len(m) > 2:
            raise EvostyleError(f"--mutation takes F or LOW HIGH, got {len(m)} numbers")
        over["mutation"] = m[0] if len(m) == 1 else m
    for name, what in (("fixed", "fix"), ("bounds", "bounds")):
        pairs = _pairs(args.__dict__[name], what)
        over[name] = {**flatten(file_values).get(name, {}), **pairs} if pairs else None
    return make_config(file_values, over)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(-1 if args.quiet else 1 if args.verbose else 0)
    with cli_errors(args.debug, "evostyle.search", memory_fix=MEMORY_FIX):
        for name in ("resume", "out", "config"):  # "" is a path given badly, not a path left out
            value = getattr(args, name)
            if value is not None and not value.strip():
                raise EvostyleError(f"{flag(name)} is an empty string; give a path")
        if args.resume is not None:
            given = [g for g in given_settings(args) if g not in RESUME_MAY_CHANGE] + (
                ["config"] if args.config else [])
            if given:
                flags = ", ".join(map(flag, given))
                raise EvostyleError(f"--resume uses the run's saved config (only --maxiter, to extend it, and where "
                                    f"it runs may change); drop {flags}")
            if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
                raise EvostyleError("--resume continues a run in its own directory; drop --out")
            out = Path(args.resume)
            changed = {name: getattr(args, name) for name in RESUME_MAY_CHANGE}  # extend it, or run it elsewhere
            run = lambda: resume_search(out, quiet=args.quiet, report=not args.no_report,
                                        accept_changed_inputs=args.accept_changed_inputs, **changed)
        else:
            if args.accept_changed_inputs:
                raise EvostyleError("--accept-changed-inputs applies to --resume only (a new run reads its inputs "
                                    "afresh); drop it")
            cfg, out = config_from_args(args), (Path(args.out) if args.out else default_run_dir())
            run = lambda: run_search(cfg, out, overwrite=args.overwrite, quiet=args.quiet, report=not args.no_report)
        try:
            result = run()
        except Interrupted as exc:
            print(f"interrupted ({exc.name}); every finished generation is saved. Resume with:\n"
                  f"  {resume_hint(out)}", file=sys.stderr)
            return exc.exit_code
        b = result.best
        # where the run is was said on stderr when it started; say it here only if that was silenced
        if not args.no_report:
            print(f"report: {out / files.REPORT}")
        elif args.quiet:
            print(f"run directory: {out}")
        print(result.headline())
        fixed = len(b["params"]) - len(b["searched"])
        print("best parameters: " + ", ".join(f"{k}={b['params'][k]:.4g}" for k in b["searched"])
              + (f" ({fixed} fixed, in {out / files.SUMMARY})" if fixed else ""))
    return 0
