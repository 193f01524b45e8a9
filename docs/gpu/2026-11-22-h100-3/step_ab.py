"""A/B of the work around the network in one transfer step (256 px, bf16 autocast, H100).

The step is: loss terms (network forward), gradient to the images, sanitise (where/nan_to_num), Adam,
clamp. Variants change only the images' layout and how the update runs:

  cl / nchw      images (B, 3, H, W) float32 stored channels_last (current) or plain contiguous
  upd=eager      where + nan_to_num + the repo's _Adam + clamp_ (current, about 11 image-sized kernels)
  upd=fused      the same arithmetic in one torch.compile'd elementwise function (one kernel)

Each variant: 2 warm-up loops of 10 steps, then 3 timed loops of 30 steps (host clock, device synchronised), median
ms per image-step. Then a profile of the current compiled variant grouped by input shape, and the
Python stacks of every aten::copy_. Run: PYTHONPATH=. python3 docs/gpu/2026-11-22-h100-3/step_ab.py

Ran in call 1 against commit 0731869, before conv_relu and the fused update existed; it uses that
commit's ``_Adam.step(grad)``, so it runs only there (``git checkout 0731869``).
"""

import os
import statistics
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

from evostyle import bench
from evostyle.device import resolve_precision
from evostyle.transfer import TransferConfig, _Adam, _terms

dev = torch.device(os.environ.get("AB_DEVICE", "cuda"))  # cpu: a quick check of the script
SIZE = int(os.environ.get("AB_SIZE", 256))
BATCHES = [int(a) for a in sys.argv[1:]] or [64]


def fused_update_fn():
    @torch.compile(dynamic=False)
    def upd(x, m, v, grad, failed, lr_t, bc2s, b1: float, b2: float, eps: float):
        g = torch.where(failed.view(-1, 1, 1, 1), torch.zeros_like(grad), torch.nan_to_num(grad))
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        x.addcdiv_(m, v.sqrt() / bc2s + eps, value=-lr_t)
        x.clamp_(0.0, 1.0)
    return upd


def make_loop(batch, layout, compiled, update):
    model, content, targets = bench._setup(SIZE, batch, dev, "random")
    cfg = TransferConfig(steps=10, precision="bf16", channels_last=True, compile=compiled)
    prec = resolve_precision("bf16", dev, True)
    model = model.to(memory_format=torch.channels_last)
    content = content.to(dev)
    with torch.no_grad(), prec.autocast(dev):
        cf = model(content[None], (cfg.content_layer,))[cfg.content_layer].float()
    x = content[None].repeat(batch, 1, 1, 1).contiguous()
    if layout == "cl":
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    lw = torch.ones(batch, len(cfg.style_layers), device=dev)
    cw, sw = torch.ones(batch, device=dev), torch.full((batch,), 10.0, device=dev)
    failed = torch.zeros(batch, dtype=torch.bool, device=dev)
    fn = torch.compile(_terms, dynamic=False) if compiled else _terms
    args = (model, x, cf, targets, lw, cw, sw, cfg, prec, dev)
    opt = _Adam(x, cfg.lr)
    upd = fused_update_fn() if update == "fused" else None
    lr_t = torch.zeros((), device=dev)
    bc2s = torch.zeros((), device=dev)
    layouts = set()

    def step():
        terms = fn(*args)
        total = terms["total"]
        failed.__ior__(~torch.isfinite(total))
        loss = torch.where(failed, torch.zeros_like(total), total).sum()
        grad, = torch.autograd.grad(loss, x)
        layouts.add(tuple(grad.stride()))
        if update == "eager":
            grad = grad.contiguous(memory_format=torch.channels_last if layout == "cl" else torch.contiguous_format)
            grad = torch.where(failed.view(-1, 1, 1, 1), torch.zeros_like(grad), torch.nan_to_num(grad))
            opt.step(grad)
            with torch.no_grad():
                x.clamp_(0.0, 1.0)
        else:
            opt.t += 1
            lr_t.fill_(opt.lr / (1 - opt.b1 ** opt.t))
            bc2s.fill_((1 - opt.b2 ** opt.t) ** 0.5)
            with torch.no_grad():
                upd(x, opt.m, opt.v, grad, failed, lr_t, bc2s, opt.b1, opt.b2, opt.eps)

    def loop(n):
        for _ in range(n):
            step()
    return loop, x, layouts


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def time_variant(batch, layout, compiled, update):
    loop, x, layouts = make_loop(batch, layout, compiled, update)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    loop(10)
    loop(10)
    sync()
    ms = []
    for _ in range(3):
        t0 = time.perf_counter()
        loop(30)
        sync()
        ms.append((time.perf_counter() - t0) * 1e3 / (30 * batch))
    return statistics.median(ms), ms, layouts, loop


