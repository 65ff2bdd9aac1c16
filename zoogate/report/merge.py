"""Many hosts, one release report: ``merge_reports`` combines the gate reports of several hosts (an Ascend
host, a VACC host, a GPU host, CI) into one document. Each record is tagged with its host and hardware; a
record that two hosts gave different verdicts is a conflict, listed in ``summary.conflicts`` and
``run.problems`` (so the merged report fails the release whatever the statuses say)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import Sequence

from zoogate.record import SKIP
from zoogate.report.document import SCHEMA, SCHEMA_VERSION, GateReport, summarize
from zoogate.report.html import host_of


def _hardware(env: dict) -> str:
    devices = env.get("devices") or {}
    found = [f"{k}: {v}" for k, v in devices.items() if v and k != "cpu"]
    return "; ".join(found) or str(devices.get("cpu") or "cpu")


def _key(record) -> tuple:
    return (record.gate, record.check, record.model, record.runner, record.bs)


def merge_reports(reports: Sequence[GateReport]) -> dict:
    records, hosts, problems = [], {}, []
    statuses: dict[tuple, dict[str, str]] = defaultdict(dict)
    for rep in reports:
        host = host_of(rep)
        if host in hosts:                        # one host's reports of two runs stay apart
            stem = f"{host} ({rep.path.name})" if rep.path else host
            host, n = stem, 2
            while host in hosts:
                host, n = f"{stem} #{n}", n + 1
        hosts[host] = rep.environment or {}
        hardware = _hardware(rep.environment or {})
        for r in rep.records:
            r.details = {**r.details, "host": host, "hardware": hardware}
            records.append(r)
            if r.status != SKIP:                 # a skip on one host (no card there) is no verdict to disagree with
                statuses[_key(r)].setdefault(host, r.status)
        problems += [f"{host}: {p}" for p in (rep.run.get("problems") or [])]
    conflicts = [f"{gate}:{check}:{model}-{runner}" + (f"-bs{bs}" if bs is not None else "") + ": "
                 + ", ".join(f"{h} {s}" for h, s in by_host.items())
                 for (gate, check, model, runner, bs), by_host in statuses.items() if len(set(by_host.values())) > 1]
    summary = summarize(records)
    summary["conflicts"] = conflicts
    return {"schema": SCHEMA, "version": SCHEMA_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "run": {"merged_from": [str(rep.path) for rep in reports], "hosts": list(hosts),
                    "problems": problems + [f"conflicting verdicts: {c}" for c in conflicts]},
            "environment": {"hosts": hosts}, "summary": summary, "records": [r.to_dict() for r in records]}
