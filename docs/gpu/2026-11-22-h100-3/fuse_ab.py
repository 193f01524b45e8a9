"""A/B of the fused convolution + bias + ReLU (evostyle.conv_relu) in the transfer step (256 px,
bf16 + channels_last), eager and compiled:

  modules   fusion(False): PyTorch's Conv2d and ReLU modules (the code before conv_relu existed;
            timed in call 3, not in the current plan)
  cudnn     every conv-ReLU pair through cuDNN's fused kernel, the first layer too (SMALL_C_IN = 0)
  default   the first layer (3 channels) as one patch product, the others through cuDNN's fused kernel

First the first layer alone (three ways, CUDA events). Then the step; then the quality check
(compiled bf16 vs fp32) and a kernel profile of the default compiled step at batch 64. Run:
PYTHONPATH=. python3 docs/gpu/2026-11-22-h100-3/fuse_ab.py

This is call 4's version; calls 2 and 3 ran earlier versions of it and of conv_relu (git history).
"""

import json
import os

import torch
import torch.nn.functional as F

from evostyle import bench, conv_relu
from evostyle.conv_relu import fusion

dev = torch.device("cuda")


def event_ms(f, reps=20):
    """Median of ``reps`` single-call times (CUDA events), after 3 warm-up calls."""
    for _ in range(3):
        f()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        f()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[reps // 2]


print("| first layer, batch | cuDNN fused ms | patch product ms | conv2d + ReLU ms | patch rel. error |")
print("| --- | --- | --- | --- | --- |")
for batch in (32, 64):
    xi = torch.rand(batch, 3, 256, 256, device=dev).contiguous(memory_format=torch.channels_last)
    w = (torch.randn(64, 3, 3, 3, device=dev) * 0.2).contiguous(memory_format=torch.channels_last)
    b = torch.randn(64, device=dev) * 0.1
    xh, wh, bh = xi.bfloat16(), w.bfloat16(), b.bfloat16()
    ref = F.relu(F.conv2d(xi.double(), w.double(), b.double(), padding=1))
    err = ((conv_relu._patch_product_relu(xh, wh, bh).double() - ref).norm() / ref.norm()).item()
    del ref
    t = [event_ms(lambda: torch.cudnn_convolution_relu(xh, wh, bh, (1, 1), (1, 1), (1, 1), 1)),
         event_ms(lambda: conv_relu._patch_product_relu(xh, wh, bh)),
         event_ms(lambda: F.relu(F.conv2d(xh, wh, bh, padding=1)))]
    print(f"| {batch} | {t[0]:.3f} | {t[1]:.3f} | {t[2]:.3f} | {err:.1e} |", flush=True)
torch.cuda.empty_cache()

rows = []
variants = {"modules": (False, conv_relu.SMALL_C_IN), "cudnn": (True, 0), "default": (True, conv_relu.SMALL_C_IN)}
plan = [(True, 64, "cudnn"), (True, 64, "default"), (True, 32, "cudnn"), (True, 32, "default"),
        (False, 64, "cudnn"), (False, 64, "default"), (False, 32, "cudnn"), (False, 32, "default")]
for compiled, batch, name in plan:
    fused, small = variants[name]
    conv_relu.SMALL_C_IN = small
    with fusion(fused):
        r = bench.throughput(256, batch, "bf16", True, compiled, 40, dev, repeats=3)
    conv_relu.SMALL_C_IN = variants["default"][1]
    r["variant"] = name
    rows.append(r)
    print(f"compile={compiled} batch {batch} {name}: {r['ms_per_image_step']:.4f} ms "
          f"{[round(v, 4) for v in r.get('ms_runs', [])]} peak {r['peak_mib_per_image']:.1f} MiB/image "
          f"warm-up {r.get('warmup_s', float('nan')):.1f} s {r['note']}", flush=True)
print("\n| compile | batch | conv + ReLU | ms per image-step | runs | peak MiB per image |")
print("| --- | --- | --- | --- | --- | --- |")
for r in rows:
    print(f"| {r['compile']} | {r['batch']} | {r['variant']} | {r['ms_per_image_step']:.4f} | "
          f"{', '.join(f'{v:.4f}' for v in r.get('ms_runs', []))} | {r['peak_mib_per_image']:.1f} |")
q = bench.quality(256, 200, 8, "bf16", dev, compile_=True)
print("quality, compiled bf16 vs fp32:", json.dumps(q))
p = bench.profile(256, 64, "bf16", 40, dev, rows=30, compile_=True)
print(p["table"])
print(f"kernels {p['kernel_ms']:.1f} ms = {p['kernel_ms_per_image_step']:.4f} ms per image-step (fixed part included)")
out = os.environ.get("OUT")
if out:
    with open(os.path.join(out, "fuse_ab.json"), "w") as f:
        json.dump({"rows": rows, "quality": q, "profile": {k: v for k, v in p.items() if k != "table"}}, f, indent=1)
