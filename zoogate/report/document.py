"""The gate report as a JSON document: build it from records, write it atomically, load and validate it."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from zoogate.cache import new_file_mode
from zoogate.errors import ZoogateError
from zoogate.files import write_atomic
from zoogate.record import FAIL, GATE_KINDS, INCONCLUSIVE, STATUSES, GateRecord

SCHEMA = "zoogate.gate-report"
SCHEMA_VERSION = 1
DEFAULT_PATH = Path("reports") / "gate-report.json"


def summarize(records: Sequence[GateRecord]) -> dict:
    counts = dict.fromkeys(STATUSES, 0)
    by_gate = {g: dict.fromkeys(STATUSES, 0) for g in GATE_KINDS}
    for r in records:
        counts[r.status] += 1
        by_gate[r.gate][r.status] += 1
    return {"records": len(records), **counts, "by_gate": by_gate,
            "gates_covered": [g for g in GATE_KINDS if sum(by_gate[g].values())],
            "warnings": record_warnings(records)}


def record_warnings(records: Sequence[GateRecord]) -> list[str]:
    """Warnings the records carry (``details["warnings"]``, e.g. a host-bound live run), one per line, by record id."""
    return [f"{r.id}: {w}" for r in records for w in (r.details.get("warnings") or [])]


def build_report(records: Sequence[GateRecord], *, environment: dict | None = None, run: dict | None = None) -> dict:
    return {"schema": SCHEMA, "version": SCHEMA_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "run": run or {}, "environment": environment or {}, "summary": summarize(records),
            "records": [r.to_dict() for r in records]}


def check_writable(path: str | os.PathLike) -> Path:
    """Fail before a long run, not after it: the report's folder can be made and a file written in it."""
    path = Path(path)
    if path.is_dir():
        raise ZoogateError("is a folder, expected a .json file path", path)
    above = next(p for p in path.absolute().parents if p.exists())
    if not above.is_dir():
        raise ZoogateError(f"cannot write the gate report there: {above} is a file, not a folder", path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ZoogateError(f"cannot write the gate report there: {exc.strerror or exc}", path) from None
    return path


def write_report(report: dict, path: str | os.PathLike) -> Path:
    """Write the JSON atomically (a reader never sees half a report); parent folders are created."""
    path = Path(path)

    def write(fh) -> None:
        json.dump(report, fh, indent=1, allow_nan=True, default=str)
        fh.write("\n")

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_atomic(path, write, text=True, file_mode=new_file_mode(path.parent))
    except OSError as exc:
        raise ZoogateError(f"cannot write the gate report: {exc.strerror or exc}", path) from None


@dataclass
class GateReport:
    path: Path | None
    created: str
    run: dict
    environment: dict
    records: list[GateRecord]
    summary: dict = field(default_factory=dict)

    @property
    def failed(self) -> list[GateRecord]:
        return [r for r in self.records if r.status == FAIL]

    @property
    def inconclusive(self) -> list[GateRecord]:
        return [r for r in self.records if r.status == INCONCLUSIVE]


def parse_report(data: Any, where: str | os.PathLike | None = None) -> GateReport:
    """Validate a loaded JSON document; ZoogateError names the file and the first problem."""
    if not isinstance(data, dict):
        raise ZoogateError(f"not a gate report: expected a JSON object, got {type(data).__name__}", where)
    if data.get("schema") != SCHEMA:
        raise ZoogateError(f"not a gate report: schema is {data.get('schema')!r}, expected {SCHEMA!r}", where)
    if not isinstance(data.get("version"), int) or data["version"] > SCHEMA_VERSION:
        raise ZoogateError(f"gate report version {data.get('version')!r} is not supported (this zoogate reads "
                           f"up to {SCHEMA_VERSION})", where)
    raw = data.get("records")
    if not isinstance(raw, list):
        raise ZoogateError("records: missing or not a list", where)
    records = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ZoogateError(f"records[{i}]: expected an object, got {type(item).__name__}", where)
        missing = [k for k in ("gate", "check", "model", "status") if not isinstance(item.get(k), str)]
        if missing:
            raise ZoogateError(f"records[{i}]: missing or non-text field(s) {missing}", where)
        if item.get("bs") is not None and (not isinstance(item["bs"], int) or isinstance(item["bs"], bool)):
            raise ZoogateError(f"records[{i}].bs: expected an integer or null, got {item['bs']!r}", where)
        if not isinstance(item.get("details", {}), dict):
            raise ZoogateError(f"records[{i}].details: expected an object", where)
        try:
            records.append(GateRecord.from_dict(item))
        except (TypeError, ValueError) as exc:
            raise ZoogateError(f"records[{i}]: {exc}", where) from None
    for key in ("run", "environment"):
        if not isinstance(data.get(key, {}), dict):
            raise ZoogateError(f"{key}: expected an object", where)
    conflicts = (data.get("summary") or {}).get("conflicts") or [] if isinstance(data.get("summary"), dict) else []
    if not isinstance(conflicts, list) or not all(isinstance(c, str) for c in conflicts):
        raise ZoogateError("summary.conflicts: expected a list of strings", where)
    return GateReport(path=Path(where) if where else None, created=str(data.get("created", "?")),
                      run=data.get("run", {}), environment=data.get("environment", {}), records=records,
                      summary={**summarize(records), "conflicts": conflicts})


def load_report(path: str | os.PathLike) -> GateReport:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ZoogateError("gate report not found", path) from None
    except IsADirectoryError:
        raise ZoogateError("is a folder, expected a gate report JSON file", path) from None
    except UnicodeDecodeError:
        raise ZoogateError("not a gate report: not UTF-8 text", path) from None
    except OSError as exc:
        raise ZoogateError(f"cannot read: {exc.strerror or exc}", path) from None
    if not text.strip():
        raise ZoogateError("not a gate report: the file is empty", path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ZoogateError(f"not a gate report: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})",
                           path) from None
    return parse_report(data, path)
