"""What changed between two gate reports, and which changes are regressions."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

from zoogate.errors import ZoogateError
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


def _tolerance_named(text: str, fallback: str):
    from zoogate import baselines

    m = re.match(r"[A-Za-z0-9_]+", text or "")
    for name in ([m.group(0)] if m else []) + [fallback]:
        try:
            return baselines.tolerance(name)
        except ZoogateError:
            continue
    return None


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _value_change(old: GateRecord, new: GateRecord) -> tuple[Any, Any, bool, str] | None:
    """(old, new, regression?, note) for the accuracy / agreement metric a record carries."""
    if old.gate == "accuracy" and old.check in ("top1", "top5", "top1_vs_reference"):
        a, b = _number(old.measured), _number(new.measured)
        if a is None or b is None:
            return None
        tol = _tolerance_named("", "top5_abs_pp" if old.check == "top5" else "top1_abs_pp")
        allowed = tol.value if tol else 0.0
        return a, b, b < a - allowed - 1e-12, (f"{b - a:+.3f} pp (a regression is a drop beyond {allowed:g} pp, "
                                               f"{tol.name if tol else '-'})")
    if old.gate == "agreement":
        a, b = _number(old.measured), _number(new.measured)
        ta, tb = _number(old.details.get("top1_agreement")), _number(new.details.get("top1_agreement"))
        tol = _tolerance_named(new.tolerance, "fp32_cross_backend")
        regression, notes = False, []
        if a is not None and b is not None:
            atol = tol.atol if tol and tol.atol is not None else 0.0
            regression |= b > a + atol
            notes.append(f"max abs {a:.3g} -> {b:.3g} (a regression is a rise beyond atol {atol:g} of "
                         f"{tol.name if tol else '-'})")
        if ta is not None and tb is not None:
            allowed = 1.0 - tol.top1_agreement_min if tol and tol.top1_agreement_min is not None else 0.0
            regression |= tb < ta - allowed - 1e-12
            notes.append(f"top-1 agreement {ta:.4f} -> {tb:.4f}")
        if not notes:
            return None
        return (a if a is not None else ta), (b if b is not None else tb), regression, "; ".join(notes)
    return None


def _fps_by_key(records: Iterable[GateRecord]) -> dict[str, float]:
    """model-runner-bsN -> measured host fps, from any throughput record carrying a measurement."""
    out = {}
    for r in records:
        fps = _number((r.details.get("measurement") or {}).get("fps")) if r.gate == "throughput" else None
        if fps is not None and r.bs is not None:
            out[f"{r.model}-{r.runner}-bs{r.bs}"] = fps
    return out


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
    fa, fb = _fps_by_key(old.records), _fps_by_key(new.records)
    tol = _tolerance_named("", "fps_regression_rel")
    rel = tol.value if tol else 0.0
    for key in sorted(set(fa) & set(fb)):
        x, y = fa[key], fb[key]
        if x > 0 and x != y:
            changes.append(Change(f"throughput:fps:{key}", "throughput", "fps", "value", x, y, y < x * (1 - rel),
                                  f"{y / x - 1:+.1%} img/s (a regression is a drop beyond {rel:.0%}, "
                                  f"fps_regression_rel)"))
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
