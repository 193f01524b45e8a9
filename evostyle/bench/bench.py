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
import contextlib
import csv
import itertools
import math
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from evostyle.cli.common import plain
from evostyle.errors import EvostyleError, cli_errors, describe, unknown
from evostyle.io.atomic import atomic_write_json, atomic_write_text
from evostyle.io.images import load_image
from evostyle.io.rundir import ensure_dir
from evostyle.io.runlog import environment
from evostyle.io.samples import sample_image
from evostyle.network.conv_relu import fusion_enabled
from evostyle.network.device import PRECISIONS, device_info, resolve_device
from evostyle.network.features import VGGFeatures
from evostyle.report.html import markdown_table
from evostyle.style.targets import StyleTargets
from evostyle.transfer.compiling import compile_disabled, reset_compile, resolve_compile_mode
from evostyle.transfer.config import COMPILE_MODES, TransferConfig
from evostyle.transfer.run import run_transfer

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable, Sequence

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
_SWITCH = {"on": [True], "off": [False], "both": [False, True]}
"""An on/off/both flag as the list of settings to measure."""
SEED = 0
"""Seed of the random-init weights and of the race's searches."""
GFLOP_256 = 95.0
"""Approximate GFLOP of one 256 px image-step (forward + backward to the image), counted from the layer
shapes (docs/performance.md)."""


def _setup(size: int, batch: int, device, weights: str):
    """Network, (3, size, size) content and targets for ``batch`` rows (channel rotations spread over 360)."""
    content = load_image(sample_image("cat.jpg"), (size, size))
    style = load_image(sample_image("starry_night.jpg"), (size, size))
    model = VGGFeatures(LAYERS + ("relu4_2",), weights=weights, seed=SEED).to(device)
    st = StyleTargets(model, [style], LAYERS, rotation_mode="channel", device=device)
    angles = torch.linspace(0, 360, batch + 1)[:-1].double()
    return model, content, st.build(torch.ones(batch, 1), angles, torch.ones(batch))


