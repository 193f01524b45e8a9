"""``python -m evostyle.bench``: throughput of the batched inner optimiser, and an end-to-end search race.

Throughput: for every (size, batch, precision, channels_last, compile and its mode) it times
``run_transfer`` with ``--steps`` and with ``--steps // 4`` steps and divides the difference by the
extra image-steps, so target building, the first forward pass and start-up cancel out; the pair is
repeated (``--repeats``) after an untimed full-length run and the median is reported. A row whose
full-length run is shorter than ``--min-seconds`` (1 s on CUDA) runs proportionally more steps. The profile
(``--profile``) sums the GPU kernels' own durations as a cross-check of that figure. One image-step
is a forward pass through VGG19 up to relu5_1, the backward pass to the image and an Adam update.

End to end (``--e2e``): the same search (config, seed, number of evaluations) run by torch DE + the
batched evaluator in the default precision (eager, compiled or both: ``--e2e-compile``) and by scipy
DE + a one-candidate-at-a-time fp32 evaluator (``max_batch`` = K rows). Prints wall times, the
evaluation time of the generations after the first (no start-up, no compilation) and both ratios.

``--budget SECONDS`` skips the rows and sections that would start after that many seconds (recorded
under ``skipped``), so one call of a lent GPU with a time limit still returns its most important
figures: the sections run in the order grid, quality, race, profile.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import torch

from evostyle.bench.measure import LAYERS, SEED, profile, quality, throughput
from evostyle.bench.race import end_to_end, race_configs
from evostyle.bench.tables import ROW_COLUMNS, profile_md, quality_md, race_md, report_md
from evostyle.cli.common import plain
from evostyle.errors import EvostyleError, cli_errors, unknown
from evostyle.io.atomic import atomic_write_json, atomic_write_text
from evostyle.network.conv_relu import fusion_enabled
from evostyle.network.device import PRECISIONS, device_info, resolve_device
from evostyle.report.html import markdown_table
from evostyle.rundir.layout import BENCH, check_ownership, ensure_dir
from evostyle.rundir.record import environment
from evostyle.transfer.compiling import resolve_compile_mode
from evostyle.transfer.config import COMPILE_MODES

_SWITCH = {"on": [True], "off": [False], "both": [False, True]}
"""An on/off/both flag as the list of settings to measure."""


def _settings(args, cuda: bool) -> dict:
    """The grid and quality settings after defaults (CUDA or CPU), checked: raises EvostyleError."""
    pick = lambda given, on_cuda, on_cpu: given if given is not None else (on_cuda if cuda else on_cpu)
    st = {"sizes": pick(args.sizes, [128, 256, 512], [64]), "batches": pick(args.batches, [1, 8, 32, 64], [1, 4]),
          "precisions": pick(args.precisions, ["fp32", "tf32", "bf16"], ["fp32"]),
          "channels_last": _SWITCH[args.channels_last or ("both" if cuda else "off")],
          "compile": _SWITCH[args.compile], "compile_modes": args.compile_mode, "autotune": _SWITCH[args.autotune],
          "steps": pick(args.steps, 20, 8), "repeats": pick(args.repeats, 3, 1), "budget_s": args.budget,
          "min_seconds": pick(args.min_seconds, 1.0, 0.0),
          "seed": SEED, "layers": list(LAYERS) + ["relu4_2"],
          "conv_relu_fused": fusion_enabled(),  # bf16 on CUDA: one kernel per conv + bias + ReLU
          "quality": {"size": pick(args.quality_size, 256, 32), "steps": pick(args.quality_steps, 200, 20),
                      "rows": 8},
          "e2e": {"size": pick(args.e2e_size, 256, 32), "steps": pick(args.e2e_steps, 100, 5),
                  "popsize": args.e2e_popsize, "maxiter": args.e2e_maxiter, "outputs": 4,
                  "compile": _SWITCH[args.e2e_compile]}}
    st["short_steps"] = max(1, st["steps"] // 4)
    for m in st["compile_modes"]:
        if m not in COMPILE_MODES:
            raise unknown("compile mode", m, COMPILE_MODES)
    # the modes that run (auto: reduce-overhead on CUDA), each once, so rows and records name them
    st["compile_modes"] = list(dict.fromkeys(resolve_compile_mode(m, "cuda" if cuda else "cpu")
                                             for m in st["compile_modes"]))
    explicit = tuple(p for p in PRECISIONS if p != "auto")
    for p in st["precisions"]:
        if p not in explicit:
            raise unknown("precision", p, explicit)
    for size in st["sizes"] + ([st["quality"]["size"]] if args.quality else []):
        if not 8 <= size <= 8192:
            raise EvostyleError(f"sizes must be between 8 and 8192 px, got {size}")
    if min(st["batches"]) < 1:
        raise EvostyleError(f"batches must be >= 1, got {min(st['batches'])}")
    if st["steps"] < 2:
        raise EvostyleError(f"--steps must be >= 2 (the time of steps // 4 steps is subtracted), got {st['steps']}")
    if st["repeats"] < 1:
        raise EvostyleError(f"--repeats must be >= 1, got {st['repeats']}")
    if not 0 <= st["min_seconds"] <= 600:  # also refuses NaN
        raise EvostyleError(f"--min-seconds must be between 0 and 600, got {st['min_seconds']}")
    if args.quality and st["quality"]["steps"] < 1:
        raise EvostyleError(f"--quality-steps must be >= 1, got {st['quality']['steps']}")
    if args.budget is not None and not args.budget > 0:
        raise EvostyleError(f"--budget must be a positive number of seconds, got {args.budget}")
    return st


def _check_weights(spec: str) -> str:
    """Resolve a weights spec once, before any timing: a bad name or file fails at once, and ``auto``
    becomes ``imagenet`` or (with the usual warning) ``random``, so rows do not retry the download."""
    from evostyle.network.weights import resolve_weights
    w = resolve_weights(spec, seed=SEED)
    return spec if w.info["used"] == "file" else w.info["resolved"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evostyle.bench", description=plain(__doc__))
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="default: 128 256 512 on CUDA, 64 on CPU")
    ap.add_argument("--batches", type=int, nargs="+", default=None, help="default: 1 8 32 64 on CUDA, 1 4 on CPU")
    ap.add_argument("--precisions", nargs="+", default=None, help="default: fp32 tf32 bf16 on CUDA, fp32 on CPU")
    ap.add_argument("--channels-last", choices=("on", "off", "both"), default=None,
                    help="memory layout of images and weights (default: both on CUDA, off on CPU)")
    ap.add_argument("--compile", choices=("on", "off", "both"), default="off",
                    help="torch.compile the forward pass and losses (TransferConfig.compile; default off)")
    ap.add_argument("--compile-mode", nargs="+", default=["auto"], metavar="MODE",
                    help=f"torch.compile's mode(s) for the compiled rows: {' | '.join(COMPILE_MODES)} "
                         "(default: auto, which is reduce-overhead on CUDA and default elsewhere); the "
                         "quality check, race and profile use the last")
    ap.add_argument("--autotune", choices=("on", "off", "both"), default="off",
                    help="cuDNN algorithm autotuning (TransferConfig.autotune; CUDA only; default off)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 20 on CUDA, 8 on CPU)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed run pairs per row, the row reports their median (default 3 on CUDA, 1 on CPU)")
    ap.add_argument("--min-seconds", type=float, default=None, metavar="S",
                    help="raise a row's steps (up to 20x) until its full-length run lasts about S seconds, "
                         "so run-to-run jitter of tens of ms stays small against the timed difference "
                         "(default 1 on CUDA, 0 on CPU)")
    ap.add_argument("--e2e", action="store_true",
                    help="also race the search: torch DE + batched evaluator vs scipy DE + one candidate at a "
                         "time in fp32 (same config, seed and evaluations; 4 outputs per candidate)")
    ap.add_argument("--e2e-size", type=int, default=None, help="race image size (default 256 on CUDA, 32 on CPU)")
    ap.add_argument("--e2e-steps", type=int, default=None, help="inner steps (default 100 on CUDA, 5 on CPU)")
    ap.add_argument("--e2e-popsize", type=int, default=8, help="DE population (default 8)")
    ap.add_argument("--e2e-maxiter", type=int, default=2, help="generations after the first (default 2)")
    ap.add_argument("--e2e-compile", choices=("on", "off", "both"), nargs="?", const="on", default="off",
                    help="torch.compile the batched side of the race (both: race it eager and compiled; "
                         "the reference runs once; default off, bare flag on)")
    ap.add_argument("--quality", action="store_true",
                    help="also compare final losses in bf16 (the GPU default; compiled if --compile is on or "
                         "both) with fp32 at --quality-size px")
    ap.add_argument("--quality-size", type=int, default=None, help="default 256 on CUDA, 32 on CPU")
    ap.add_argument("--quality-steps", type=int, default=None, help="default 200 on CUDA, 20 on CPU")
    ap.add_argument("--profile", action="store_true",
                    help="print the top kernels (first size; last batch, precision and compile setting)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    ap.add_argument("--weights", default="random",
                    help="random (default; the arithmetic does not depend on the weights) | imagenet | auto | path")
    ap.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                    help="start no row or section after this many seconds (skipped ones are listed)")
    ap.add_argument("--out", help="write bench.json and bench.md here")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    args = ap.parse_args(argv)
    from evostyle.progress import setup_logging
    setup_logging(0)
    with cli_errors(args.debug, "evostyle.bench", memory_fix="lower --sizes or --batches"):
        dev = resolve_device(args.device)
        cuda = dev.type == "cuda"
        st = _settings(args, cuda)
        sizes, batches, precisions, steps = st["sizes"], st["batches"], st["precisions"], st["steps"]
        cl, tune, mode = st["channels_last"], st["autotune"], st["compile_modes"][-1]
        comp = [(False, "")] if False in st["compile"] else []  # the grid's (compile, mode) settings
        if True in st["compile"]:
            comp += [(True, m) for m in st["compile_modes"]]
        e = st["e2e"]

        def race_args(w):  # end_to_end's and race_configs' positional arguments for weights w
            return e["size"], e["steps"], e["popsize"], e["maxiter"], e["outputs"], str(dev), w, e["compile"]
        if args.e2e:
            race_configs(*race_args(args.weights), mode)  # a bad race setting fails now, not after the whole grid
        if args.out:  # a folder of its own: a benchmark's earlier one, or empty (never the user's bench.md)
            check_ownership(ensure_dir(Path(args.out)), BENCH)
        weights = _check_weights(args.weights)
        e2e_args = race_args(weights)
        info = device_info(dev)
        print(f"device: {info.get('gpu', 'cpu')}  torch {torch.__version__}  steps {steps}", flush=True)
        rows, skipped = [], []
        settings = {k: v for k, v in st.items() if (k != "quality" or args.quality) and (k != "e2e" or args.e2e)}
        result = {"device": info, "environment": environment(dev), "date": time.strftime("%Y-%m-%d"),
                  "steps": steps, "weights": args.weights, "weights_used": weights, "settings": settings,
                  "argv": sys.argv[1:] if argv is None else list(argv), "rows": rows, "skipped": skipped}
        t_start = time.perf_counter()

        def save():  # after every row and section, so a run cut short keeps what it measured
            if args.out:
                out = Path(args.out)
                out.mkdir(parents=True, exist_ok=True)
                atomic_write_json(out / "bench.json", result)
                atomic_write_text(out / "bench.md", report_md(result))

        def in_budget(what: str) -> bool:
            """True if ``what`` may start; else records it as skipped (and says so)."""
            if args.budget is None or time.perf_counter() - t_start < args.budget:
                return True
            skipped.append(what)
            save()
            print(f"  skipped (over the {args.budget:g} s budget): {what}", flush=True)
            return False

        for size, batch, prec, c_l, (c, m), t in itertools.product(sizes, batches, precisions, cl, comp, tune):
            label = f"{size}px batch {batch:3d} {prec:5s} cl={int(c_l)} compile={m if c else 0} autotune={int(t)}"
            if not in_budget(label):
                continue
            r = throughput(size, batch, prec, c_l, c, steps, dev, weights, autotune=t, repeats=st["repeats"],
                           compile_mode=m or "default", min_seconds=st["min_seconds"])
            rows.append(r)
            save()
            print(f"  {label}: {r['ms_per_image_step']:.3f} ms/image-step ({r['steps']} steps) {r['note']}",
                  flush=True)
        print(markdown_table(rows, ROW_COLUMNS))
        if args.quality and in_budget("quality"):
            qs = settings["quality"]
            q = quality(qs["size"], qs["steps"], qs["rows"], "bf16", dev, weights, compile_=comp[-1][0],
                        compile_mode=mode)
            result["quality"] = q
            save()
            print("\n" + quality_md(q))
        if args.e2e and in_budget("e2e"):
            def race_report(sides):  # saved after each side: a call cut short keeps the finished ones
                result["e2e"] = sides
                save()
            print("\n" + race_md(end_to_end(*e2e_args, report=race_report, compile_mode=mode)))
        if args.profile and in_budget("profile"):
            result["profile"] = profile(sizes[0], batches[-1], precisions[-1], steps, dev, weights,
                                        compile_=comp[-1][0], compile_mode=mode)
            save()
            print(result["profile"]["table"] + "\n" + profile_md(result["profile"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
