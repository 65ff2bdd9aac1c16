"""The gate report: every GateRecord of a run, the environment it ran in, as a table, JSON and an fps plot.

- ``build_report(records, environment=..., run=...)`` -> the JSON document (``write_report`` saves it)
- ``load_report(path)`` -> GateReport (ZoogateError naming the file on anything malformed)
- ``render_table(records)`` / ``render_report(report)``: the terminal table ``zoogate report`` re-prints
- ``plot_fps(records, path)``: fps vs batch size per runner with the floors dashed (PIL, no matplotlib)
- ``diff_reports(old, new)``: what changed between two releases and which changes are regressions
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from zoogate.cache import new_file_mode
from zoogate.errors import ZoogateError
from zoogate.record import BLOCKING, FAIL, GATE_KINDS, INCONCLUSIVE, PASS, SKIP, STATUSES, GateRecord, fmt_value

SCHEMA = "zoogate.gate-report"
SCHEMA_VERSION = 1
DEFAULT_PATH = Path("reports") / "gate-report.json"
FPS_CHECKS = ("fps_floor", "fps_regression")
LOG_SCALE_SPAN = 30          # fps plot: a log y axis when the largest fps is this many times the smallest

# distribution names reported in the environment block (module name when it differs)
PACKAGES = ("torch", "torchvision", "timm", "onnxruntime", "onnx", "onnxscript", "numpy", "pillow", "pytest",
            "pytest-benchmark")
VENDOR_MODULES = ("ais_bench", "aclruntime", "acl", "vaststreamx", "tensorrt", "pycuda")


# ---------------------------------------------------------------- environment

def _dist_version(name: str) -> str | None:
    from zoogate.throughput import _version

    return _version(name) or _version(name.replace("-", "_"))


def _vendor_sdk(module: str) -> str | None:
    """Version of a vendor module without importing it; None when it is not installed. Never raises."""
    import importlib.util

    try:
        if importlib.util.find_spec(module) is None:
            return None
    except (ImportError, ValueError):
        return None
    try:
        return _dist_version(module) or "importable (version unknown)"
    except Exception:          # a broken vendor install must not break the report
        return "importable (version unknown)"


def _cann_version() -> str | None:
    home = os.environ.get("ASCEND_TOOLKIT_HOME")
    if not home:
        return None
    for name in ("version.cfg", "ascend_toolkit_install.info", "version.info"):
        try:
            text = Path(home, name).read_text(errors="replace")
        except OSError:
            continue
        m = re.search(r"version\s*[=:]\s*\[?([\w.\-]+)", text, re.I)
        if m:
            return m.group(1)
    return f"{home} (version file not found)"


def _devices() -> dict[str, str]:
    """Each backend's hardware (hardware.registry markers): what was found, or why it is absent."""
    out = {}
    try:
        from hardware import registry

        declared = list(registry.markers().values())
    except Exception as exc:          # detection must never fail the report
        return {"backends": f"unknown: {type(exc).__name__}: {exc}"}
    for marker in declared:
        try:
            ok, why = marker.detect()
            out[marker.device_name] = why if ok else f"absent: {why}"
        except Exception as exc:      # detection must never fail the report
            out[marker.device_name] = f"unknown: {type(exc).__name__}: {exc}"
    return out


def _ort_providers() -> list[str] | None:
    try:
        import onnxruntime

        return list(onnxruntime.get_available_providers())
    except Exception:
        return None


def default_seeds() -> dict[str, Any]:
    """The seeds the suite's generated data and weights come from (where those modules say)."""
    seeds: dict[str, Any] = {"pythonhashseed": os.environ.get("PYTHONHASHSEED")}
    try:
        import inspect

        from zoogate import weights

        seeds["weights_seed"] = inspect.signature(weights.load_model).parameters["seed"].default
        seeds["calibration"] = dict(getattr(weights, "CALIBRATION", {}))
    except Exception:          # another module's internals: report what can be read, never fail
        pass
    return seeds


