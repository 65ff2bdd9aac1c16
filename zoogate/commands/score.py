"""`zoogate score`: top-1/top-5 of a device's result folder (ais_bench TXT/BIN/NPY in any output dtype, one or
several devices; vamp npz; the VACC Relay top-k TXT; .npy arrays), the Ascend guide's metrics.json, our richer
JSON, and the accuracy gates. A multi-device ais_bench run is scored as one run and per device; a Relay TXT is
scored by class index and also by class name as the model zoo's eval_topk counts it. Exit 0 pass, 1 a gate failed or
was INCONCLUSIVE (too few images, a row without the metric, an informational row; --allow-inconclusive lets
those exit 0), 2 a user error (bad path, file or format)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from zoogate import baselines
from zoogate.errors import ZoogateError
from zoogate.metrics import modelzoo_metrics, rich_metrics, write_json_atomic
from zoogate.record import BLOCKING, FAIL, INCONCLUSIVE


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score", help="score a device's result folder against labels and gate it",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="registry model the results come from (e.g. inception_v4_1001)")
    p.add_argument("--results", required=True, metavar="DIR",
                   help="result folder (ais_bench OUT/NAME or OUT, vamp --path_output), a Relay top-k .txt, "
                        "or one (N, C) .npy file")
    p.add_argument("--labels", metavar="FILE",
                   help="val_label.txt ('<file> <label>', 0-based), or a dataset folder; a Relay top-k TXT "
                        "without it takes each image's class from its synset folder")
    p.add_argument("--out", metavar="FILE", help="write metrics.json in the Ascend ModelZoo postprocess's shape")
    p.add_argument("--rich-out", metavar="FILE", help="write zoogate's JSON: numbers, intervals, gates, provenance")
    p.add_argument("--format", default="auto", choices=("auto", "txt", "bin", "npy", "npz", "relay"),
                   help="result file format (default: from the files)")
    p.add_argument("--output-dtype", choices=("fp16", "fp32", "fp64"), default=None,
                   help="dtype of ais_bench BIN outputs (default: from the file size); NPY carries its own")
    p.add_argument("--pick", choices=("newest",), default=None,
                   help="--results holds several ais_bench timestamp folders: read the newest")
    p.add_argument("--class-list", metavar="FILE",
                   help="Relay top-k TXT: the class list it was written with (imagenet.txt), to check the names")
    p.add_argument("--datalist", metavar="FILE",
                   help="vamp datalist (input .npz paths in run order), or the row order of a single .npy array")
    p.add_argument("--baseline-row", metavar="ROW", default=None,
                   help="documented row the run claims (default: the model's reference row)")
    p.add_argument("--allow-inconclusive", action="store_true",
                   help="exit 0 when gates are INCONCLUSIVE (never when one FAILED); they still print as such")
    p.add_argument("--allow-subset", action="store_true",
                   help="score a run over only some of the labelled images (the gate then uses a Wilson interval)")
    p.set_defaults(func=run)


def device_metrics(d) -> dict:
    return {"n": d.n, "top1": round(d.top1 * 100, 4), "top5": round(d.top5 * 100, 4),
            "hits": {str(k): d.hits[k - 1] for k in range(1, len(d.hits) + 1)}}


def _check_output(option: str, value: str | None, inputs: list[Path], results: Path) -> None:
    """Before any scoring: the output is a file name in an existing folder, and none of the user's inputs."""
    if not value:
        return
    path = Path(value)
    if path.is_dir():
        raise ZoogateError(f"{option}: is a directory; give a file name", path)
    if not path.parent.is_dir():
        raise ZoogateError(f"{option}: its folder {path.parent} does not exist", path)
    if path.exists():
        taken = [p for p in inputs if p.exists() and os.path.samefile(p, path)]
        inside = results.is_dir() and results.resolve() in path.resolve().parents
        if taken or inside:
            raise ZoogateError(f"{option}: would overwrite an input of this run; write it elsewhere", path)


def run(args: argparse.Namespace) -> int:
    from zoogate.accuracy import score_offline

    inputs = [Path(p) for p in (args.labels, args.datalist, args.results) if p]
    for option, value in (("--out", args.out), ("--rich-out", args.rich_out)):
        _check_output(option, value, inputs, Path(args.results))
    scored, records = score_offline(args.model, args.results, args.labels, fmt=args.format,
                                    datalist=args.datalist, row=args.baseline_row, allow_subset=args.allow_subset,
                                    pick=args.pick, output_dtype=args.output_dtype, class_list=args.class_list)
    s = scored.summary
    confidence = baselines.tolerance("wilson_confidence").value
    r = scored.results
    print(f"zoogate score: {args.model}: {len(r.stems)} results ({r.kind}, .{r.fmt}, paired {r.pairing}) in {r.source}")
    print(f"  classes   : {s.classes_assumed}")
    for k in (1, 5):
        lo, hi = s.interval(k, confidence)
        print(f"  top-{k}     : {s.accuracy(k) * 100:.3f} %  ({s.hits[k - 1]}/{s.n}; Wilson {confidence:.0%} "
              f"[{lo * 100:.3f}, {hi * 100:.3f}] %)")
    for device, d in scored.per_device.items():
        print(f"  {device:<10}: top-1 {d.accuracy(1) * 100:.3f} % ({d.hits[0]}/{d.n}), top-5 {d.accuracy(5) * 100:.3f} % "
              f"({d.hits[4]}/{d.n})")
    if scored.by_name is not None:
        b = scored.by_name
        if b.available:
            print(f"  by name   : top1_rate {b.printed(1)} top5_rate {b.printed(5)} ({b.blocks} blocks): eval_topk's "
                  "count (class name strings; the truth is the full ImageNet name of the synset folder)")
            for diff in b.differences:
                print(f"  differs   : {diff}")
            if not b.differences:
                print("  differs   : no image: by index and by name count the same")
        else:
            print(f"  by name   : not computable: {b.why_not}")
    for note in r.notes:
        print(f"  note      : {note}")
    if r.skipped:
        print(f"  skipped   : {len(r.skipped)} file(s) that are not output 0 of this format, e.g. {r.skipped[0]}")
    for rec in records:
        print(rec.explain() if rec.status in BLOCKING else f"[{rec.status.upper()}] {rec.id}: {rec.reason}")
    if args.out:
        write_json_atomic(args.out, modelzoo_metrics(s), indent=None)   # compact, as the postprocess writes it
    if args.rich_out:
        rich = rich_metrics(s, model=args.model, row=args.baseline_row, confidence=confidence,
                            provenance=scored.provenance(), skipped=r.skipped, gates=[x.to_dict() for x in records])
        if scored.per_device:
            rich["per_device"] = {name: device_metrics(d) for name, d in scored.per_device.items()}
        if scored.by_name is not None:
            rich["by_name_eval_topk"] = scored.by_name.to_dict()
        write_json_atomic(args.rich_out, rich)
    if any(rec.status == FAIL for rec in records):
        return 1
    if any(rec.status == INCONCLUSIVE for rec in records):
        if args.allow_inconclusive:
            print("zoogate score: INCONCLUSIVE gates allowed by --allow-inconclusive: this is not a pass")
            return 0
        print("zoogate score: INCONCLUSIVE: too little evidence to pass (exit 1; --allow-inconclusive to accept)")
        return 1
    return 0

