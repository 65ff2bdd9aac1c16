"""`zoogate faults`: the fault matrix (planted fault -> gate that catches it) as the README's Markdown table."""

from __future__ import annotations

from zoogate import faults


def run(args) -> int:
    print(faults.markdown_table())
    return 0


def register(sub) -> None:
    p = sub.add_parser("faults", help="print the fault matrix (planted fault -> gate) as a Markdown table")
    p.set_defaults(func=run)