def environment(*, seeds: dict | None = None) -> dict:
    """Versions, vendor SDKs, devices, host fingerprint, seeds. Lazy and never failing."""
    from zoogate import throughput

    try:
        fp = throughput.host_fingerprint()
        hid = throughput.host_id(fp)
    except Exception as exc:
        fp, hid = {"error": f"{type(exc).__name__}: {exc}"}, None
    import zoogate

    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "zoogate": zoogate.__version__,
        "packages": {name: _dist_version(name) for name in PACKAGES},
        "vendor_sdks": {**{m: _vendor_sdk(m) for m in VENDOR_MODULES}, "cann_toolkit": _cann_version(),
                        "onnxruntime_providers": _ort_providers()},
        "devices": {"cpu": fp.get("cpu"), **_devices()},
        "host_fingerprint": fp,
        "host_id": hid,
        "seeds": {**default_seeds(), **(seeds or {})},
    }


# ---------------------------------------------------------------- build / write / load

def summarize(records: Sequence[GateRecord]) -> dict:
    counts = dict.fromkeys(STATUSES, 0)
    by_gate = {g: dict.fromkeys(STATUSES, 0) for g in GATE_KINDS}
    for r in records:
        counts[r.status] += 1
        by_gate[r.gate][r.status] += 1
    return {"records": len(records), **counts, "by_gate": by_gate,
            "gates_covered": [g for g in GATE_KINDS if sum(by_gate[g].values())]}


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
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1, allow_nan=True, default=str)
            fh.write("\n")
        os.chmod(tmp, new_file_mode(path.parent))          # mkstemp made it 0600
        os.replace(tmp, path)
    except OSError as exc:
        raise ZoogateError(f"cannot write the gate report: {exc.strerror or exc}", path) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return path


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
    return GateReport(path=Path(where) if where else None, created=str(data.get("created", "?")),
                      run=data.get("run", {}), environment=data.get("environment", {}), records=records,
                      summary=summarize(records))


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


# ---------------------------------------------------------------- table

COLUMNS = ("status", "gate", "check", "model", "runner", "bs", "measured", "baseline", "tolerance", "source",
           "reason")
REASON_INDENT = "    -> "
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

    rows = [_row(r) for r in ordered(records)]
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
    for row in rows:
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
    return "\n".join(lines)


def render_summary(summary: dict) -> str:
    def count(c: dict, status: str) -> int:
        return c.get(status, 0)          # reports written before INCONCLUSIVE existed lack the key

    parts = [f"{g} " + "/".join(str(count(c, s)) for s in STATUSES)
             for g, c in summary["by_gate"].items() if sum(c.values())]
    totals = ", ".join(f"{count(summary, s)} {s}" for s in STATUSES)
    return (f"{summary['records']} gate records: {totals}"
            + (f"  ({'/'.join(STATUSES)} by gate: {', '.join(parts)})" if parts else ""))


def render_report(report: GateReport, *, width: int | None = 160) -> str:
    env = report.environment
    pk = env.get("packages", {})
    lines = [f"gate report {report.path or ''} created {report.created}",
             f"host {env.get('host_id', '?')} ({env.get('devices', {}).get('cpu', '?')}); python {env.get('python', '?')}; "
             + ", ".join(f"{k} {v}" for k, v in pk.items() if v and k in ("torch", "timm", "onnxruntime", "onnx")),
             render_summary(report.summary), "", render_table(report.records, width=width)]
    problems = report.run.get("problems") or []
    if problems:
        lines += ["", "run problems:"] + [f"  - {p}" for p in problems]
    return "\n".join(lines)


# ---------------------------------------------------------------- fps plot

@dataclass
class FpsSeries:
    model: str
    runner: str
    fps: dict[int, float] = field(default_factory=dict)
    floors: dict[str, dict[int, float]] = field(default_factory=dict)   # floor kind -> bs -> fps


