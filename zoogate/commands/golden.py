"""`zoogate golden`: reference inputs/outputs in the ONNX model-zoo layout (+ .npy and a manifest)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("golden", help="write golden inputs and PyTorch reference outputs for a model",
                              description="Write N generated, preprocessed images and the PyTorch eager outputs "
                                          "as test_data_set_0/input_0.pb, output_0.pb (+ .npy, manifest.json), "
                                          "for replay on a device runner and `zoogate compare`.")
    p.add_argument("--model", required=True, help="registry model name, e.g. inception_v4")
    p.add_argument("--out", required=True, metavar="DIR", help="new (or empty) directory to write")
    p.add_argument("--n", type=int, default=4, help="number of images (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated images (default 0)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="a real checkpoint; default: deterministic calibrated weights")
    p.add_argument("--with-onnx", action="store_true",
                   help="also copy the (cached) torchscript ONNX export in as model.onnx")
    p.add_argument("--force", action="store_true", help="replace an existing golden set in DIR")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="cache for weights and exports (default $ZOOGATE_CACHE or ~/.cache/zoogate)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zoogate import cache
    from zoogate.golden import make_golden, read_golden

    if args.cache_dir:
        cache.set_root(args.cache_dir)
    out = make_golden(args.model, args.out, n=args.n, seed=args.seed, weights=args.weights, force=args.force,
                      with_onnx=args.with_onnx)
    g = read_golden(out)
    m = g.manifest
    print(f"wrote golden set {out}: {m['model']}, {args.n} image(s) (seed {args.seed}), "
          f"input {m['input']['name']} {tuple(g.inputs.shape)} -> output {m['output']['name']} "
          f"{tuple(g.outputs.shape)}")
    print(f"  weights {m['weights']['id']} [{m['weights']['origin']}]")
    print(f"  preprocessing {m['preprocessing']['description']}")
    return 0
