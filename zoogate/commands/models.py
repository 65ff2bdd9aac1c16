"""`zoogate models`: the registry as a table (or --json)."""

from __future__ import annotations

import json

from zoogate import baselines, models


def _rows(measure: bool) -> list[dict]:
    rows = []
    for name, mb in sorted(baselines.load_all().items()):
        measured = None
        if measure and not mb.user_supplied:
            measured = round(models.count_params_m(models.build(name)), 3)
        rows.append({
            "name": name, "source": mb.source, "builder": mb.builder, "implementation": mb.implementation,
            "input_size": mb.input_size, "num_classes": mb.num_classes,
            "top1": mb.top1 if mb.top1 is not None else mb.row(None).top1,
            "top5": mb.top5 if mb.top5 is not None else mb.row(None).top5,
            "params_m": mb.params_m, "gflops": mb.gflops, "measured_params_m": measured,
            "preprocess": mb.preprocess.describe(), "rows": [r.id for r in mb.rows],
            "documented_regressions": [{"row": r.id, "top1": r.top1, "why": why} for r in mb.rows
                                       if (why := mb.documented_regression(r))],
        })
    return rows


def _table(rows: list[dict]) -> str:
    cols = [("name", "model"), ("input_size", "px"), ("num_classes", "classes"), ("top1", "top1"),
            ("top5", "top5"), ("params_m", "params M"), ("measured_params_m", "measured M"),
            ("gflops", "GFLOPs"), ("regressions", "documented regressions (< 99 % of the reference top-1)"),
            ("builder", "builder"), ("source", "source")]
    cell = lambda v: "-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)
    for r in rows:
        r["regressions"] = ", ".join(f"{d['row']} ({d['top1']:g})" for d in r["documented_regressions"]) or None
    body = [[cell(r[k]) for k, _ in cols] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, (_, h) in enumerate(cols)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()
    return "\n".join([line([h for _, h in cols]), line(["-" * w for w in widths])] + [line(b) for b in body])


def run(args) -> int:
    rows = _rows(measure=not args.no_measure)
    print(json.dumps(rows, indent=2, ensure_ascii=False) if args.json else _table(rows))
    return 0


def register(sub) -> None:
    p = sub.add_parser("models", help="list the model registry with documented and measured numbers")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-measure", action="store_true", help="skip building models to count parameters")
    p.set_defaults(func=run)
