"""A/B of VGGFeatures.pad_rgb (the first convolution on 8 zero-padded channels instead of 3):
ms per image-step at 256 px, batch 64, bf16 + channels_last, compiled then eager, timed like
bench.throughput (warm-up, untimed full run, median of 3 pairs of 40 and 10 steps).
Run: PYTHONPATH=. python3 docs/gpu/2026-11-22-h100-2/pad_ab.py

It ran against a trial ``VGGFeatures.pad_rgb`` (forward: for the first module, pad the normalised
image and conv1_1's weight with zero channels up to ``pad_rgb`` and call conv2d in the weight's
memory layout). The gain was within the noise (pad_ab.txt), so the attribute was not kept; this
script no longer runs against the package as it is.
"""

import statistics
import time

import torch

from evostyle import bench
from evostyle.transfer import TransferConfig

dev = torch.device("cuda")
model, content, targets = bench._setup(256, 64, dev, "random")
for compile_ in (True, False):
    for pad in (0, 8):
        model.pad_rgb = pad
        kw = dict(precision="bf16", channels_last=True, compile=compile_, history_every=10**6)
        short, long_ = TransferConfig(steps=10, **kw), TransferConfig(steps=40, **kw)
        t0 = time.perf_counter()
        bench._time(model, content, targets, short, dev)
        warm = time.perf_counter() - t0
        bench._time(model, content, targets, long_, dev)
        pers = []
        for _ in range(3):
            t_s = bench._time(model, content, targets, short, dev)[0]
            t_l = bench._time(model, content, targets, long_, dev)[0]
            pers.append((t_l - t_s) / (30 * 64) * 1e3)
        print(f"compile={compile_} pad_rgb={pad}: {statistics.median(pers):.4f} ms per image-step "
              f"{[round(p, 4) for p in pers]} (warm-up {warm:.1f} s)", flush=True)
