"""`zoogate preprocess`: a model's reference preprocessing (or a documented variant) as files labs can feed devices."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zoogate.errors import ZoogateError

# spelled out (not imported) so `zoogate --help` stays fast; a test keeps them equal to the library's
VARIANT_CHOICES = ("reference", "ascend-modelzoo", "vacc-vamp", "vacc-vsx", "timm-eval", "fast")
FORMAT_CHOICES = ("bin", "npy", "npz")
DESCRIPTION = ("Write a model's reference preprocessing (or a documented deployed variant) of every image in a "
               "folder as files a device flow reads.")

EPILOG = """\
Outputs under --out, laid out as each flow reads them:
  bin  float32 CHW raw (ndarray.tofile), the Ascend/ais_bench input (1,072,812 bytes at 299 px). All in
       --out itself (ais_bench reads the top level of --input only), named as the Ascend script names
       them: everything before the FIRST dot of the image's name + .bin (a.b.jpg -> a.bin). Images in
       sub-folders of --src are read too and flattened (the Ascend script lists the top level only and
       stops at a sub-folder; flattening keeps a synset-foldered val set usable); two images that give
       one name are an error.
  npy  float32 CHW (np.save), same sub-folder and stem as the image.
  npz  the VACC model zoo's image2npz.py output for vamp: only *.JPEG files (case-sensitive, as the tool),
       found recursively, each as OUT/<its parent folder's name>/<stem>.npz, key input_0 = uint8 CHW RGB
       at the original size (cv2.imread: EXIF orientation applied), plus the datalist OUT/NAME
       (--datalist, default npz_datalist.txt; the model zoo's READMEs call it imagenet_npz.txt): one
       absolute .npz path per line, in the tool's (glob's) order. Pass it to vamp --datalist; the card
       applies the vdsp_params itself. Goes with --variant vacc-vamp and --vdsp-params (checked against
       the model's input size).
Variants: reference = torchvision Resize/CenterCrop/ToTensor/Normalize from the model's baseline entry;
fast = bit-identical to reference, faster; ascend-modelzoo = the Ascend InceptionV4 script (truncated crop
offsets); vacc-vamp = image2npz.py + the card's vdsp op; vacc-vsx = the vsx classification.py flow (odd
sides resized to even first, then the vdsp op); both need --vdsp-params; timm-eval = timm's own eval
transform. reference, fast, ascend-modelzoo and timm-eval read images as PIL.Image.open(f).convert("RGB")
(EXIF orientation NOT applied); vacc-vamp and vacc-vsx read them with cv2.imread (applied).
Two images that would write the same output are an error naming both; nothing is written then.
Exit status: 0 all files written, 1 some files failed (listed on stderr), 2 nothing done (bad arguments,
name collisions, existing outputs without --overwrite, --out inside --src or --src inside --out)."""


def register(subparsers) -> None:
    p = subparsers.add_parser("preprocess", help="preprocess a folder of images into .bin/.npy/.npz files",
                              description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="registry model name (its baseline entry gives the pipeline)")
    p.add_argument("--src", required=True, type=Path, help="folder of images (read recursively; never written to)")
    p.add_argument("--out", required=True, type=Path, help="output folder (created; must neither lie in nor hold --src)")
    p.add_argument("--variant", choices=VARIANT_CHOICES, default=None,
                   help="preprocessing variant (default: reference; vacc-vamp with --format npz)")
    p.add_argument("--format", dest="fmt", choices=FORMAT_CHOICES, default="npy", help="output format (default npy)")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes (default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    p.add_argument("--vdsp-params", type=Path, default=None, metavar="FILE",
                   help="the VACC build's vdsp_params JSON: required by vacc-vamp, vacc-vsx and --format npz, "
                        "refused elsewhere (the model zoo's files: fixtures/vdsp_params/)")
    p.add_argument("--datalist", default=None, metavar="NAME",
                   help="--format npz: file name of the datalist written in --out (default npz_datalist.txt)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # imported here: every `zoogate` command loads this module, only this one needs numpy/PIL/torch
    from tqdm import tqdm

    from zoogate.preprocess import batch

    if args.out.resolve() in args.src.resolve().parents:
        raise ZoogateError(f"source folder {args.src} is inside the output folder; outputs (and --overwrite) could "
                           "replace source files: choose an --out that neither holds nor lies in --src", args.out)
    variant = args.variant or (batch.NPZ_VARIANT if args.fmt == "npz" else "reference")
    job = batch.Job(model=args.model, src=args.src, out=args.out, variant=variant, fmt=args.fmt,
                    vdsp_params=args.vdsp_params, jobs=args.jobs, overwrite=args.overwrite, datalist=args.datalist)
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
