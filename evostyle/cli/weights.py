"""``evostyle weights``: convert a VGG export into an evostyle weights file, or show what a spec loads.

``evostyle weights import SRC --out FILE`` reads a VGG16/VGG19 convolutional base from an ONNX, Keras
HDF5 or torch file, writes it once as an evostyle weights file (the ``features`` state dict with its
backbone and preprocessing; ``--weights FILE`` then loads it) and prints its fingerprint.
``evostyle weights show SPEC`` resolves a spec (``auto``, ``offline``, a file...) and prints its record.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from evostyle.cli.common import plain, show_defaults
from evostyle.errors import EvostyleError, cli_errors
from evostyle.network.backbones import BACKBONES, PREPROCESSINGS
from evostyle.progress import setup_logging


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="evostyle weights", description=plain(__doc__))
    sub = ap.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="convert an ONNX / Keras HDF5 / torch VGG export into an evostyle weights file")
    imp.add_argument("src", help="the export: .onnx, .h5 / .hdf5 / .keras, or a .pt / .pth state dict")
    imp.add_argument("--out", required=True, help="the evostyle weights file to write (.pt)")
    imp.add_argument("--backbone", default="auto", choices=("auto", *BACKBONES),
                     help="the architecture (auto: found from the convolutions' count and shapes)")
    imp.add_argument("--preprocessing", default="auto", choices=("auto", *PREPROCESSINGS),
                     help="the input the weights were trained on (auto: known weights by their fingerprint, "
                          "Keras exports caffe, else torchvision)")
    imp.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    show = sub.add_parser("show", help="resolve a weights spec and print its record (JSON)")
    show.add_argument("spec", help="auto | imagenet | offline | random | a weights file")
    show.add_argument("--backbone", default="auto", choices=("auto", *BACKBONES), help="the backbone asked for")
    for p in (imp, show):
        p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
        p.add_argument("--debug", action="store_true", help="show tracebacks")
        show_defaults(p)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(-1 if args.quiet else 0)
    with cli_errors(args.debug, "evostyle weights"):
        from evostyle.network.weights import import_weights, resolve_weights, save_weights
        if args.action == "show":
            w = resolve_weights(args.spec, args.backbone)
            print(json.dumps(w.info, indent=2))
            return 0
        out = Path(args.out)
        if out.is_dir():
            raise EvostyleError(f"--out {out} is a folder; give a file name such as {out / 'vgg16.pt'}")
        if out.exists() and not args.overwrite:
            raise EvostyleError(f"{out} exists; pass --overwrite to replace it, or choose another --out")
        if Path(args.src).resolve() == out.resolve():
            raise EvostyleError("--out is the source file itself; choose another --out")
        w = import_weights(args.src, args.backbone, args.preprocessing)
        sha = save_weights(w, out)
        print(f"{out}: {w.backbone.name}, {len(w.backbone.conv_shapes)} convolutions, preprocessing "
              f"{w.preprocessing.name} ({w.preprocessing.describe()})")
        if w.info.get("identified"):
            print(f"identified: {w.info['identified']} (every convolution's first bias matches)")
        print(f"features sha256: {w.info['features_sha256']}")
        print(f"file sha256:     {sha}")
    return 0
