"""`zoogate report PATH [--html PAGE]`: re-print a saved gate report (exit 0 all gates passed, 1 a gate failed or
the run had a problem such as --require, 2 unreadable report). `zoogate report merge A.json B.json ... --out
release.json [--html PAGE]`: one release report from several hosts' reports; its exit code is the release
verdict (1 on a failure, a run problem or a record two hosts judged differently)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="re-print a saved gate report's table (exit 1 when it holds a failure); "
                                             "`report merge A B --out R` merges hosts' reports",
                              description="Print the table, totals and environment summary of a gate report "
                                          "written by pytest (--gate-report). Exit 0 when every gate passed or "
                                          "skipped, 1 when a gate failed or the run recorded a problem, "
                                          "2 when the file is not a readable gate report. With `merge` first: "
                                          "combine several reports into --out.")
    p.add_argument("path", nargs="+", metavar="PATH", help="gate report JSON (e.g. reports/gate-report.json); "
                                                           "or merge A.json B.json ...")
    p.add_argument("--full", action="store_true", help="never truncate columns (default: fit 160 characters)")
    p.add_argument("--failed", action="store_true", help="list failing records only, each with its explanation")
    p.add_argument("--html", default=None, metavar="PAGE", help="also write the self-contained HTML release page")
    p.add_argument("--out", default=None, metavar="FILE", help="merge: where the merged report goes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zoogate.errors import ZoogateError
    from zoogate.report import load_report, parse_report, render_report, render_summary, write_report
    from zoogate.report.html import write_html

    if args.path[0] == "merge":
        from zoogate.report.merge import merge_reports

        if len(args.path) < 3 or not args.out:
            raise ZoogateError("usage: zoogate report merge A.json B.json ... --out release.json")
        doc = merge_reports([load_report(p) for p in args.path[1:]])
        report = parse_report(doc, args.out)
        report.path = write_report(doc, args.out)
    elif len(args.path) == 1:
        report = load_report(args.path[0])
    else:
        raise ZoogateError(f"one report at a time ({len(args.path)} given); to combine them: zoogate report merge "
                           "A.json B.json --out release.json")
    if args.failed:
        print(render_summary(report.summary))
        for record in report.failed:
            print()
            print(record.explain())
    else:
        print(render_report(report, width=None if args.full else 160))
    conflicts = report.summary.get("conflicts") or []
    for conflict in conflicts:
        print(f"conflict: {conflict}")
    if args.html:
        print(f"html: {write_html([report], args.html)}")
    if args.path[0] == "merge":
        print(f"merged report: {report.path}")
    return 1 if report.failed or report.run.get("problems") else 0
