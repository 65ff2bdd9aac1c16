"""`zoogate diff OLD NEW`: what changed between two gate reports (exit 0 no regression, 1 regression,
2 unreadable report)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("diff", help="compare two gate reports (exit 1 on a regression)",
                              description="Show what changed between two releases' gate reports: gate status, "
                                          "accuracy, agreement and fps. Regressions (by the named tolerances "
                                          "top1_abs_pp, top5_abs_pp, the agreement tolerances and "
                                          "fps_regression_rel) exit 1; unreadable reports exit 2.")
    p.add_argument("old", metavar="OLD", help="the earlier gate report JSON")
    p.add_argument("new", metavar="NEW", help="the later gate report JSON")
    p.add_argument("--strict", action="store_true",
                   help="also count coverage lost (gates that passed in OLD and are skipped or missing in NEW)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zoogate.report import diff_reports, load_report, render_diff

    diff = diff_reports(load_report(args.old), load_report(args.new))
    print(render_diff(diff))
    return 1 if diff.regressions or (args.strict and diff.coverage_lost) else 0
