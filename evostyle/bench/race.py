"""The search race: the same search (config, seed, number of evaluations) run by torch DE + the batched
evaluator and by scipy DE + a one-candidate-at-a-time fp32 evaluator (:func:`end_to_end`)."""

from __future__ import annotations

import contextlib
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from evostyle.bench.measure import SEED, workload
from evostyle.transfer.compiling import compile_disabled, reset_compile
from evostyle.transfer.config import TransferConfig
from evostyle.transfer.run import run_transfer

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable, Sequence


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
    model, content, targets = workload(size, 1, dev, weights)
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
            gens = summ.generations()
            out[name] = {"seconds": wall, "later_generations_s": float(gens.eval_seconds.iloc[1:].sum()),
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

