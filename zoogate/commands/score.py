"""`zoogate score`: top-1/top-5 of a device's result folder (ais_bench TXT/BIN/NPY, vamp npz, .npy arrays),
the Ascend guide's metrics.json, our richer JSON, and the accuracy gates. Exit 0 pass, 1 a gate failed or
was INCONCLUSIVE (too few images, a row without the metric, an informational row; --allow-inconclusive lets
those exit 0), 2 a user error (bad path, file or format)."""

from __future__ import annotations

import argparse

from zoogate import baselines
from zoogate.metrics import modelzoo_metrics, rich_metrics, write_json_atomic
from zoogate.record import BLOCKING, FAIL, INCONCLUSIVE


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score", help="score a device's result folder against labels and gate it",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="registry model the results come from (e.g. inception_v4_1001)")
    p.add_argument("--results", required=True, metavar="DIR",
                   help="result folder (ais_bench OUT/NAME, vamp --path_output) or one (N, C) .npy file")
    p.add_argument("--labels", required=True, metavar="FILE",
                   help="val_label.txt ('<file> <label>', 0-based), or a dataset folder")
    p.add_argument("--out", metavar="FILE", help="write metrics.json in the Ascend ModelZoo postprocess's shape")
    p.add_argument("--rich-out", metavar="FILE", help="write zoogate's JSON: numbers, intervals, gates, provenance")
    p.add_argument("--format", default="auto", choices=("auto", "txt", "bin", "npy", "npz"),
                   help="result file format (default: from the files)")
    p.add_argument("--datalist", metavar="FILE",
                   help="vamp datalist (input .npz paths in run order), or the row order of a single .npy array")
    p.add_argument("--baseline-row", metavar="ROW", default=None,
                   help="documented row the run claims (default: the model's reference row)")
    p.add_argument("--allow-inconclusive", action="store_true",
                   help="exit 0 when gates are INCONCLUSIVE (never when one FAILED); they still print as such")
    p.add_argument("--allow-subset", action="store_true",
                   help="score a run over only some of the labelled images (the gate then uses a Wilson interval)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zoogate.accuracy import score_offline

    scored, records = score_offline(args.model, args.results, args.labels, fmt=args.format,
                                    datalist=args.datalist, row=args.baseline_row, allow_subset=args.allow_subset)
    s = scored.summary
    confidence = baselines.tolerance("wilson_confidence").value
    r = scored.results
    print(f"zoogate score: {args.model}: {len(r.stems)} results ({r.kind}, .{r.fmt}, paired {r.pairing}) in {r.source}")
    print(f"  classes   : {s.classes_assumed}")
    for k in (1, 5):
        lo, hi = s.interval(k, confidence)
        print(f"  top-{k}     : {s.accuracy(k) * 100:.3f} %  ({s.hits[k - 1]}/{s.n}; Wilson {confidence:.0%} "
              f"[{lo * 100:.3f}, {hi * 100:.3f}] %)")
    for note in r.notes:
        print(f"  note      : {note}")
    if r.skipped:
        print(f"  skipped   : {len(r.skipped)} file(s) that are not output 0 of this format, e.g. {r.skipped[0]}")
    for rec in records:
        print(rec.explain() if rec.status in BLOCKING else f"[{rec.status.upper()}] {rec.id}: {rec.reason}")
    if args.out:
        write_json_atomic(args.out, modelzoo_metrics(s), indent=None)   # compact, as the postprocess writes it
    if args.rich_out:
        write_json_atomic(args.rich_out, rich_metrics(s, model=args.model, row=args.baseline_row,
                                                      confidence=confidence, provenance=scored.provenance(),
                                                      skipped=r.skipped, gates=[x.to_dict() for x in records]))
    if any(rec.status == FAIL for rec in records):
        return 1
    if any(rec.status == INCONCLUSIVE for rec in records):
        if args.allow_inconclusive:
            print("zoogate score: INCONCLUSIVE gates allowed by --allow-inconclusive: this is not a pass")
            return 0
        print("zoogate score: INCONCLUSIVE: too little evidence to pass (exit 1; --allow-inconclusive to accept)")
        return 1
    return 0

