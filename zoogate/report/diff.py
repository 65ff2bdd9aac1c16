"""What changed between two gate reports, and which changes are regressions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zoogate import gates
from zoogate.record import BLOCKING, FAIL, GATE_KINDS, PASS, SKIP, GateRecord, fmt_value
from zoogate.report.document import GateReport
from zoogate.report.table import render_summary


@dataclass
class Change:
    key: str                 # record id: gate:check:model-runner-bsN
    gate: str
    check: str
    kind: str                # "status", "value", "new", "removed"
    old: Any
    new: Any
    regression: bool
    note: str

    def line(self) -> str:
        flag = "REGRESSION" if self.regression else "changed" if self.kind in ("status", "value") else self.kind
        return f"[{flag}] {self.key}: {fmt_value(self.old)} -> {fmt_value(self.new)}  {self.note}".rstrip()


@dataclass
class ReportDiff:
    changes: list[Change]
    coverage_lost: list[Change]
    old: GateReport
    new: GateReport

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.regression]


def _value_change(old: GateRecord, new: GateRecord) -> tuple[Any, Any, bool, str] | None:
    """The rule of the records' gate kind (its module's ``diff_value``), or None when the kind has none."""
    rule = getattr(gates.module(old.gate), "diff_value", None)
    return rule(old, new) if rule else None


def diff_reports(old: GateReport, new: GateReport) -> ReportDiff:
    """Changes between two reports. Regressions: a gate that passed (or was absent) now fails or is
    inconclusive (an inconclusive gate never passes a release); accuracy
    down by more than top1_abs_pp / top5_abs_pp; agreement max-abs up by more than the atol of the record's
    tolerance, or top-1 agreement down beyond it; fps down by more than fps_regression_rel (compared
    whether or not a floor was gated). Gates that passed before and are now skipped or gone are listed
    as coverage lost (a regression only where the caller says so: ``zoogate diff --strict``)."""
    a = {r.id: r for r in old.records}
    b = {r.id: r for r in new.records}
    changes: list[Change] = []
    lost: list[Change] = []
    for key, rn in b.items():
        ro = a.get(key)
        if ro is None:
            changes.append(Change(key, rn.gate, rn.check, "new", None, rn.status, rn.status in BLOCKING,
                                  f"new record: {rn.reason}" if rn.status in BLOCKING else "new record"))
            continue
        if ro.status != rn.status:
            if ro.status == PASS and rn.status == SKIP:
                lost.append(Change(key, rn.gate, rn.check, "status", ro.status, rn.status, False,
                                   f"now skipped: {rn.reason}"))
            else:
                changes.append(Change(key, rn.gate, rn.check, "status", ro.status, rn.status,
                                      rn.status in BLOCKING and ro.status not in (rn.status, FAIL),
                                      rn.reason if rn.status in BLOCKING else ""))
        if {ro.status, rn.status} <= {PASS, FAIL}:      # values of skipped or inconclusive gates say nothing
            value = _value_change(ro, rn)
            if value and value[0] != value[1]:
                changes.append(Change(key, rn.gate, rn.check, "value", *value))
    for key, ro in a.items():
        if key not in b:
            c = Change(key, ro.gate, ro.check, "removed", ro.status, None, False, "no longer in the report")
            (lost if ro.status == PASS else changes).append(c)
    for kind in GATE_KINDS:
        across = getattr(gates.module(kind), "diff_across", None)
        for key, x, y, regression, note in (across(old.records, new.records) if across else ()):
            changes.append(Change(key, kind, key.split(":")[1], "value", x, y, regression, note))
    return ReportDiff(changes=changes, coverage_lost=lost, old=old, new=new)


def render_diff(diff: ReportDiff) -> str:
    lines = [f"old: {diff.old.path} ({diff.old.created}): {render_summary(diff.old.summary)}",
             f"new: {diff.new.path} ({diff.new.created}): {render_summary(diff.new.summary)}", ""]
    for gate in GATE_KINDS:
        items = [c for c in diff.changes if c.gate == gate]
        if items:
            lines.append(f"{gate}:")
            lines += [f"  {c.line()}" for c in sorted(items, key=lambda c: (not c.regression, c.key))]
    if diff.coverage_lost:
        lines.append("coverage lost (passed before, skipped or missing now):")
        lines += [f"  {c.key}: {c.note}" for c in diff.coverage_lost]
    if not diff.changes and not diff.coverage_lost:
        lines.append("no changes")
    lines += ["", f"{len(diff.regressions)} regression(s)"]
    return "\n".join(lines)
