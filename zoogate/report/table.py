"""The terminal table of gate records and the one-line summary."""

from __future__ import annotations

from typing import Iterable, Sequence

from zoogate.record import GATE_KINDS, STATUSES, GateRecord, fmt_value
from zoogate.report.document import GateReport


COLUMNS = ("status", "gate", "check", "model", "runner", "bs", "measured", "baseline", "tolerance", "source",
           "reason")
REASON_INDENT = "    -> "
WARNING_INDENT = "    !! "
_CAPS = {"check": 22, "model": 24, "runner": 18, "measured": 12, "baseline": 12, "tolerance": 28, "source": 34}


def _row(r: GateRecord) -> dict[str, str]:
    return {"status": r.status.upper(), "gate": r.gate, "check": r.check, "model": r.model, "runner": r.runner,
            "bs": "-" if r.bs is None else str(r.bs), "measured": fmt_value(r.measured),
            "baseline": fmt_value(r.baseline), "tolerance": r.tolerance or "-", "source": r.source or "-",
            "reason": (r.reason or "").replace("\n", " ")}


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "~"


def ordered(records: Iterable[GateRecord]) -> list[GateRecord]:
    """Gate kinds in their fixed order, the session's order within a kind."""
    rank = {g: i for i, g in enumerate(GATE_KINDS)}
    return sorted(records, key=lambda r: rank.get(r.gate, len(rank)))


def render_table(records: Sequence[GateRecord], *, width: int | None = 160) -> str:
    """A fixed-width table: per record one line of fields (cut to ``width``) and, indented below it, the
    reason (wrapped to ``width``, never cut). ``width=None``: nothing cut or wrapped."""
    import textwrap

    records = ordered(records)
    rows = [_row(r) for r in records]
    if not rows:
        return "(no gate records)"
    fields = COLUMNS[:-1]
    widths = {}
    for col in fields:
        natural = max(len(col), *(len(row[col]) for row in rows))
        widths[col] = natural if width is None else min(natural, _CAPS.get(col, natural))
    header = "  ".join(col.ljust(widths[col]) for col in fields).rstrip()
    lines = [header if width is None else _cut(header, width), REASON_INDENT + "reason",
             "-" * (len(header) if width is None else min(len(header), width))]
    for record, row in zip(records, rows):
        cells = [_cut(row[col], widths[col]).rjust(widths[col]) if col in ("bs", "measured", "baseline")
                 else _cut(row[col], widths[col]).ljust(widths[col]) for col in fields]
        line = "  ".join(cells).rstrip()
        lines.append(line if width is None else _cut(line, width))
        reason = row["reason"] or "-"
        if width is None:
            lines.append(REASON_INDENT + reason)
        else:
            lines += textwrap.wrap(reason, width=width, initial_indent=REASON_INDENT,
                                   subsequent_indent=" " * len(REASON_INDENT), break_on_hyphens=False) or [REASON_INDENT]
        for warning in record.details.get("warnings") or []:
            text = f"warning: {warning}"
            lines += [WARNING_INDENT + text] if width is None else textwrap.wrap(
                text, width=width, initial_indent=WARNING_INDENT, subsequent_indent=" " * len(WARNING_INDENT))
    return "\n".join(lines)


def render_summary(summary: dict) -> str:
    def count(c: dict, status: str) -> int:
        return c.get(status, 0)          # reports written before INCONCLUSIVE existed lack the key

    parts = [f"{g} " + "/".join(str(count(c, s)) for s in STATUSES)
             for g, c in summary["by_gate"].items() if sum(c.values())]
    totals = ", ".join(f"{count(summary, s)} {s}" for s in STATUSES)
    warnings = summary.get("warnings") or []
    return (f"{summary['records']} gate records: {totals}"
            + (f"  ({'/'.join(STATUSES)} by gate: {', '.join(parts)})" if parts else "")
            + (f"; {len(warnings)} warning(s)" if warnings else ""))


def render_report(report: GateReport, *, width: int | None = 160) -> str:
    env = report.environment
    pk = env.get("packages", {})
    lines = [f"gate report {report.path or ''} created {report.created}",
             f"host {env.get('host_id', '?')} ({env.get('devices', {}).get('cpu', '?')}); python {env.get('python', '?')}; "
             + ", ".join(f"{k} {v}" for k, v in pk.items() if v and k in ("torch", "timm", "onnxruntime", "onnx")),
             render_summary(report.summary), "", render_table(report.records, width=width)]
    warnings = report.summary.get("warnings") or []
    if warnings:
        lines += ["", "warnings:"] + [f"  - {w}" for w in warnings]
    problems = report.run.get("problems") or []
    if problems:
        lines += ["", "run problems:"] + [f"  - {p}" for p in problems]
    return "\n".join(lines)
