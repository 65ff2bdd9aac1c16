"""One self-contained HTML release page from one or more gate reports.

The page holds: the verdict; a matrix of model x (host, runner) x gate kind, each cell coloured by the worst
status of its records (FAIL, INCONCLUSIVE, PASS, SKIP) and naming the counts; every failing and inconclusive
record expanded with its explanation and numbers; the measured fps per host and device; the
fps-vs-batch-size plot (matplotlib, embedded as a PNG data URI); and the environment of each host. No script, no external file: it opens from disk or an
attachment. Cells carry ``data-model``, ``data-runner``, ``data-host``, ``data-gate`` and ``data-status``
so a browser test reads the matrix from the DOM.
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from zoogate.files import write_atomic
from zoogate.record import FAIL, GATE_KINDS, INCONCLUSIVE, PASS, SKIP, GateRecord
from zoogate.report.document import GateReport

WORST_FIRST = (FAIL, INCONCLUSIVE, PASS, SKIP)
COLOURS = {FAIL: "#d9534f", INCONCLUSIVE: "#f0ad4e", PASS: "#5cb85c", SKIP: "#c8c8c8"}


def host_of(report: GateReport) -> str:
    env = report.environment or {}
    return str(env.get("host_id") or env.get("hostname") or (report.path.stem if report.path else "host"))


def _plot_uri(records: Sequence[GateRecord]) -> str | None:
    from zoogate.report.plot import plot_fps

    with tempfile.TemporaryDirectory() as tmp:
        path = plot_fps(list(records), Path(tmp) / "fps.png", title="fps vs batch size")
        if path is None:
            return None
        return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def _cell(records: list[GateRecord]) -> tuple[str, str]:
    statuses = [r.status for r in records]
    worst = next(s for s in WORST_FIRST if s in statuses)
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in WORST_FIRST if s in statuses)
    return worst, counts


def render_html(reports: Sequence[GateReport], *, title: str = "zoogate release report") -> str:
    e = html.escape
    hosted = [(r.details.get("host") or host_of(rep), r) for rep in reports for r in rep.records]
    columns = sorted({(host, r.runner) for host, r in hosted})
    models = sorted({r.model for _, r in hosted})
    cells: dict[tuple, list[GateRecord]] = defaultdict(list)
    for host, r in hosted:
        cells[(r.model, host, r.runner, r.gate)].append(r)
    failing = [(h, r) for h, r in hosted if r.status in (FAIL, INCONCLUSIVE)]
    conflicts = [c for rep in reports for c in (rep.summary.get("conflicts") or [])]
    verdict = "FAIL" if conflicts or any(r.status == FAIL for _, r in hosted) else (
        "INCONCLUSIVE" if any(r.status == INCONCLUSIVE for _, r in hosted) else "PASS")
    out = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>", f"<title>{e(title)}</title>",
           "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
           "td,th{border:1px solid #999;padding:3px 6px;font-size:12px;vertical-align:top}"
           "th{background:#eee}td.cell{text-align:center;min-width:5em}pre{white-space:pre-wrap;font-size:11px}"
           + "".join(f"td.{s}{{background:{c}}}" for s, c in COLOURS.items()) + "</style></head><body>",
           f"<h1>{e(title)}</h1>",
           f"<p id='verdict' data-verdict='{verdict}'>Release verdict: <b>{verdict}</b> &mdash; {len(hosted)} gate "
           f"records from {len(reports)} report(s), {len(failing)} failing or inconclusive, {len(conflicts)} "
           "conflicting between hosts.</p>",
           ("<h2>Conflicts</h2><ul id='conflicts'>" + "".join(f"<li>{e(c)}</li>" for c in conflicts) + "</ul>"
            if conflicts else ""),
           "<h2>Matrix</h2><table id='matrix'><tr><th rowspan='2'>model</th><th rowspan='2'>gate</th>"
           + "".join(f"<th>{e(h)}</th>" for h, _ in columns) + "</tr><tr>"
           + "".join(f"<th>{e(run)}</th>" for _, run in columns) + "</tr>"]
    for model in models:
        gates = [g for g in GATE_KINDS if any((model, h, run, g) in cells for h, run in columns)]
        for k, gate in enumerate(gates):
            row = f"<tr>{f'<th rowspan={len(gates)}>{e(model)}</th>' if k == 0 else ''}<th>{e(gate)}</th>"
            for host, run in columns:
                recs = cells.get((model, host, run, gate))
                if not recs:
                    row += "<td></td>"
                    continue
                worst, counts = _cell(recs)
                row += (f"<td class='cell {worst}' data-model='{e(model)}' data-host='{e(host)}' "
                        f"data-runner='{e(run)}' data-gate='{gate}' data-status='{worst}' "
                        f"title='{e(counts)}'>{worst.upper()}<br><small>{e(counts)}</small></td>")
            out.append(row + "</tr>")
    out.append("</table>")
    out.append("<h2>Failures</h2>" + ("<p>none</p>" if not failing else ""))
    for host, r in failing:
        out.append(f"<details open class='failure' data-record='{e(r.id)}' data-status='{r.status}'><summary>"
                   f"<b>{r.status.upper()}</b> {e(r.id)} on {e(host)}</summary><pre>{e(r.explain())}</pre></details>")
    fps_rows = [(h, r) for h, r in hosted if r.gate == "throughput" and r.check == "fps_floor"
                and isinstance(r.measured, (int, float))]
    if fps_rows:
        out.append("<h2>Throughput by device</h2><table id='fps-by-device'><tr><th>model</th><th>runner</th>"
                   "<th>bs</th><th>host</th><th>device</th><th>img/s</th><th>status</th></tr>")
        for h, r in sorted(fps_rows, key=lambda hr: (hr[1].model, hr[1].runner, hr[1].bs or 0, hr[0])):
            device = r.details.get("device", "-")
            out.append(f"<tr data-device='{e(str(device))}'><td>{e(r.model)}</td><td>{e(r.runner)}</td>"
                       f"<td>{r.bs}</td><td>{e(h)}</td><td>{e(str(device))}</td><td>{r.measured:.1f}</td>"
                       f"<td class='{r.status}'>{r.status.upper()}</td></tr>")
        out.append("</table>")
    uri = _plot_uri([r for _, r in hosted])
    out.append("<h2>Throughput</h2>" + (f"<img id='fps-plot' alt='fps vs batch size' src='{uri}'>" if uri
                                         else "<p>no throughput records</p>"))
    out.append("<h2>Environment</h2>")
    for rep in reports:
        envs = (rep.environment or {}).get("hosts") or {host_of(rep): rep.environment or {}}   # merged: per host
        for host, env in envs.items():
            rows = "".join(f"<tr><th>{e(str(k))}</th><td>{e(_flat(v))}</td></tr>" for k, v in env.items())
            out.append(f"<h3>{e(host)}</h3><p>{e(str(rep.path or ''))} created {e(rep.created)}</p>"
                       f"<table class='environment' data-host='{e(host)}'>{rows}</table>")
    out.append("</body></html>")
    return "\n".join(out)


def _flat(value) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flat(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_flat(v) for v in value)
    return str(value)


def write_html(reports: Sequence[GateReport], path: str | os.PathLike, **kw) -> Path:
    page = render_html(reports, **kw)
    return write_atomic(path, lambda fh: fh.write(page), text=True, file_mode=0o644)