def fps_series(records: Iterable[GateRecord]) -> dict[str, list[FpsSeries]]:
    """model -> one series per runner: measured fps per bs and the floors (documented / host baseline)."""
    series: dict[tuple[str, str], FpsSeries] = {}
    for r in records:
        if r.gate != "throughput" or r.check not in FPS_CHECKS or r.bs is None:
            continue
        s = series.setdefault((r.model, r.runner), FpsSeries(r.model, r.runner))
        measured = r.measured if isinstance(r.measured, (int, float)) else None
        if measured is None:
            measured = (r.details.get("measurement") or {}).get("fps")
        if isinstance(measured, (int, float)) and math.isfinite(measured):
            if r.check == "fps_floor" or r.bs not in s.fps:
                s.fps[r.bs] = float(measured)
        floor = r.details.get("floor")
        if isinstance(floor, (int, float)):
            kind = "documented floor" if r.check == "fps_floor" else "host-baseline floor"
            s.floors.setdefault(kind, {})[r.bs] = float(floor)
    out: dict[str, list[FpsSeries]] = defaultdict(list)
    for (model, _), s in series.items():
        if s.fps:
            out[model].append(s)
    return dict(out)


_COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207),
            (140, 86, 75), (227, 119, 194)]


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:           # Pillow < 10.1: bitmap font, fixed size
        return ImageFont.load_default()


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= mult * mag:
            return mult * mag
    return 10 * mag


def _fps_label(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.3g}"


def _dashed(draw, points: list[tuple[float, float]], fill, width: int = 2, dash: float = 9, gap: float = 6) -> None:
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        length = math.hypot(x1 - x0, y1 - y0)
        if length == 0:
            continue
        pos = 0.0
        while pos < length:
            end = min(pos + dash, length)
            draw.line([(x0 + (x1 - x0) * pos / length, y0 + (y1 - y0) * pos / length),
                       (x0 + (x1 - x0) * end / length, y0 + (y1 - y0) * end / length)], fill=fill, width=width)
            pos = end + gap


