"""Read what the vendor command lines print and write: the ais_bench throughput lines and *_summary.json.

Formats (ais_bench's logger and summary writer):
- log line ``[INFO] throughput 1000*batchsize.mean(8)/NPU_compute_time.mean(5.3): 1509.4`` (newer
  releases print ``Throughput``); throughput = 1000 x batch size / mean NPU compute time (ms) = the
  number after the last colon.
- multi-device runs (``--device 0,1``) add one line per device, ``i:<index> device_<id> throughput:<fps>
  start_time:<t0> end_time:<t1>`` (2023: a bare print; 2025: ``[INFO] `` in front and a run of spaces
  before start_time), then ``[INFO] summary throughput:<sum of the devices>``. The per-device lines are
  read as device throughputs (never the end_time as a throughput); a block ends with its summary line.
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
_DEVICE_LINE = re.compile(rf"^(?:\[INFO\]\s*)?i:(\d+)\s+device_(\d+)\s+throughput:\s*(\S*)\s+start_time:\s*(\S*)"
                          rf"\s+end_time:\s*(\S*)\s*$")
_DEVICE_HINT = re.compile(r"\bi:\s*\d+\s+device_", re.IGNORECASE)
_SUMMARY_LINE = re.compile(r"^(?:\[INFO\]\s*)?summary\s+throughput\s*:\s*(\S*)\s*$", re.IGNORECASE)
_SUM_RTOL = 1e-9            # the summary is the float sum of the device lines, in the queue's order
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
class DeviceThroughput:
    """One per-device line of a multi-device ais_bench run."""

    index: int                       # i: the subprocess index
    device: int                      # device_<id>
    fps: float
    start_time: float                # time.time() around the inference loop
    end_time: float
    line_no: int


@dataclass(frozen=True)
class AisLog:
    """The throughput lines of an ais_bench log: single-device runs and the last multi-device block."""

    runs: tuple[AisThroughput, ...]          # every "[INFO] throughput 1000*batchsize..." line, in order
    devices: tuple[DeviceThroughput, ...]    # the last complete multi-device block (empty: single device)
    summary_fps: float | None                # its "[INFO] summary throughput:" value
    summary_line_no: int | None
    notes: tuple[str, ...] = ()

    @property
    def multi_device(self) -> bool:
        return bool(self.devices)

    @property
    def summed_fps(self) -> float:
        return sum(d.fps for d in self.devices)

    @property
    def fps(self) -> float:
        """The run's throughput: the summary of a multi-device run, else the last throughput line."""
        return self.summary_fps if self.multi_device else self.runs[-1].fps


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


def _finite(text: str, what: str, where: str, line: str, path) -> float:
    if not re.fullmatch(_NUMBER, text):
        raise ZoogateError(f"{where}{what} {text[:30]!r} is not a number: {line[:160]!r}", path)
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ZoogateError(f"{where}{what} {text} is not a non-negative finite number: {line[:160]!r}", path)
    return value


def parse_device_line(line: str, *, line_no: int = 0, path: str | os.PathLike | None = None) -> DeviceThroughput | None:
    """A multi-device run's per-device line (2023 or 2025 form), or None for any other line."""
    text = line.strip()
    if not _DEVICE_HINT.search(text):
        return None
    where = f"line {line_no}: " if line_no else ""
    m = _DEVICE_LINE.match(text)
    if m is None:
        raise ZoogateError(f"{where}per-device line is not 'i:<index> device_<id> throughput:<fps> "
                           f"start_time:<t0> end_time:<t1>': {text[:160]!r}", path)
    fps = _finite(m.group(3), "device throughput", where, text, path)
    t0 = _finite(m.group(4), "start_time", where, text, path)
    t1 = _finite(m.group(5), "end_time", where, text, path)
    if t1 < t0:
        raise ZoogateError(f"{where}end_time {t1} before start_time {t0}: {text[:160]!r}", path)
    return DeviceThroughput(int(m.group(1)), int(m.group(2)), fps, t0, t1, line_no)


