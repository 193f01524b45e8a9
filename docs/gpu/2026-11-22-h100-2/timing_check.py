"""Cross-check of bench's ms per image-step for the compiled bf16 step (256 px, batch 32).

bench.py times a run of ``steps`` and one of ``steps // 4`` steps and divides the difference. This
script times runs of 10, 40 and 70 steps (twice each, after a warm-up) and fits a line through
them; and it sums the GPU kernels' durations of one 40-step run under torch.profiler, to see whether
the kernels alone fit inside the wall time. Run: PYTHONPATH=. python3 docs/gpu/2026-11-22-h100-2/timing_check.py
"""

import sys
import time

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from evostyle import bench
from evostyle.transfer import TransferConfig, run_transfer

dev = torch.device("cuda")
size, batch = 256, int(sys.argv[1]) if len(sys.argv) > 1 else 32
model, content, targets = bench._setup(size, batch, dev, "random")


def timed(steps: int) -> float:
    cfg = TransferConfig(steps=steps, precision="bf16", channels_last=True, compile=True, history_every=10**6)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    run_transfer(model, content, targets, cfg, device=dev)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


t0 = time.perf_counter()
timed(5)
print(f"warm-up incl. compilation: {time.perf_counter() - t0:.1f} s", flush=True)
xs, ys = [], []
for steps in (10, 40, 70, 10, 40, 70):
    xs.append(steps)
    ys.append(timed(steps))
    print(f"steps {steps:3d}: {ys[-1] * 1e3:8.1f} ms", flush=True)
n = len(xs)
mx, my = sum(xs) / n, sum(ys) / n
slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
print(f"fit: {slope / batch * 1e3:.4f} ms per image-step, intercept {(my - slope * mx) * 1e3:.1f} ms")

cfg = TransferConfig(steps=40, precision="bf16", channels_last=True, compile=True, history_every=10**6)
torch.cuda.synchronize()
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    t0 = time.perf_counter()
    run_transfer(model, content, targets, cfg, device=dev)
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
kernels = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
busy = sum(e.device_time for e in kernels) / 1e3  # ms
conv = sum(e.device_time for e in kernels if "conv" in e.name or "xmma" in e.name or "implicit_gemm" in e.name) / 1e3
print(f"profiled 40 steps: wall {wall * 1e3:.1f} ms, kernels {len(kernels)}, kernel time {busy:.1f} ms "
      f"(convolution kernels {conv:.1f} ms) = {busy / 40 / batch:.4f} ms per image-step")