def plot_fps(records: Iterable[GateRecord], path: str | os.PathLike, *, title: str = "") -> Path | None:
    """One panel per model: fps vs batch size (log2 axis), a solid line per runner, its floors dashed.
    Returns None (and writes nothing) when the records hold no fps."""
    from PIL import Image, ImageDraw

    data = fps_series(records)
    if not data:
        return None
    W, PH = 1100, 460                      # image width, panel height
    L, R, T, B = 90, 320, 50, 60           # margins around each panel's plot area (legend on the right)
    img = Image.new("RGB", (W, PH * len(data) + (30 if title else 0)), "white")
    draw = ImageDraw.Draw(img)
    f_title, f_text, f_small = _font(18), _font(14), _font(12)
    top0 = 0
    if title:
        draw.text((W / 2, 8), title, fill="black", font=f_text, anchor="mt")
        top0 = 30
    for p, (model, series) in enumerate(sorted(data.items())):
        y0 = top0 + p * PH
        x_left, x_right, y_top, y_bottom = L, W - R, y0 + T, y0 + PH - B
        sizes = sorted({b for s in series for b in s.fps} | {b for s in series for f in s.floors.values() for b in f})
        values = [v for s in series for v in s.fps.values()] + \
                 [v for s in series for f in s.floors.values() for v in f.values()]
        positive = [v for v in values if v > 0] or [1.0]
        log_y = max(positive) / min(positive) > LOG_SCALE_SPAN    # runners orders of magnitude apart
        if log_y:
            y_lo = 10 ** math.floor(math.log10(min(positive)))
            y_max = 10 ** math.ceil(math.log10(max(positive) * 1.15))
            ticks = [m * 10 ** e for e in range(round(math.log10(y_lo)), round(math.log10(y_max)) + 1)
                     for m in (1, 2, 5) if y_lo <= m * 10 ** e <= y_max]
        else:
            y_lo = 0.0
            y_max = max(values) * 1.15 or 1.0
            step = _nice_step(y_max)
            y_max = math.ceil(y_max / step) * step
            ticks = [i * step for i in range(int(round(y_max / step)) + 1)]
        lo, hi = math.log2(min(sizes)), math.log2(max(sizes))

        def X(bs: float) -> float:
            if hi == lo:
                return (x_left + x_right) / 2
            return x_left + (math.log2(bs) - lo) / (hi - lo) * (x_right - x_left)

        def Y(v: float) -> float:
            if log_y:
                frac = (math.log10(max(v, y_lo)) - math.log10(y_lo)) / (math.log10(y_max) - math.log10(y_lo))
            else:
                frac = v / y_max
            return y_bottom - frac * (y_bottom - y_top)

        draw.text(((x_left + x_right) / 2, y0 + 14),
                  f"{model}: throughput vs batch size" + (" (log scale)" if log_y else ""), fill="black",
                  font=f_title, anchor="mt")
        # grid, y ticks
        for v in ticks:
            y = Y(v)
            draw.line([(x_left, y), (x_right, y)], fill=(225, 225, 225), width=1)
            draw.line([(x_left - 5, y), (x_left, y)], fill="black", width=1)
            draw.text((x_left - 8, y), f"{v:g}", fill="black", font=f_small, anchor="rm")
        for b in sizes:
            x = X(b)
            draw.line([(x, y_top), (x, y_bottom)], fill=(240, 240, 240), width=1)
            draw.line([(x, y_bottom), (x, y_bottom + 5)], fill="black", width=1)
            draw.text((x, y_bottom + 8), str(b), fill="black", font=f_small, anchor="mt")
        draw.rectangle([x_left, y_top, x_right, y_bottom], outline="black", width=1)
        draw.text(((x_left + x_right) / 2, y_bottom + 30), "batch size", fill="black", font=f_text, anchor="mt")
        label = Image.new("RGB", (160, 24), "white")
        ImageDraw.Draw(label).text((80, 12), "images/s", fill="black", font=f_text, anchor="mm")
        label = label.rotate(90, expand=True)
        img.paste(label, (14, int((y_top + y_bottom) / 2 - label.height / 2)))
        draw.text((x_right + 15, y_bottom + 8), "solid: measured (median step)\ndashed: floors", fill=(90, 90, 90),
                  font=f_small, anchor="la")
        # series
        legend: list[tuple[str, tuple, bool]] = []
        for i, s in enumerate(sorted(series, key=lambda s: s.runner)):
            colour = _COLOURS[i % len(_COLOURS)]
            for kind, floor in sorted(s.floors.items()):
                pts = [(X(b), Y(floor[b])) for b in sorted(floor)]
                if len(pts) == 1:        # a single bs: a short dashed bar around the point
                    pts = [(pts[0][0] - 30, pts[0][1]), (pts[0][0] + 30, pts[0][1])]
                _dashed(draw, pts, colour)
                legend.append((f"{s.runner} {kind}", colour, True))
            pts = [(X(b), Y(s.fps[b])) for b in sorted(s.fps)]
            if len(pts) > 1:
                draw.line(pts, fill=colour, width=3, joint="curve")
            for x, y in pts:
                draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour, outline="black")
            for b in sorted(s.fps):
                draw.text((X(b) + 6, Y(s.fps[b]) - 6), _fps_label(s.fps[b]), fill=colour, font=f_small, anchor="lb")
            legend.insert(len(legend) - len(s.floors), (f"{s.runner} measured", colour, False))
        ly = y_top
        for text, colour, dashed in legend:
            lx = x_right + 15
            if dashed:
                _dashed(draw, [(lx, ly + 7), (lx + 34, ly + 7)], colour, dash=7, gap=4)
            else:
                draw.line([(lx, ly + 7), (lx + 34, ly + 7)], fill=colour, width=3)
                draw.ellipse([lx + 13, ly + 3, lx + 21, ly + 11], fill=colour, outline="black")
            draw.text((lx + 42, ly + 7), text, fill="black", font=f_small, anchor="lm")
            ly += 22
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path


# ---------------------------------------------------------------- diff

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
