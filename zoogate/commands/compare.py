"""`zoogate compare`: score a runner's outputs against a golden set with the comparator."""

from __future__ import annotations

import argparse

from zoogate.golden import DEFAULT_TOLERANCE


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help="compare a runner's outputs with a golden set (exit 0 pass, 1 fail)",
                              description="Score outputs (.npy or ONNX TensorProto .pb) against a golden set "
                                          "written by `zoogate golden`. Exit 0 pass, 1 fail, 2 bad input.")
    p.add_argument("--golden", required=True, metavar="DIR", help="golden set directory")
    p.add_argument("--outputs", required=True, metavar="DIR|FILE",
                   help="folder with output_0.npy / output_0.pb (or the file itself)")
    p.add_argument("--tolerance", default=DEFAULT_TOLERANCE, metavar="NAME",
                   help=f"named tolerance from baselines/tolerances*.toml (default {DEFAULT_TOLERANCE}; "
                        "fp16, int8 for reduced-precision builds)")
    p.add_argument("--model", default=None, metavar="M",
                   help="the model the outputs' build is of: a golden set of another model, weights or "
                        "preprocessing is refused (exit 2)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="with --model: the checkpoint the build was made from (default: calibrated weights)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zoogate.errors import ZoogateError
    from zoogate.golden import compare_outputs, describe_build, expected_build, read_golden

    if args.weights and not args.model:
        raise ZoogateError("--weights needs --model (the model the checkpoint belongs to)", args.weights)
    expect = expected_build(args.model, args.weights) if args.model else None
    print(f"golden build: {describe_build(read_golden(args.golden))}")
    result = compare_outputs(args.golden, args.outputs, args.tolerance, expect=expect)
    print(result.report())
    return 0 if result.passed else 1