def parse_summary_line(line: str, *, line_no: int = 0, path: str | os.PathLike | None = None) -> float | None:
    """The value of ``[INFO] summary throughput:<sum>``, or None for any other line."""
    m = _SUMMARY_LINE.match(line.strip())
    if m is None:
        return None
    return _finite(m.group(1), "summary throughput", f"line {line_no}: " if line_no else "", line.strip(), path)


def parse_throughput_line(line: str, *, line_no: int = 0,
                          path: str | os.PathLike | None = None) -> AisThroughput | None:
    """The throughput of one single-device log line, or None when the line is not one (per-device and
    summary lines of a multi-device run are not: see parse_device_line, parse_summary_line)."""
    text = line.strip()
    if not _THROUGHPUT.search(text) or ":" not in text:
        return None
    if _DEVICE_HINT.search(text) or _SUMMARY_LINE.match(text):
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


def log_from_text(text: str, path: str | os.PathLike | None = None) -> AisLog:
    """Every throughput line of a log. A log may hold several runs: the last multi-device block (device
    lines closed by their summary line) counts; device lines without a summary after them are an
    interrupted run, and the summary must equal the sum of its devices."""
    runs: list[AisThroughput] = []
    block: list[DeviceThroughput] = []
    last: tuple[list[DeviceThroughput], float, int] | None = None
    for i, line in enumerate(text.splitlines(), start=1):
        device = parse_device_line(line, line_no=i, path=path)
        if device is not None:
            same = [d for d in block if d.index == device.index]
            if same:
                raise ZoogateError(f"line {i}: device line i:{device.index} again (first on line {same[0].line_no}) "
                                   "before the block's summary throughput line", path)
            block.append(device)
            continue
        summary = parse_summary_line(line, line_no=i, path=path)
        if summary is not None:
            if not block:
                raise ZoogateError(f"line {i}: summary throughput line without per-device lines before it", path)
            total = sum(d.fps for d in block)
            if not math.isclose(summary, total, rel_tol=_SUM_RTOL, abs_tol=1e-9):
                raise ZoogateError(f"line {i}: summary throughput {summary} is not the sum of its {len(block)} device "
                                   f"lines ({total})", path)
            last, block = (block, summary, i), []
            continue
        parsed = parse_throughput_line(line, line_no=i, path=path)
        if parsed is not None:
            runs.append(parsed)
    notes = []
    if block:
        if last is None:
            raise ZoogateError(f"{len(block)} per-device throughput line(s) from line {block[0].line_no} but no "
                               "'[INFO] summary throughput:' line after them (an interrupted multi-device run?)", path)
        notes.append(f"{len(block)} per-device line(s) from line {block[0].line_no} have no summary line after "
                     f"them; the block ending on line {last[2]} counts")
    if last is None and not runs:
        raise ZoogateError("no ais_bench throughput line (\"[INFO] throughput 1000*batchsize.mean(N)/"
                           "NPU_compute_time.mean(T): FPS\") in the log", path)
    if last is None:
        return AisLog(tuple(runs), (), None, None, tuple(notes))
    devices = sorted(last[0], key=lambda d: d.index)
    return AisLog(tuple(runs), tuple(devices), last[1], last[2], tuple(notes))


def read_log(path: str | os.PathLike) -> AisLog:
    """Parse an ais_bench log file (stdout saved with ``| tee log``): single- and multi-device runs."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ZoogateError(f"cannot read ais_bench log: {exc.strerror}", path) from None
    return log_from_text(text, path)


def throughput_from_text(text: str, path: str | os.PathLike | None = None) -> AisThroughput:
    """The last single-device throughput line in a log's text (a log may hold several runs; the last
    one counts). Multi-device logs: log_from_text (per device and summed)."""
    log = log_from_text(text, path)
    if not log.runs:
        raise ZoogateError("no single-device ais_bench throughput line (\"[INFO] throughput 1000*batchsize.mean(N)/"
                           "NPU_compute_time.mean(T): FPS\") in the log; it holds a multi-device run (read_log)", path)
    return log.runs[-1]


def read_throughput_log(path: str | os.PathLike) -> AisThroughput:
    """The last single-device throughput line of an ais_bench log file."""
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
