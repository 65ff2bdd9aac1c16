"""Read what the vendor command lines print and write: the ais_bench throughput line and *_summary.json.

Formats (../shared/reference/hardware.md, and ais_bench's summary writer):
- log line ``[INFO] throughput 1000*batchsize.mean(8)/NPU_compute_time.mean(5.3): 1509.4`` (newer
  releases print ``Throughput``); throughput = 1000 x batch size / mean NPU compute time (ms) = the
  number after the last colon.
- ``<output_dirname>_summary.json`` beside the result folder: ``NPU_compute_time``, ``H2D_latency``,
  ``D2H_latency`` each ``{min, max, mean, median, percentile(99%) | P99, count}`` (ms; ``count`` is
  missing in older releases), and ``throughput`` (images/s). Other keys (filesinfo, args, pid,
  npu_compute_time_list) are ignored. Result scorers must skip these files (``is_summary_file``).

Anything malformed raises ZoogateError naming the file (and the line or key).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from zoogate.errors import ZoogateError

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_THROUGHPUT = re.compile(r"\bthroughput\b", re.IGNORECASE)
_DETAIL = re.compile(rf"batchsize\.mean\(\s*({_NUMBER})\s*\)\s*/\s*NPU_compute_time\.mean\(\s*({_NUMBER})\s*\)",
                     re.IGNORECASE)
_PERCENTILE_KEY = re.compile(r"^(?:percentile\((\d+(?:\.\d+)?)%\)|P(\d+(?:\.\d+)?))$")
SUMMARY_SUFFIX = "_summary.json"


@dataclass(frozen=True)
class AisThroughput:
    """One ``throughput`` line of an ais_bench log."""

    fps: float
    batchsize: float | None          # batchsize.mean(...) when printed
    npu_compute_mean_ms: float | None
    line_no: int                     # 1-based line in the log
    line: str


@dataclass(frozen=True)
class LatencyStats:
    """min/max/mean/median/percentile of one timing list, in milliseconds."""

    min: float
    max: float
    mean: float
    median: float
    percentile: float | None
    percentile_level: float | None   # 99.0 for percentile(99%) / P99
    count: int | None


@dataclass(frozen=True)
class AisSummary:
    path: str
    npu_compute_time: LatencyStats
    h2d_latency: LatencyStats | None
    d2h_latency: LatencyStats | None
    throughput: float


def parse_throughput_line(line: str, *, line_no: int = 0,
                          path: str | os.PathLike | None = None) -> AisThroughput | None:
    """The throughput of one log line, or None when the line is not a throughput line."""
    text = line.strip()
    if not _THROUGHPUT.search(text) or ":" not in text:
        return None
    tail = text.rsplit(":", 1)[1].strip()
    where = f"line {line_no}: " if line_no else ""
    if not re.fullmatch(_NUMBER, tail):
        raise ZoogateError(f"{where}throughput line does not end in a number after its last colon: {text!r}", path)
    fps = float(tail)
    if not math.isfinite(fps) or fps < 0:
        raise ZoogateError(f"{where}throughput {tail} is not a non-negative finite number: {text!r}", path)
    detail = _DETAIL.search(text)
    bs, mean = (float(detail.group(1)), float(detail.group(2))) if detail else (None, None)
    return AisThroughput(fps=fps, batchsize=bs, npu_compute_mean_ms=mean, line_no=line_no, line=text)


def throughput_from_text(text: str, path: str | os.PathLike | None = None) -> AisThroughput:
    """The last throughput line in a log's text (a log may hold several runs; the last one counts)."""
    found = None
    for i, line in enumerate(text.splitlines(), start=1):
        parsed = parse_throughput_line(line, line_no=i, path=path)
        if parsed is not None:
            found = parsed
    if found is None:
        raise ZoogateError("no ais_bench throughput line (\"[INFO] throughput 1000*batchsize.mean(N)/"
                           "NPU_compute_time.mean(T): FPS\") in the log", path)
    return found


def read_throughput_log(path: str | os.PathLike) -> AisThroughput:
    """Parse an ais_bench log file (stdout saved with ``| tee log``)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ZoogateError(f"cannot read ais_bench log: {exc.strerror}", path) from None
    return throughput_from_text(text, path)


def _number(value, path, key: str, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ZoogateError(f"{key}: expected a finite number, got {value!r}", path)
    return float(value)


def _stats(raw, path, key: str) -> LatencyStats:
    if not isinstance(raw, dict):
        raise ZoogateError(f"{key}: expected an object with min/max/mean/median, got {type(raw).__name__}", path)
    values = {}
    for name in ("min", "max", "mean", "median"):
        if name not in raw:
            raise ZoogateError(f"{key}.{name}: missing", path)
        values[name] = _number(raw[name], path, f"{key}.{name}")
        if values[name] < 0:
            raise ZoogateError(f"{key}.{name}: negative time {values[name]}", path)
    if values["min"] > values["max"]:
        raise ZoogateError(f"{key}: min {values['min']} > max {values['max']}", path)
    level = pct = None
    for k, v in raw.items():
        m = _PERCENTILE_KEY.match(str(k))
        if m:
            level = float(m.group(1) or m.group(2))
            pct = _number(v, path, f"{key}.{k}")
    count = raw.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise ZoogateError(f"{key}.count: expected a non-negative integer, got {count!r}", path)
    return LatencyStats(values["min"], values["max"], values["mean"], values["median"], pct, level, count)


def summary_from_dict(data, path: str | os.PathLike | None = None) -> AisSummary:
    if not isinstance(data, dict):
        raise ZoogateError(f"expected a JSON object, got {type(data).__name__}", path)
    if "NPU_compute_time" not in data:
        raise ZoogateError("NPU_compute_time: missing (not an ais_bench summary?)", path)
    if "throughput" not in data:
        raise ZoogateError("throughput: missing", path)
    fps = _number(data["throughput"], path, "throughput")
    if fps < 0:
        raise ZoogateError(f"throughput: negative ({fps})", path)
    optional = {k: (_stats(data[k], path, k) if k in data else None) for k in ("H2D_latency", "D2H_latency")}
    return AisSummary(path=os.fspath(path) if path is not None else "",
                      npu_compute_time=_stats(data["NPU_compute_time"], path, "NPU_compute_time"),
                      h2d_latency=optional["H2D_latency"], d2h_latency=optional["D2H_latency"], throughput=fps)


def read_summary_json(path: str | os.PathLike) -> AisSummary:
    """Parse an ais_bench ``*_summary.json``."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ZoogateError(f"cannot read ais_bench summary: {exc.strerror}", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ZoogateError(f"not valid JSON: {exc}", path) from None
    return summary_from_dict(data, path)


def is_summary_file(path: str | os.PathLike) -> bool:
    """True for ais_bench's ``NAME_summary.json`` (result scorers skip these)."""
    return Path(path).name.endswith(SUMMARY_SUFFIX)


def find_summaries(folder: str | os.PathLike) -> list[Path]:
    """The ``*_summary.json`` files directly in folder (sorted)."""
    base = Path(folder)
    if not base.is_dir():
        raise ZoogateError("not a directory", base)
    return sorted(p for p in base.glob(f"*{SUMMARY_SUFFIX}") if p.is_file())
