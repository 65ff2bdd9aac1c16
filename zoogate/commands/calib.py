"""`zoogate calib`: a class-balanced, seeded calibration set for an int8 build, in the device flow's format."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from zoogate.calib import CALIB_SEED, FORMATS

    p = subparsers.add_parser("calib", help="write a class-balanced calibration subset with its manifest",
                              description="Choose --per-class K images of every class (or a class-balanced "
                                          "--count N) of an ImageNet-layout folder, seeded, and write them as "
                                          "jpg (copies), bin/npy (the model's preprocessing) or npz (image2npz). "
                                          "Refuses, naming the class, when a class has no image or fewer than "
                                          "asked. Exit 0 written, 2 bad input.")
    p.add_argument("--imagenet", required=True, metavar="DIR",
                   help="ImageNet val folder (val/ + val_label.txt, or class folders); a generated set works too")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--per-class", type=int, metavar="K", help="K images of every class")
    how.add_argument("--count", type=int, metavar="N", help="N images, class-balanced")
    p.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder")
    p.add_argument("--format", default="jpg", choices=FORMATS, help="what the device flow reads (default jpg)")
    p.add_argument("--model", default=None, metavar="M", help="the model whose preprocessing bin/npy use")
    p.add_argument("--seed", type=int, default=CALIB_SEED, help=f"subset seed (default {CALIB_SEED})")
    p.add_argument("--only-present-classes", action="store_true",
                   help="balance over the classes the set holds (a generated set, a subset) instead of all 1000")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from zoogate import baselines, calib
    from zoogate.datasets import open_dataset

    spec = baselines.model(args.model).preprocess if args.model else None
    dataset = open_dataset(args.imagenet)
    chosen = calib.choose(dataset, per_class=args.per_class, count=args.count, seed=args.seed,
                          only_present=args.only_present_classes)
    manifest = calib.write(dataset, args.out, chosen, fmt=args.format, spec=spec, seed=args.seed)
    doc = json.loads(manifest.read_text())
    print(f"{doc['images']} images of {doc['classes']} classes ({args.format}) in {args.out}; manifest {manifest} "
          f"(fingerprint {doc['fingerprint']})")
    return 0
