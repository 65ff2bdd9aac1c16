"""`zoogate report PATH`: re-print a saved gate report (exit 0 all gates passed, 1 a gate failed or the
run had a problem such as --require, 2 unreadable report)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="re-print a saved gate report's table (exit 1 when it holds a failure)",
                              description="Print the table, totals and environment summary of a gate report "
                                          "written by pytest (--gate-report). Exit 0 when every gate passed or "
                                          "skipped, 1 when a gate failed or the run recorded a problem, "
                                          "2 when the file is not a readable gate report.")
    p.add_argument("path", metavar="PATH", help="gate report JSON (e.g. reports/gate-report.json)")
    p.add_argument("--full", action="store_true", help="never truncate columns (default: fit 160 characters)")
    p.add_argument("--failed", action="store_true", help="list failing records only, each with its explanation")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zoogate.report import load_report, render_report, render_summary

    report = load_report(args.path)
    if args.failed:
        print(render_summary(report.summary))
        for record in report.failed:
            print()
            print(record.explain())
    else:
        print(render_report(report, width=None if args.full else 160))
    return 1 if report.failed or report.run.get("problems") else 0
