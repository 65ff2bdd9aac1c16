"""`zoogate check-inputs`: a lab's own preprocessed files against the model's reference and every known flow."""

from __future__ import annotations

import argparse
from pathlib import Path

from zoogate.commands.preprocess import VARIANT_CHOICES

DESCRIPTION = ("Compare a lab's preprocessed files (Ascend .bin, VACC .npz, .npy) with what the model's reference "
               "and every known deployment flow make of the same images, and name what made them.")

EPILOG = """\
Files under --prepared (recursively) pair with images under --images by the name before the first dot, as
ais_bench and the Ascend script name them (ILSVRC2012_val_00000001.JPEG <-> ILSVRC2012_val_00000001.bin).
  .bin  raw float32 CHW at the model's input size (a float16 file of that shape, or a float32 one of
        another square size, is read as such)
  .npy  float (3, H, W) or (1, 3, H, W)
  .npz  image2npz.py's: key input_0, uint8 CHW at the original size; compared with the image a VACC host
        hands the card (cv2.imread with EXIF orientation applied, RGB)
Per file: max abs / mean abs to the reference and to each flow (ascend-modelzoo, vacc-vamp, vacc-vsx,
timm-eval where it applies), then the best explanation: an exact match of a flow (bit for bit, or at
float32 rounding of the written file); else one planted fault that reproduces it (BGR, ImageNet vs 0.5
mean/std, Std/Mean off by 0.001, crop offset truncated vs rounded, bicubic vs bilinear, PIL vs OpenCV
decode, Resize 256/341/342/343, Resize(256)/CenterCrop(256)); else "unexplained". One summary line per
folder. The vacc flows use --vdsp-params, else the model zoo's file for the model if zoogate has one.
Exit status: 0 every file matches the claimed --variant (default: the reference) or the reference,
1 some file matches neither, 2 bad input (a folder or file that cannot be read, a file without its image)."""


def register(subparsers) -> None:
    p = subparsers.add_parser("check-inputs", help="name the preprocessing behind a lab's .bin/.npz/.npy files",
                              description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="registry model name")
    p.add_argument("--images", required=True, type=Path, metavar="DIR", help="the source images (searched recursively)")
    p.add_argument("--prepared", required=True, type=Path, metavar="DIR",
                   help="the lab's preprocessed files (.bin, .npy, .npz; searched recursively)")
    p.add_argument("--variant", choices=VARIANT_CHOICES, default=None,
                   help="the flow the lab says it ran (default: the reference)")
    p.add_argument("--vdsp-params", type=Path, default=None, metavar="FILE",
                   help="the VACC build's vdsp_params JSON, for the vacc-vamp / vacc-vsx flows")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zoogate.preprocess.check_inputs import check

    result = check(args.model, args.images, args.prepared, args.variant, args.vdsp_params)
    print("\n".join(result.lines()))
    return result.exit_code
