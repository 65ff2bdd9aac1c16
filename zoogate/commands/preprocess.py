"""`zoogate preprocess`: a model's reference preprocessing (or a documented variant) as files labs can feed devices."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# spelled out (not imported) so `zoogate --help` stays fast; a test keeps them equal to the library's
VARIANT_CHOICES = ("reference", "ascend-modelzoo", "vacc-vdsp", "timm-eval", "fast")
FORMAT_CHOICES = ("bin", "npy", "npz")
DESCRIPTION = ("Write a model's reference preprocessing (or a documented deployed variant) of every image in a "
               "folder as files a device flow reads.")

EPILOG = """\
One output per input file, same sub-folder and stem, under --out:
  bin  float32 CHW raw (ndarray.tofile), the Ascend/ais_bench input (1,072,812 bytes at 299 px)
  npy  float32 CHW (np.save)
  npz  the VACC vamp input: key input_0 = uint8 CHW RGB at the original size, plus OUT/npz_datalist.txt;
       the card applies its vdsp_params itself (use with --variant vacc-vdsp)
Variants: reference = torchvision Resize/CenterCrop/ToTensor/Normalize from the model's baseline entry;
fast = bit-identical to reference, faster; ascend-modelzoo = the Ascend InceptionV4 script (truncated crop
offsets); vacc-vdsp = emulation of the card's vdsp_params (needs --vdsp-params); timm-eval = timm's own
eval transform. Images are read as PIL.Image.open(f).convert("RGB"): EXIF orientation is not applied.
Exit status: 0 all files written, 1 some files failed (listed on stderr), 2 nothing done (bad arguments,
existing outputs without --overwrite, --out inside --src)."""


def register(subparsers) -> None:
    p = subparsers.add_parser("preprocess", help="preprocess a folder of images into .bin/.npy/.npz files",
                              description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="registry model name (its baseline entry gives the pipeline)")
    p.add_argument("--src", required=True, type=Path, help="folder of images (read recursively; never written to)")
    p.add_argument("--out", required=True, type=Path, help="output folder (created; must not be inside --src)")
    p.add_argument("--variant", choices=VARIANT_CHOICES, default=None,
                   help="preprocessing variant (default: reference; vacc-vdsp with --format npz)")
    p.add_argument("--format", dest="fmt", choices=FORMAT_CHOICES, default="npy", help="output format (default npy)")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes (default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    p.add_argument("--vdsp-params", type=Path, default=None, metavar="FILE",
                   help="vdsp_params JSON for --variant vacc-vdsp (examples: fixtures/vdsp_params/)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # imported here: every `zoogate` command loads this module, only this one needs numpy/PIL/torch
    from tqdm import tqdm

    from zoogate.preprocess import batch

    variant = args.variant or ("vacc-vdsp" if args.fmt == "npz" else "reference")
    job = batch.Job(model=args.model, src=args.src, out=args.out, variant=variant, fmt=args.fmt,
                    vdsp_params=args.vdsp_params, jobs=args.jobs, overwrite=args.overwrite)
    planned = batch.plan(job)          # ZoogateError -> exit 2 before anything is written
    with tqdm(total=len(planned.items), file=sys.stderr, unit="img", desc=f"{args.model} {variant} -> {args.fmt}",
              disable=None) as bar:
        report = batch.run(job, progress=bar.update, planned=planned)
    print(f"zoogate preprocess: {len(report.written)} of {report.total} files written to {args.out} "
          f"({args.fmt}, {variant}, {args.model})")
    if report.datalist:
        print(f"datalist: {report.datalist}")
    if report.left_out:
        n = len(report.left_out)
        print(f"left out {n} entr{'y' if n == 1 else 'ies'} (not read): "
              + ", ".join(f"{p} ({why})" for p, why in report.left_out[:5])
              + (" ..." if len(report.left_out) > 5 else ""), file=sys.stderr)
    if report.failures:
        print(f"{len(report.failures)} file(s) failed:", file=sys.stderr)
        for _, why in report.failures:
            print(f"  {why}", file=sys.stderr)
        return 1
    return 0
