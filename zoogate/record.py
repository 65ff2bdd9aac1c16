"""GateRecord: what every gate returns, whatever front end (pytest or the zoogate CLI) called it."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from zoogate.gates import GATE_KINDS

PASS, FAIL, SKIP = "pass", "fail", "skip"
# the gate ran on the evidence given and that evidence cannot decide (too few images, a row without the
# metric, an informational row): never a pass for release gating
INCONCLUSIVE = "inconclusive"
STATUSES = (PASS, FAIL, INCONCLUSIVE, SKIP)
BLOCKING = (FAIL, INCONCLUSIVE)          # statuses that stop a release (INCONCLUSIVE unless allowed)


@dataclass(kw_only=True)
class GateRecord:
    gate: str                 # one of GATE_KINDS: a module of zoogate.gates
    check: str                # what was measured: "params_m", "top1", "fps", "max_abs", ...
    model: str
    status: str               # PASS / FAIL / INCONCLUSIVE / SKIP
    measured: Any = None
    baseline: Any = None
    source: str = ""          # where the baseline comes from ("000_...txt: 模型性能", "host baseline X")
    tolerance: str = ""       # the named tolerance applied, as text
    reason: str = ""          # one line: why it passed, failed or was skipped
    runner: str = "-"
    bs: int | None = None
    details: dict = field(default_factory=dict)   # e.g. the full comparator report

    def __post_init__(self) -> None:
        if self.gate not in GATE_KINDS:
            raise ValueError(f"unknown gate kind {self.gate!r}")
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    @property
    def inconclusive(self) -> bool:
        return self.status == INCONCLUSIVE

    @property
    def id(self) -> str:
        bs = f"-bs{self.bs}" if self.bs is not None else ""
        return f"{self.gate}:{self.check}:{self.model}-{self.runner}{bs}"

    def explain(self) -> str:
        lines = [f"[{self.status.upper()}] {self.id}",
                 f"  measured : {fmt_value(self.measured)}",
                 f"  baseline : {fmt_value(self.baseline)}" + (f"   (source: {self.source})" if self.source else ""),
                 f"  tolerance: {self.tolerance or '-'}",
                 f"  reason   : {self.reason}"]
        report = self.details.get("report_text")
        if report:
            lines.append("  " + report.replace("\n", "\n  "))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["details"] = {k: v for k, v in self.details.items() if k != "report_text"}
        return json.loads(json.dumps(d, default=jsonable))

    @classmethod
    def from_dict(cls, d: dict) -> "GateRecord":
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__ if k in d})


def jsonable(obj: Any) -> Any:
    """json.dumps default= for numpy scalars/arrays (and anything else, as text)."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def fmt_value(v: Any) -> str:
    """A measured or baseline value as the report and the reasons print it (6 significant digits)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v == 0 or 1e-3 <= abs(v) < 1e6:
            return f"{v:.6g}"
        return f"{v:.3e}"
    return str(v)


def within(gate: str, check: str, model: str, measured: float | None, baseline: float | None, *,
           abs_tol: float | None = None, rel_tol: float | None = None, tolerance_text: str = "",
           source: str = "", runner: str = "-", bs: int | None = None, unit: str = "",
           skip_reason: str = "") -> GateRecord:
    """The common two-sided check |measured - baseline| <= tol; SKIP when either side is missing."""
    if baseline is None or measured is None:
        return GateRecord(gate=gate, check=check, model=model, status=SKIP, measured=measured, baseline=baseline,
                          source=source, tolerance=tolerance_text,
                          reason=skip_reason or ("no documented value" if baseline is None else "nothing measured"),
                          runner=runner, bs=bs)
    allowed = abs_tol if abs_tol is not None else abs(baseline) * (rel_tol or 0.0)
    diff = measured - baseline
    rel = diff / baseline if baseline else math.inf
    ok = abs(diff) <= allowed + 1e-12
    reason = (f"{check} {measured:.6g}{unit} vs documented {baseline:.6g}{unit}: diff {diff:+.4g}{unit} "
              f"({rel:+.2%}), allowed +/-{allowed:.4g}{unit}")
    return GateRecord(gate=gate, check=check, model=model, status=PASS if ok else FAIL, measured=measured,
                      baseline=baseline, source=source, tolerance=tolerance_text, reason=reason, runner=runner, bs=bs,
                      details={"diff": diff, "rel_diff": rel, "allowed": allowed})


def at_least(gate: str, check: str, model: str, measured: float, floor: float, *, tolerance_text: str = "",
             source: str = "", runner: str = "-", bs: int | None = None, unit: str = "",
             baseline: float | None = None) -> GateRecord:
    """One-sided check measured >= floor (floor already includes the tolerance)."""
    ok = measured >= floor
    reason = f"{check} {measured:.6g}{unit} {'>=' if ok else '<'} floor {floor:.6g}{unit}"
    return GateRecord(gate=gate, check=check, model=model, status=PASS if ok else FAIL, measured=measured,
                      baseline=floor if baseline is None else baseline, source=source, tolerance=tolerance_text,
                      reason=reason, runner=runner, bs=bs, details={"floor": floor})
