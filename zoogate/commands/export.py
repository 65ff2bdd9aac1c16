"""`zoogate export`: the ONNX file labs feed to ATC / vamc (input `image`, output `class` by default)."""

from __future__ import annotations

import argparse
from pathlib import Path

from zoogate.errors import ZoogateError


def _batch(text: str) -> str | int:
    if text == "dynamic":
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected 'dynamic' or a positive integer, got {text!r}")


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a registry model to ONNX (cached), checked with onnx.checker",
                              description="Export a registry model to ONNX. Exports are cached (see --cache-dir); "
                                          "the file at --out is a copy, checked with onnx.checker.")
    p.add_argument("--model", required=True, help="registry model name, e.g. inception_v4")
    p.add_argument("--out", required=True, metavar="FILE.onnx", help="where to write the ONNX file")
    p.add_argument("--overwrite", action="store_true", help="replace --out when it exists (default: refuse)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="a real checkpoint (.pth/.safetensors); default: deterministic calibrated weights")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17 torchscript, 18 dynamo)")
    p.add_argument("--exporter", choices=("torchscript", "dynamo"), default="torchscript")
    p.add_argument("--batch", type=_batch, default="dynamic", metavar="dynamic|N",
                   help="dynamic batch axis (default) or a fixed batch size, as a static ATC build needs")
    p.add_argument("--input-name", default="image")
    p.add_argument("--output-name", default="class")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="cache for weights and exports (default $ZOOGATE_CACHE or ~/.cache/zoogate)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import onnx

    from zoogate import cache
    from zoogate.export import check_opset, copy_export, export_onnx
    from zoogate.weights import load_model

    out = Path(args.out)
    if out.suffix != ".onnx":
        raise ZoogateError("--out: expected a file name ending in .onnx", out)
    if out.is_dir():
        raise ZoogateError("--out: is a directory; give a file name", out)
    if out.exists() and not args.overwrite:
        raise ZoogateError("--out exists; pass --overwrite to replace it, or choose another file", out)
    check_opset(args.opset)
    if args.weights is not None and not Path(args.weights).is_file():
        raise ZoogateError("--weights: file not found", args.weights)
    if args.cache_dir:
        cache.set_root(args.cache_dir)
    products = cache.root() / "onnx"
    if products.resolve() in out.resolve().parents:
        raise ZoogateError(f"--out is inside the export cache ({products}); write the copy outside it", out)
    loaded = load_model(args.model, weights=args.weights)
    cached_before = set(products.glob("*.onnx"))
    path = export_onnx(loaded, exporter=args.exporter, opset=args.opset, batch=args.batch,
                       input_name=args.input_name, output_name=args.output_name)
    hit = path in cached_before
    copy_export(path, out, overwrite=args.overwrite)
    try:
        onnx.checker.check_model(str(out), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ZoogateError(f"onnx.checker rejected the export: {str(exc).splitlines()[0]}", out) from None
    model = onnx.load(str(out), load_external_data=False)
    ins = ", ".join(f"{i.name}{_dims(i)}" for i in model.graph.input)
    outs = ", ".join(f"{o.name}{_dims(o)}" for o in model.graph.output)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {args.model}, {args.exporter} exporter, "
          f"opset {model.opset_import[0].version}, weights {loaded.weights_id} [{loaded.origin}]")
    print(f"  inputs {ins} -> outputs {outs}; onnx.checker: ok")
    print(f"  cache {'hit' if hit else 'miss (exported now)'}: {path}")
    return 0


def _dims(value_info) -> str:
    shape = value_info.type.tensor_type.shape
    dims = [d.dim_param or str(d.dim_value) for d in shape.dim]
    return f"[{', '.join(dims)}]"
