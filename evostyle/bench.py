"""``python -m evostyle.bench``: throughput of the batched inner optimiser, and an end-to-end search race.

Throughput: for every (size, batch, precision, channels_last, compile) it times ``run_transfer`` with
``--steps`` and with ``--steps // 4`` steps and divides the difference by the extra image-steps, so
target building, the first forward pass and start-up cancel out. One image-step is a forward pass
through VGG19 up to relu5_1, the backward pass to the image and an Adam update.

End to end (``--e2e``): the same search (config, seed, number of evaluations) run twice:
torch DE + the batched evaluator in the default precision, and scipy DE + a one-candidate-at-a-time
fp32 evaluator (``max_batch`` = K rows). Prints wall times and the ratio.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from . import sample_image
from .device import PRECISIONS, device_info, resolve_device
from .errors import cli_errors, unknown
from .features import VGGFeatures
from .images import load_image
from .targets import StyleTargets
from .transfer import TransferConfig, run_transfer

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
GFLOP_256 = 95.0
"""Approximate GFLOP of one 256 px image-step (forward + backward to the image), from DESIGN.md."""


def _setup(size: int, device, weights: str):
    content = load_image(sample_image("cat.jpg"), (size, size))
    style = load_image(sample_image("starry_night.jpg"), (size, size))
    model = VGGFeatures(LAYERS + ("relu4_2",), weights=weights, seed=0).to(device)
    st = StyleTargets(model, [style], LAYERS, rotation_mode="channel", device=device)
    return model, content, st


def _time(model, content, targets, cfg, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    run_transfer(model, content, targets, cfg, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def throughput(size: int, batch: int, precision: str, channels_last: bool, compile_: bool, steps: int,
               device, weights: str = "random") -> dict:
    """Measure one setting; returns a dict row (ms per image-step, image-steps/s, peak MiB per image)."""
    model, content, st = _setup(size, device, weights)
    angles = torch.linspace(0, 360, batch + 1)[:-1].double()
    targets = st.build(torch.ones(batch, 1), angles, torch.ones(batch))
    runner = model
    if compile_:
        runner = torch.compile(model)
        runner.weights_info = model.weights_info
    row = {"size": size, "batch": batch, "precision": precision, "channels_last": channels_last,
           "compile": compile_, "ms_per_image_step": float("nan"), "image_steps_per_s": float("nan"),
           "peak_mib_per_image": float("nan"), "note": ""}
    short = max(1, steps // 4)
    try:
        cfg_s = TransferConfig(steps=short, precision=precision, channels_last=channels_last, history_every=10**6)
        cfg_l = TransferConfig(steps=steps, precision=precision, channels_last=channels_last, history_every=10**6)
        _time(runner, content, targets, cfg_s, device)  # warm-up (and compilation)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t_s = _time(runner, content, targets, cfg_s, device)
        t_l = _time(runner, content, targets, cfg_l, device)
    except Exception as exc:  # report, keep going (e.g. compile unsupported, out of memory)
        row["note"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:60]}"
        return row
    per = (t_l - t_s) / ((steps - short) * batch)
    row["ms_per_image_step"] = per * 1e3
    row["image_steps_per_s"] = 1.0 / per
    if device.type == "cuda":
        row["peak_mib_per_image"] = torch.cuda.max_memory_allocated(device) / 2**20 / batch
    row["tflops_est"] = GFLOP_256 * (size / 256) ** 2 / per / 1e3
    return row


def end_to_end(size: int, steps: int, popsize: int, maxiter: int, outputs: int, device: str, weights: str) -> dict:
    """Same search twice: torch DE + batched default precision vs scipy DE + one candidate at a time fp32."""
    from .config import make_config
    from .search import run_search
    base = {"size": size, "steps": steps, "popsize": popsize, "maxiter": maxiter, "outputs": outputs,
            "device": device, "weights": weights, "seed": 0, "search": ["angles", "mix"]}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (("torch-de batched", {"optimizer": "torch-de"}),
                            ("scipy-de one-at-a-time fp32", {"optimizer": "scipy-de", "precision": "fp32",
                                                             "max_batch": outputs})):
            t0 = time.perf_counter()
            summ = run_search(make_config({**base, **extra}), Path(tmp) / name.split()[0], quiet=True, report=False)
            out[name] = {"seconds": time.perf_counter() - t0, "best_fitness": summ["best"]["fitness"],
                         "evaluations": summ["optimizer"]["nfev_points"]}
    names = list(out)
    out["speedup"] = out[names[1]]["seconds"] / out[names[0]]["seconds"]
    return out


def _fmt_table(rows: list[dict]) -> str:
    cols = ["size", "batch", "precision", "channels_last", "compile", "ms_per_image_step", "image_steps_per_s",
            "peak_mib_per_image", "note"]
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            if isinstance(v, float):
                cells.append("n/a" if v != v else f"{v:.3g}")  # NaN: not measured (e.g. memory on the CPU)
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evostyle.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="default: 128 256 512 on CUDA, 64 on CPU")
    ap.add_argument("--batches", type=int, nargs="+", default=None, help="default: 1 8 32 64 on CUDA, 1 4 on CPU")
    ap.add_argument("--precisions", nargs="+", default=None, help="default: fp32 tf32 bf16 on CUDA, fp32 on CPU")
    ap.add_argument("--channels-last", choices=("on", "off", "both"), default=None)
    ap.add_argument("--compile", choices=("on", "off", "both"), default="off")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 40 on CUDA, 8 on CPU)")
    ap.add_argument("--e2e", action="store_true", help="also race the two search set-ups")
    ap.add_argument("--e2e-size", type=int, default=None)
    ap.add_argument("--e2e-steps", type=int, default=None)
    ap.add_argument("--e2e-popsize", type=int, default=8)
    ap.add_argument("--e2e-maxiter", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--weights", default="random")
    ap.add_argument("--out", help="write bench.json and bench.md here")
    ap.add_argument("--debug", action="store_true")
    args = ap.parse_args(argv)
    with cli_errors(args.debug, "evostyle.bench"):
        dev = resolve_device(args.device)
        cuda = dev.type == "cuda"
        sizes = args.sizes or ([128, 256, 512] if cuda else [64])
        batches = args.batches or ([1, 8, 32, 64] if cuda else [1, 4])
        precisions = args.precisions or (["fp32", "tf32", "bf16"] if cuda else ["fp32"])
        explicit = tuple(p for p in PRECISIONS if p != "auto")
        for p in precisions:
            if p not in explicit:
                raise unknown("precision", p, explicit)
        cl = {"on": [True], "off": [False], "both": [False, True]}[args.channels_last or ("both" if cuda else "off")]
        comp = {"on": [True], "off": [False], "both": [False, True]}[args.compile]
        steps = args.steps or (40 if cuda else 8)
        info = device_info(dev)
        print(f"device: {info.get('gpu', 'cpu')}  torch {torch.__version__}  steps {steps}", flush=True)
        rows = []
        for size, batch, prec, c_l, c in itertools.product(sizes, batches, precisions, cl, comp):
            r = throughput(size, batch, prec, c_l, c, steps, dev, args.weights)
            rows.append(r)
            print(f"  {size}px batch {batch:3d} {prec:5s} cl={int(c_l)} compile={int(c)}: "
                  f"{r['ms_per_image_step']:.3f} ms/image-step {r['note']}", flush=True)
        table = _fmt_table(rows)
        print(table)
        result = {"device": info, "date": time.strftime("%Y-%m-%d"), "steps": steps, "weights": args.weights,
                  "rows": rows}
        if args.e2e:
            e2e = end_to_end(args.e2e_size or (256 if cuda else 32), args.e2e_steps or (100 if cuda else 5),
                             args.e2e_popsize, args.e2e_maxiter, 4, str(dev), args.weights)
            result["e2e"] = e2e
            print(json.dumps(e2e, indent=2))
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "bench.json").write_text(json.dumps(result, indent=2, default=str))
            (out / "bench.md").write_text(f"device: {info.get('gpu', 'cpu')}, torch {torch.__version__}, "
                                          f"{result['date']}\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
