"""Where the eager bf16 + channels_last step (256 px, batch 32) spends its GPU time, by operator and
input shape (torch.profiler). Run: PYTHONPATH=. python3 docs/gpu/2026-11-22-h100-2/eager_profile.py
"""

import torch
from torch.profiler import ProfilerActivity, profile

from evostyle import bench
from evostyle.transfer import TransferConfig, run_transfer

dev = torch.device("cuda")
model, content, targets = bench._setup(256, 32, dev, "random")
cfg = TransferConfig(steps=5, precision="bf16", channels_last=True, history_every=10**6)
run_transfer(model, content, targets, cfg, device=dev)
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True) as prof:
    run_transfer(model, content, targets, cfg, device=dev)
    torch.cuda.synchronize()
print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cuda_time_total", row_limit=40,
                                                         max_name_column_width=40, max_shapes_column_width=70))
