"""`zoogate bisect`: name the first node where an ONNX candidate leaves its reference."""

from __future__ import annotations

import argparse

BISECT_IMAGES = 2           # one small batch: bisect marks every tensor as an output, so memory grows with it
RUNNERS = ("onnxruntime",)  # what runs both graphs, tensor by tensor


def register(subparsers) -> None:
    p = subparsers.add_parser("bisect", help="first divergent node of an ONNX candidate vs its reference "
                                             "(exit 0 none, 1 divergence found, 2 bad input)",
                              description="Marks every intermediate tensor of both graphs as an output, runs "
                                          "them on one batch in ONNX Runtime and compares them in topological "
                                          "order under the precision's bisect tolerance. Writes the per-layer "
                                          "error profile as JSON and PNG.")
    p.add_argument("--model", required=True, metavar="M", help="registry model the candidate is a build of")
    p.add_argument("--candidate", required=True, metavar="FILE", help="the candidate .onnx (fp32, fp16, QDQ int8, ...)")
    p.add_argument("--runner", default="onnxruntime", choices=RUNNERS, help="runs both graphs (default onnxruntime)")
    p.add_argument("--reference", default="onnxruntime", metavar="torch|onnxruntime|FILE",
                   help="torch or onnxruntime: our fp32 ONNX export of the PyTorch model (checked against eager "
                        "by the agreement gate), run in ONNX Runtime; or a reference .onnx file")
    p.add_argument("--weights", default=None, metavar="FILE", help="checkpoint of the reference (default calibrated)")
    p.add_argument("--images", default=None, metavar="DIR",
                   help=f"images to feed (the first {BISECT_IMAGES}, reference preprocessing); default generated")
    p.add_argument("--max-tensors", type=int, default=None, metavar="N",
                   help="compare at most N tensors (default zoogate.bisect.MAX_TENSORS); a capped clean run exits 1")
    p.add_argument("--precision", default=None, choices=("fp32", "fp16", "int8"),
                   help="the candidate's precision, which picks the tolerance (default: read from the graph)")
    p.add_argument("--out", default="reports/bisect", metavar="STEM",
                   help="profile path without suffix: STEM.json and STEM.png (default reports/bisect)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zoogate import baselines
    from zoogate.bisect import bisect, graph_precision

    spec = baselines.model(args.model).preprocess
    if args.reference in ("torch", "onnxruntime"):
        from zoogate.export import export_onnx

        reference = export_onnx(args.model, weights=args.weights)
    else:
        reference = args.reference
    batch = _batch(args.images, spec)
    precision = args.precision or graph_precision(args.candidate)
    from zoogate.bisect import MAX_TENSORS

    result = bisect(reference, args.candidate, batch, precision=precision, max_tensors=args.max_tensors or MAX_TENSORS)
    print(result.describe())
    for path in result.write(args.out):
        print(f"profile: {path}")
    return 1 if result.first is not None or result.capped else 0


def _batch(folder, spec):
    import numpy as np

    from zoogate import synthetic
    from zoogate.errors import ZoogateError
    from zoogate.images import IMAGE_SUFFIXES, open_rgb
    from zoogate.preprocess.reference import preprocess_batch, preprocess_reference

    if folder is None:
        return preprocess_batch(synthetic.images(BISECT_IMAGES, seed=4242), spec)
    from pathlib import Path

    root = Path(folder)
    if not root.is_dir():
        raise ZoogateError("--images: not a folder", root)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:BISECT_IMAGES]
    if not files:
        raise ZoogateError(f"--images: no image files ({', '.join(IMAGE_SUFFIXES)})", root)
    return np.stack([preprocess_reference(open_rgb(p), spec) for p in files])
