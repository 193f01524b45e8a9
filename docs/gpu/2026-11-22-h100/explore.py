"""Exploration on the GPU: variants of the 256 px batched step, a profile, quality, e2e.

The script as it ran on an H100 on 2026-11-22 (log: explore.log beside it), against the package as of
the commit that added this folder, with three differences: measures.gram was the einsum with a float32
upcast of commit c7564c3 (``gram_lowp`` below is that einsum without the upcast, autograd's backward);
TransferConfig.autotune defaulted to True (so the profile and quality runs had it on); and
TransferConfig.compile did not exist yet. Variants are made by patching the package at run time.
Only change to this file since: the default output folder.
"""
import json, os, sys, time, traceback
import torch
sys.path.insert(0, os.getcwd())
from evostyle import bench, measures, transfer
from evostyle.transfer import TransferConfig

OUT = os.environ.get("OUT", ".")
dev = torch.device("cuda")
print(torch.__version__, torch.cuda.get_device_name(0), flush=True)
res = {}

# matmul ceiling
a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
for _ in range(3): a @ a
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(10): a @ a
torch.cuda.synchronize(); dt = (time.perf_counter() - t) / 10
print(f"bf16 8192^3 matmul: {2*8192**3/dt/1e12:.0f} TFLOP/s", flush=True)
del a

orig_gram = measures.gram
def gram_lowp(f, norm="hw"):
    _, c, h, w = f.shape
    g = torch.einsum("bchw,bdhw->bcd", f, f).float()
    return g / (h * w)

orig_cfg_init = TransferConfig.__init__

def variant(name, size=256, batch=32, prec="bf16", cl=True, comp=False, autotune=True, lowp=False, steps=20):
    measures.gram = gram_lowp if lowp else orig_gram
    def init(self, *a, **k):
        orig_cfg_init(self, *a, **k); self.autotune = autotune
    TransferConfig.__init__ = init
    try:
        t0 = time.perf_counter()
        r = bench.throughput(size, batch, prec, cl, comp, steps, dev)
        r["wall"] = time.perf_counter() - t0
    except Exception as e:
        r = {"note": repr(e)[:200]}
    finally:
        TransferConfig.__init__ = orig_cfg_init
        measures.gram = orig_gram
    res[name] = r
    print(f"{name:40s} {r.get('ms_per_image_step', float('nan')):.4f} ms  peak/img {r.get('peak_mib_per_image', 0):.0f} MiB  wall {r.get('wall', 0):.1f}s {r.get('note','')}", flush=True)

variant("fp32 b1 (no autotune)", batch=1, prec="fp32", cl=False, autotune=False)
variant("fp32 b4 cl=0", batch=4, prec="fp32", cl=False)
variant("fp32 b4 cl=0 no autotune", batch=4, prec="fp32", cl=False, autotune=False)
variant("bf16 cl b32 no autotune", autotune=False)
variant("bf16 cl b32 autotune")
variant("bf16 cl b64 autotune", batch=64)
variant("bf16 cl b32 autotune lowp gram", lowp=True)
variant("bf16 cl b64 autotune lowp gram", batch=64, lowp=True)
variant("bf16 nocl b32 autotune", cl=False)
variant("tf32 cl b32 autotune", prec="tf32")
for step in (60,):
    variant(f"bf16 cl b32 autotune steps{step}", steps=step)

try:
    print(bench.profile(256, 32, "bf16", 10, dev, rows=25), flush=True)
except Exception:
    traceback.print_exc()
measures.gram = gram_lowp
try:
    print(bench.profile(256, 32, "bf16", 10, dev, rows=12), flush=True)
except Exception:
    traceback.print_exc()
measures.gram = orig_gram

for lowp in (False, True):
    measures.gram = gram_lowp if lowp else orig_gram
    q = bench.quality(256, 200, 8, "bf16", dev)
    res[f"quality lowp={lowp}"] = q
    print("quality lowp", lowp, json.dumps({k: v for k, v in q.items() if isinstance(v, dict)}), flush=True)
measures.gram = orig_gram

t0 = time.perf_counter()
e = bench.end_to_end(256, 50, 4, 2, 4, "cuda", "random")
res["e2e"] = e
print(json.dumps(e, indent=1), f"wall {time.perf_counter()-t0:.0f}s", flush=True)

variant("bf16 cl b32 compile", comp=True)
json.dump(res, open(f"{OUT}/explore.json", "w"), indent=1, default=str)