rows = []
for batch in BATCHES:
    for compiled in (True, False):
        for layout in ("cl", "nchw"):
            for update in ("eager", "fused"):
                med, ms, layouts, _ = time_variant(batch, layout, compiled, update)
                rows.append((batch, compiled, layout, update, med, ms, layouts))
                print(f"batch {batch} compile={compiled} x={layout:4s} upd={update:5s}: {med:.4f} ms/image-step "
                      f"{[round(v, 4) for v in ms]} grad strides {sorted(layouts)}", flush=True)

print("\n| batch | compile | images | update | ms per image-step | runs |")
print("| --- | --- | --- | --- | --- | --- |")
for batch, compiled, layout, update, med, ms, _ in rows:
    print(f"| {batch} | {compiled} | {layout} | {update} | {med:.4f} | {', '.join(f'{v:.4f}' for v in ms)} |")

# where the current compiled step's copies come from
_, _, _, loop = time_variant(BATCHES[-1], "cl", True, "eager")
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True, with_stack=True) as prof:
    loop(10)
    sync()
print(prof.key_averages(group_by_input_shape=True).table(
    sort_by="self_cuda_time_total", row_limit=45, max_name_column_width=60, max_shapes_column_width=80))
print(prof.key_averages(group_by_stack_n=8).table(
    sort_by="self_cuda_time_total", row_limit=12, max_name_column_width=40))

# eager only: cuDNN's fused convolution + bias + ReLU against conv2d (bias added by a separate kernel) + ReLU
if dev.type == "cuda":
    F = torch.nn.functional
    print("\n| layer input (B, C, H, W) | C_out | conv2d + relu ms | cudnn_convolution_relu ms |")
    print("| --- | --- | --- | --- |")
    for c_in, c_out, hw in ((3, 64, 256), (64, 64, 256), (64, 128, 128), (128, 128, 128), (128, 256, 64),
                            (256, 256, 64), (256, 512, 32), (512, 512, 32), (512, 512, 16)):
        xi = torch.randn(32, c_in, hw, hw, device=dev, dtype=torch.bfloat16).contiguous(
            memory_format=torch.channels_last)
        w = (torch.randn(c_out, c_in, 3, 3, device=dev, dtype=torch.bfloat16) * 0.05).contiguous(
            memory_format=torch.channels_last)
        bias = torch.randn(c_out, device=dev, dtype=torch.bfloat16)
        ref = F.relu(F.conv2d(xi, w, bias, padding=1))
        try:
            got = torch.cudnn_convolution_relu(xi, w, bias, (1, 1), (1, 1), (1, 1), 1)
            err = ((got.float() - ref.float()).norm() / ref.float().norm()).item()
        except Exception as exc:  # not every build has it for bf16
            print(f"| {c_in},{hw} | {c_out} | - | failed: {type(exc).__name__}: {str(exc)[:80]} |")
            continue
        out = []
        for f in (lambda: F.relu(F.conv2d(xi, w, bias, padding=1)),
                  lambda: torch.cudnn_convolution_relu(xi, w, bias, (1, 1), (1, 1), (1, 1), 1)):
            for _ in range(3):
                f()
            torch.cuda.synchronize()
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            for _ in range(20):
                f()
            b.record()
            torch.cuda.synchronize()
            out.append(a.elapsed_time(b) / 20)
        print(f"| (32, {c_in}, {hw}, {hw}) | {c_out} | {out[0]:.3f} | {out[1]:.3f} (rel. err {err:.1e}) |")