def _time(model, content, targets, cfg, device) -> tuple[float, list[str]]:
    """Wall seconds of one ``run_transfer`` (device synchronised) and its log (OOM retries...)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    res = run_transfer(model, content, targets, cfg, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0, res.log


def throughput(size: int, batch: int, precision: str, channels_last: bool, compile_: bool, steps: int,
               device: torch.device | str, weights: str = "random", autotune: bool = False, repeats: int = 1,
               compile_mode: str = TransferConfig.compile_mode, min_seconds: float = 0.0) -> dict:
    """Measure one setting; returns a dict row (ms per image-step, image-steps/s, peak MiB per image).

    A short run (``steps // 4`` steps: cuDNN setup, compilation) and a full-length one (so the GPU
    has left its idle clocks) come first, untimed. If that full-length run took under ``min_seconds``,
    the row's steps are raised in proportion (at most 20x, in ``row["steps"]``) so that the timed
    difference outweighs the tens of ms by which a run's fixed part varies. Then the pair
    (``steps // 4``, ``steps`` steps) is timed ``repeats`` times; each pair gives
    (t_long - t_short) / extra image-steps, and the row reports their median, with every estimate in
    ``ms_runs`` (their spread shows the timing noise).
    """
    model, content, targets = _setup(size, batch, device, weights)
    row = {"size": size, "batch": batch, "precision": precision, "channels_last": channels_last,
           "compile": compile_, "compile_mode": resolve_compile_mode(compile_mode, device) if compile_ else "",
           "autotune": autotune, "steps": steps,
           "ms_per_image_step": float("nan"), "image_steps_per_s": float("nan"),
           "peak_mib_per_image": float("nan"), "note": ""}
    short = max(1, steps // 4)
    try:
        kw = dict(precision=precision, channels_last=channels_last, compile=compile_, autotune=autotune,
                  compile_mode=compile_mode, history_every=10**6)
        cfg_s, cfg_l = TransferConfig(steps=short, **kw), TransferConfig(steps=steps, **kw)
        t0 = time.perf_counter()
        _, logs = _time(model, content, targets, cfg_s, device)  # cuDNN autotuning, compilation
        row["warmup_s"] = time.perf_counter() - t0
        t_full, log_l = _time(model, content, targets, cfg_l, device)  # clocks up after an idle compilation
        logs += log_l
        if t_full < min_seconds:  # too short to time: lengthen both runs of the pair
            steps = min(20 * steps, math.ceil(steps * min_seconds / max(t_full, 1e-9)))
            short = max(1, steps // 4)
            cfg_s, cfg_l = TransferConfig(steps=short, **kw), TransferConfig(steps=steps, **kw)
            row["steps"] = steps
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        pers = []
        for _ in range(repeats):
            t_s, log_s = _time(model, content, targets, cfg_s, device)
            t_l, log_l = _time(model, content, targets, cfg_l, device)
            pers.append((t_l - t_s) / ((steps - short) * batch))
            logs += log_s + log_l
        notes = logs + (["ran eager: torch.compile failed in this process"]
                        if compile_ and compile_disabled() else [])
        row["note"] = "; ".join(dict.fromkeys(notes))  # e.g. the chunk was halved
    except Exception as exc:  # report, keep going (e.g. compile unsupported, out of memory)
        row["note"] = describe(exc, 60)
        return row
    per = statistics.median(pers)
    row["ms_runs"] = [p * 1e3 for p in pers]
    row["ms_per_image_step"] = per * 1e3
    row["image_steps_per_s"] = 1.0 / per
    if device.type == "cuda":
        row["peak_mib_per_image"] = torch.cuda.max_memory_allocated(device) / 2**20 / batch
    row["tflops_est"] = GFLOP_256 * (size / 256) ** 2 / per / 1e3
    return row


def race_configs(
    size: int,
    steps: int,
    popsize: int,
    maxiter: int,
    outputs: int,
    device: str,
    weights: str,
    compile_modes: Sequence[bool] = (False,),
    compile_mode: str = TransferConfig.compile_mode,
) -> dict:
    """The validated search configs of the race: {name: SearchConfig} in running order: the eager
    batched side, the reference, then the compiled batched side (the slow one to start, so a call cut
    short still has the first ratio; torch.compile's ``compile_mode``), as ``compile_modes`` asks.
    Raises on a bad value."""
    from evostyle.search.config import make_config
    base = {"size": size, "steps": steps, "popsize": popsize, "maxiter": maxiter, "outputs": outputs,
            "device": device, "weights": weights, "seed": SEED, "search": ["angles", "mix"]}
    batched = {c: make_config({**base, "optimizer": "torch-de", "compile": bool(c), "compile_mode": compile_mode})
               for c in compile_modes}
    configs = {"torch-de batched": batched[False]} if False in batched else {}
    configs[REFERENCE] = make_config({**base, "optimizer": "scipy-de", "precision": "fp32", "max_batch": outputs,
                                      "compile": False})
    if True in batched:
        configs["torch-de batched compiled"] = batched[True]
    return configs


REFERENCE = "scipy-de one-at-a-time fp32"
"""The race's reference side: scipy's DE calling the evaluator one candidate (K rows) at a time in fp32."""


@contextlib.contextmanager
def _cold_compile():
    """Compile from scratch inside: forget compiled graphs and bypass inductor's on-disk caches, so a
    compiled race side pays the compilation a first-time user pays."""
    import torch._inductor.config
    torch._dynamo.reset()
    reset_compile()
    cold = {"force_disable_caches": True} if hasattr(torch._inductor.config, "force_disable_caches") else {}
    with torch._inductor.config.patch(cold), warnings.catch_warnings():  # older torch: no such switch
        warnings.filterwarnings("ignore", message=".*force_disable_caches")  # "dynamo_pgo force disabled"
        yield


def end_to_end(
    size: int,
    steps: int,
    popsize: int,
    maxiter: int,
    outputs: int,
    device: str,
    weights: str,
    compile_modes: Sequence[bool] = (False,),
    report: Callable[[dict], None] | None = None,
    compile_mode: str = TransferConfig.compile_mode,
) -> dict:
    """Same search by torch DE + batched evaluator (per ``compile_modes``) and by the fp32 reference.

    A compiled side compiles from cold caches and its compilation is part of its wall time; the
    reference is plain eager. Both precisions are warmed up before the race. Returns {side: {seconds,
    later_generations_s, best_fitness, evaluations}} and, per batched side, ``speedup`` (reference wall
    time / its wall time) and ``steady_speedup`` (the same for the generations after the first).
    ``report``, if given, is called with the sides finished so far after each one.
    """
    from evostyle.search.run import run_search
    configs = race_configs(size, steps, popsize, maxiter, outputs, device, weights, compile_modes, compile_mode)
    dev = torch.device(device)  # start-up (CUDA context, library handles) outside the race:
    model, content, targets = _setup(size, 1, dev, weights)
    for prec in ("fp32", "auto"):
        run_transfer(model, content, targets, TransferConfig(steps=2, precision=prec), device=dev)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, cfg) in enumerate(configs.items()):
            run_dir = Path(tmp) / f"side{i}"
            with _cold_compile() if cfg.transfer.compile else contextlib.nullcontext():
                t0 = time.perf_counter()
                summ = run_search(cfg, run_dir, quiet=True, report=False)
                wall = time.perf_counter() - t0
            with open(run_dir / "generations.csv", newline="") as fh:
                gens = list(csv.DictReader(fh))
            out[name] = {"seconds": wall, "later_generations_s": sum(float(g["eval_seconds"]) for g in gens[1:]),
                         "best_fitness": summ["best"]["fitness"], "evaluations": summ["optimizer"]["nfev_points"],
                         "seconds_by_phase": summ["seconds_by_phase"]}
            if cfg.transfer.compile and compile_disabled():
                out[name]["note"] = "ran eager: torch.compile failed (see the log on stderr)"
            ref = out.get(REFERENCE)
            for side_name, side in out.items():
                if ref is not None and side_name != REFERENCE:
                    side["speedup"] = ref["seconds"] / side["seconds"]
                    side["steady_speedup"] = ref["later_generations_s"] / max(side["later_generations_s"], 1e-12)
            if report is not None:
                report(out)
    return out


def quality(size: int, steps: int, batch: int, precision: str, device: torch.device | str, weights: str = "random",
            compile_: bool = False, compile_mode: str = TransferConfig.compile_mode) -> dict:
    """Final style and content loss of the same transfer in ``precision`` (compiled if ``compile_``)
    and in strict fp32 (eager).

    ``batch`` rows with channel-rotation angles spread over [0, 360), Adam for ``steps`` steps from the
    content image. Returns per-term relative differences |low - fp32| / fp32 (max and mean over rows).
    """
    model, content, targets = _setup(size, batch, device, weights)
    finals = {}
    for prec, comp in (("fp32", False), (precision, compile_)):
        cfg = TransferConfig(steps=steps, precision=prec, compile=comp, compile_mode=compile_mode,
                             history_every=10**6)
        finals[prec] = run_transfer(model, content, targets, cfg, device=device).final
    out = {"size": size, "steps": steps, "batch": batch, "precision": precision,
           "compile": bool(compile_ and not compile_disabled())}  # False if it fell back to eager
    out["compile_mode"] = resolve_compile_mode(compile_mode, device) if out["compile"] else ""
    for term in ("style", "content", "total"):
        ref, low = finals["fp32"][term].double(), finals[precision][term].double()
        rel = (low - ref).abs() / ref.abs().clamp_min(1e-30)
        out[term] = {"fp32_mean": float(ref.mean()), f"{precision}_mean": float(low.mean()),
                     "rel_diff_max": float(rel.max()), "rel_diff_mean": float(rel.mean())}
    return out


def profile(size: int, batch: int, precision: str, steps: int, device: torch.device | str, weights: str = "random",
            rows: int = 15, compile_: bool = False, compile_mode: str = TransferConfig.compile_mode) -> dict:
    """Kernels of one ``steps``-step transfer of one batch under torch.profiler (after a warm-up run).

    Returns {"table": the top ``rows`` operators and kernels by self time (text), "steps", "batch",
    "wall_ms": the profiled run's wall time, "kernel_ms": the sum of the GPU kernels' own durations
    (CUDA only; NaN on the CPU), "kernel_ms_per_image_step": kernel_ms / (steps * batch)}. The kernel
    sum includes the run's fixed part (first and last forward pass), so it bounds the timed figure
    from above, and it does not depend on wall-clock timing.
    """
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as _profile
    model, content, targets = _setup(size, batch, device, weights)
    cfg = TransferConfig(steps=steps, precision=precision, compile=compile_, compile_mode=compile_mode,
                         history_every=10**6)
    run_transfer(model, content, targets, cfg, device=device)  # warm-up (compilation)
    cuda = device.type == "cuda"
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    import inspect
    keep = {"acc_events": True} if "acc_events" in inspect.signature(_profile.__init__).parameters else {}
    with _profile(activities=acts, **keep) as prof:  # one cycle; acc_events only silences a warning
        wall, _ = _time(model, content, targets, cfg, device)
    kernel_ms = float("nan")
    if cuda:
        kernel_ms = sum(e.device_time for e in prof.events() if e.device_type == DeviceType.CUDA) / 1e3
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60)
    return {"table": table, "size": size, "steps": steps, "batch": batch, "precision": precision,
            "compile": bool(compile_ and not compile_disabled()), "wall_ms": wall * 1e3, "kernel_ms": kernel_ms,
            "kernel_ms_per_image_step": kernel_ms / (steps * batch)}


def _profile_md(p: dict) -> str:
    return (f"Profile ({p['size']} px, batch {p['batch']}, {p['precision']}, compile {p['compile']}, "
            f"{p['steps']} steps): wall {p['wall_ms']:.1f} ms under the profiler, GPU kernels "
            f"{p['kernel_ms']:.1f} ms = {p['kernel_ms_per_image_step']:.4g} ms per image-step "
            "(first and last forward pass included)")


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


ROW_COLUMNS = ["size", "batch", "precision", "channels_last", "compile", "compile_mode", "autotune", "steps",
               "ms_per_image_step", "image_steps_per_s", "peak_mib_per_image", "note"]
RACE_COLUMNS = ["side", "seconds", "later_generations_s", "speedup", "steady_speedup", "evaluations", "best_fitness",
                "targets / transfer / scoring / logging s", "note"]


def _quality_md(q: dict) -> str:
    """The quality check as a heading line and a table (one row per loss term)."""
    how = f" compiled ({q.get('compile_mode') or 'default'})" if q["compile"] else ""
    return (f"Final losses, {q['precision']}{how} vs fp32 ({q['size']} px, "
            f"{q['steps']} steps, {q['batch']} rows):\n\n"
            + markdown_table([{"term": t, **q[t]} for t in ("style", "content", "total")],
                         ["term", "fp32_mean", f"{q['precision']}_mean", "rel_diff_max", "rel_diff_mean"]))


def _race_md(e2e: dict) -> str:
    """The search race as a heading line and a table (one row per side)."""
    split = "targets / transfer / scoring / logging s"
    rows = [{"side": k, **v, split: " / ".join(f"{v['seconds_by_phase'][p]:.3g}" for p in
                                                ("targets", "transfer", "scoring", "logging"))}
            for k, v in e2e.items()]
    return "Search race (same config, seed and evaluations):\n\n" + markdown_table(rows, RACE_COLUMNS)


def _report_md(result: dict) -> str:
    """bench.md: the device line, then a table per section measured so far."""
    info = result["device"]
    parts = [f"device: {info.get('gpu', 'cpu')}, torch {info['torch']}, {result['date']}",
             markdown_table(result["rows"], ROW_COLUMNS)]
    if "quality" in result:
        parts.append(_quality_md(result["quality"]))
    if "e2e" in result:
        parts.append(_race_md(result["e2e"]))
    if "profile" in result:
        parts.append(_profile_md(result["profile"]))
    return "\n\n".join(parts) + "\n"


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
    with cli_errors(args.debug, "evostyle.bench"):
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
        if args.out:
            ensure_dir(Path(args.out))
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
                atomic_write_text(out / "bench.md", _report_md(result))

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
            print("\n" + _quality_md(q))
        if args.e2e and in_budget("e2e"):
            def race_report(sides):  # saved after each side: a call cut short keeps the finished ones
                result["e2e"] = sides
                save()
            print("\n" + _race_md(end_to_end(*e2e_args, report=race_report, compile_mode=mode)))
        if args.profile and in_budget("profile"):
            result["profile"] = profile(sizes[0], batches[-1], precisions[-1], steps, dev, weights,
                                        compile_=comp[-1][0], compile_mode=mode)
            save()
            print(result["profile"]["table"] + "\n" + _profile_md(result["profile"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
