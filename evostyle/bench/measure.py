"""One batched transfer measured three ways: throughput (ms per image-step), quality (final losses in a
low precision against fp32) and a kernel profile, on the benchmark's workload (:func:`workload`).

Throughput: for every setting it times ``run_transfer`` with ``steps`` and with ``steps // 4`` steps
and divides the difference by the extra image-steps, so target building, the first forward pass and
start-up cancel out (see :func:`throughput`). One image-step is a forward pass through VGG19 up to
relu5_1, the backward pass to the image and an Adam update.
"""

from __future__ import annotations

import math
import statistics
import time

import torch

from evostyle.errors import describe
from evostyle.io.images import load_image
from evostyle.io.samples import sample_image
from evostyle.network.features import VGGFeatures
from evostyle.style.targets import StyleTargets
from evostyle.transfer.compiling import compile_disabled, resolve_compile_mode
from evostyle.transfer.config import TransferConfig
from evostyle.transfer.run import run_transfer

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
"""The workload's style layers (its network also taps relu4_2, the content layer)."""
SEED = 0
"""Seed of the random-init weights and of the race's searches."""
GFLOP_256 = 95.0
"""Approximate GFLOP of one 256 px image-step (forward + backward to the image), counted from the layer
shapes (docs/performance.md)."""


def workload(size: int, batch: int, device, weights: str):
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
    model, content, targets = workload(size, batch, device, weights)
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

def quality(size: int, steps: int, batch: int, precision: str, device: torch.device | str, weights: str = "random",
            compile_: bool = False, compile_mode: str = TransferConfig.compile_mode) -> dict:
    """Final style and content loss of the same transfer in ``precision`` (compiled if ``compile_``)
    and in strict fp32 (eager).

    ``batch`` rows with channel-rotation angles spread over [0, 360), Adam for ``steps`` steps from the
    content image. Returns per-term relative differences |low - fp32| / fp32 (max and mean over rows).
    """
    model, content, targets = workload(size, batch, device, weights)
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
    model, content, targets = workload(size, batch, device, weights)
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

