"""Count the aten operators one eager transfer step dispatches (forward, backward to the images, Adam).

On a GPU nearly every operator that is not a view launches a kernel, and each dispatch and launch is
host time, so the count bounds how much host work a step needs whatever the batch. Runs on the CPU
(bf16 autocast, channels_last, 32 px, batch 2: the GPU's code path except that each conv + ReLU pair
is two operators here and one fused kernel on CUDA).

Run from the repository root: ``PYTHONPATH=. python3 docs/cpu/count_ops.py``
"""

import collections

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from evostyle import transfer as tr
from evostyle.network.device import resolve_precision
from evostyle.network.features import VGGFeatures
from evostyle.style.targets import StyleTargets

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
VIEWS = {"aten.view", "aten.permute", "aten.detach", "aten.unsqueeze", "aten.expand", "aten.select",
         "aten.transpose", "aten.slice", "aten.as_strided", "aten.t", "aten._unsafe_view", "aten.alias",
         "aten.squeeze", "aten._reshape_alias"}
"""Operators that only make a new view (no kernel)."""


class Count(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.calls = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def main():
    cpu = torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    content, style = torch.rand(3, 32, 32, generator=gen), torch.rand(3, 32, 32, generator=gen)
    model = VGGFeatures(LAYERS + ("relu4_2",), weights="random").to(memory_format=torch.channels_last)
    targets = StyleTargets(model, [style], LAYERS).build(
        torch.ones(2, 1), torch.tensor([0.0, 90.0], dtype=torch.float64), torch.ones(2))
    cfg = tr.TransferConfig(steps=1, precision="bf16", channels_last=True)
    prec = resolve_precision("bf16", cpu, True)
    with prec.autocast(cpu), torch.no_grad():
        content_feat = model(content[None], ("relu4_2",))["relu4_2"].float()
    x = content[None].repeat(2, 1, 1, 1).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    args = (model, x, content_feat, targets, tr._denominators(content_feat, targets, cfg), torch.ones(2, 5),
            torch.ones(2), torch.full((2,), 10.0), cfg, prec, cpu)
    opt, failed = tr._Adam(x, 0.02), torch.zeros(2, dtype=torch.bool)

    def step():
        _, grad = tr._evaluate(tr._terms, args, failed, False)
        opt.step(grad, failed)

    step()  # first step: one-off casts and caches
    with Count() as count:
        step()
    calls = count.calls
    kernels = {k: v for k, v in calls.items() if k not in VIEWS}
    print(f"torch {torch.__version__}: {sum(calls.values())} operator calls per eager step, "
          f"{sum(kernels.values())} of them not views")
    for name, n in sorted(kernels.items(), key=lambda kv: -kv[1]):
        print(f"  {n:4d} {name}")


if __name__ == "__main__":
    main()
