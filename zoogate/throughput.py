"""Throughput: measure a runner per (model, runner, batch size) and gate the numbers.

Measurement: untimed warm-up steps, then timed steps until BOTH a minimum count and a minimum duration
are reached (settings in baselines/tolerances_throughput.toml, recorded with every result). Each step is
the host wall time of ``runner.infer(batch)`` over real preprocessed batches rotated between steps;
device time is kept beside it where the runner reports one (``runner.timing.device_s``, ais_bench).
Throughput = batch size / MEDIAN step time; latency p50/p90/p99 of the same steps.

Gates (each returns a GateRecord, gate "throughput"):
- ``fps_floor_gate``       documented fps of a baseline row minus ``fps_floor_rel`` (Ascend 310P3 table)
- ``fps_regression_gate``  a host baseline saved with --save-baseline, minus ``fps_regression_rel``
- ``anti_caching_gate``    MLPerf TEST04: one batch repeated may not run > ``anti_caching_rel`` faster
                           than never-repeated batches (a runner that memoises results fails)
- ``harness_overhead_gate`` suite fps / bare ``InferenceSession.run`` fps >= ``harness_overhead_min_ratio``

The last two compare two ways of running in interleaved pairs (ABBA), adding pairs until the limit lies
outside a distribution-free confidence interval of the median pair statistic; a host too noisy to decide
within the time allowed gives SKIP with the interval and the host load, never a verdict by chance.

Host baselines reuse pytest-benchmark's storage: ``FileStorage`` (``<dir>/<host id>/NNNN_<name>.json``,
numbered saves, globbing, loading), its ``Stats`` (the saved statistics) and ``PercentageRegressionCheck``
(the regression decision on the median step time). The files are pytest-benchmark JSON, so
``pytest-benchmark --storage file://<dir> list|compare`` reads them too.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from zoogate import baselines
from zoogate.errors import ZoogateError
from zoogate.identity import BuildIdentity, describe_differences, differences, of_runner
from zoogate.record import FAIL, PASS, SKIP, GateRecord

GATE = "throughput"
STORAGE_ENV = "ZOOGATE_HOST_BASELINES"
BENCH_GROUP = "zoogate-throughput"

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- settings

_SETTING_TOLERANCES = {            # field -> tolerance name; env override ZOOGATE_THROUGHPUT_<FIELD>
    "warmup_steps": "throughput_warmup_steps",
    "min_steps": "throughput_min_steps",
    "min_duration_s": "throughput_min_duration_s",
    "rotation": "throughput_rotation_batches",
    "pairs_min": "throughput_pairs_min",
    "pairs_max": "throughput_pairs_max",
    "pairs_max_duration_s": "throughput_pairs_max_duration_s",
    "confidence": "throughput_decision_confidence",
}
_INT_FIELDS = ("warmup_steps", "min_steps", "rotation", "pairs_min", "pairs_max")


@dataclass(frozen=True)
class MeasureSettings:
    """How long to measure. ``from_baselines()`` reads the named values (and their env overrides)."""

    warmup_steps: int
    min_steps: int
    min_duration_s: float
    rotation: int                 # distinct batches cycled in the fps measurement
    pairs_min: int                # interleaved pairs (anti-caching, harness overhead): at least ...
    pairs_max: int                # ... at most ...
    pairs_max_duration_s: float   # ... and no longer than this once pairs_min are done
    confidence: float             # stop adding pairs when the limit is outside this interval of the median

    def __post_init__(self) -> None:
        if (self.warmup_steps < 0 or self.min_steps < 1 or self.min_duration_s < 0 or self.rotation < 1
                or not 1 <= self.pairs_min <= self.pairs_max or self.pairs_max_duration_s < 0
                or not 0 < self.confidence < 1):
            raise ZoogateError(f"throughput settings out of range: {self}")

    @staticmethod
    def env_name(field_name: str) -> str:
        return f"ZOOGATE_THROUGHPUT_{field_name.upper()}"

    @classmethod
    def from_baselines(cls, **overrides: Any) -> "MeasureSettings":
        values: dict[str, Any] = {}
        for name, tol_name in _SETTING_TOLERANCES.items():
            env = cls.env_name(name)
            raw = os.environ.get(env)
            if raw is not None:
                try:
                    values[name] = float(raw)
                except ValueError:
                    raise ZoogateError(f"environment {env}={raw!r}: expected a number") from None
            else:
                values[name] = baselines.tolerance(tol_name).value
        values.update(overrides)
        return cls(**{k: int(v) if k in _INT_FIELDS else float(v) for k, v in values.items()})

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- batches

def split_batches(data: np.ndarray, bs: int) -> list[np.ndarray]:
    """Split N preprocessed images into N // bs contiguous batches (N must be a multiple of bs)."""
    if data.ndim != 4 or data.shape[0] < bs or data.shape[0] % bs:
        raise ValueError(f"need a multiple of bs={bs} images as NCHW, got shape {data.shape}")
    return [np.array(data[i:i + bs], dtype=np.float32, order="C") for i in range(0, data.shape[0], bs)]


def window_batches(pool: np.ndarray, bs: int) -> list[np.ndarray]:
    """Never-repeated batches from a pool of P images: windows pool[j : j + bs], j = 0 .. P - bs
    (P - bs + 1 batches, no two equal as long as the pool's images differ)."""
    if pool.ndim != 4 or pool.shape[0] < bs:
        raise ValueError(f"need at least bs={bs} images as NCHW, got shape {pool.shape}")
    return [np.array(pool[j:j + bs], dtype=np.float32, order="C") for j in range(pool.shape[0] - bs + 1)]


def _check_batches(batches: Sequence[np.ndarray]) -> int:
    if not batches:
        raise ValueError("no batches to measure with")
    shapes = {b.shape for b in batches}
    if len(shapes) != 1:
        raise ValueError(f"batches of different shapes: {sorted(shapes)}")
    return int(batches[0].shape[0])


# ---------------------------------------------------------------- measurement

def timed_step(runner, batch: np.ndarray) -> tuple[float, float | None]:
    """One suite step: host wall seconds of ``runner.infer(batch)``, and the device seconds it reported."""
    n_dev = len(runner.timing.device_s)
    t0 = time.perf_counter()
    runner.infer(batch)
    host = time.perf_counter() - t0
    device = runner.timing.device_s[-1] if len(runner.timing.device_s) > n_dev else None
    return host, device


def _percentiles_ms(values: Sequence[float]) -> dict[str, float]:
    p50, p90, p99 = np.percentile(np.asarray(values, dtype=np.float64), [50, 90, 99]) * 1e3
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99)}


@dataclass
class Measurement:
    """Timed steps of one (model, runner, bs). fps comes from the median step."""

    model: str
    runner: str
    bs: int
    step_s: list[float]
    device_s: list[float]
    settings: MeasureSettings
    distinct_batches: int
    duration_s: float
    when: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    identity: BuildIdentity | None = None     # the build measured (artifact, runner options, precision)

    @property
    def key(self) -> str:
        return bench_key(self.model, self.runner, self.bs)

    @property
    def steps(self) -> int:
        return len(self.step_s)

    @property
    def median_s(self) -> float:
        return statistics.median(self.step_s)

    @property
    def fps(self) -> float:
        return self.bs / self.median_s

    @property
    def device_fps(self) -> float | None:
        return self.bs / statistics.median(self.device_s) if self.device_s else None

    @property
    def latency(self) -> dict[str, float]:
        return _percentiles_ms(self.step_s)

    @property
    def gated_fps(self) -> tuple[float, str]:
        """The fps a documented floor is compared with: device time where the runner reports it
        (ais_bench's throughput line is 1000 x bs / NPU compute time), host wall time otherwise."""
        if self.device_fps is not None:
            return self.device_fps, "device time"
        return self.fps, "host wall time"

    def stats(self) -> dict:
        """pytest-benchmark's statistics of the step times (the fields its storage and compare use)."""
        from pytest_benchmark.stats import Stats

        stats = Stats()
        for s in self.step_s:
            stats.update(s)
        return {**stats.as_dict(), "iterations": 1}        # one step per round

    def summary(self) -> dict:
        """Everything the report and a saved host baseline keep (not the raw steps: a fast runner takes
        thousands)."""
        out = {"model": self.model, "runner": self.runner, "bs": self.bs, "fps": self.fps,
               "device_fps": self.device_fps, "median_step_ms": self.median_s * 1e3, "steps": self.steps,
               "duration_s": self.duration_s, "distinct_batches": self.distinct_batches,
               "settings": self.settings.to_dict(), "when": self.when, **self.latency, "stats": self.stats(),
               "host_load_1min": _load_average(), "identity": self.identity.to_dict() if self.identity else None}
        if self.device_s:
            out["device_p50_ms"] = float(np.percentile(self.device_s, 50) * 1e3)
        return out


def _load_average() -> float | None:
    """The host's 1-minute load average while measuring: a number far above the CPU count explains noise."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def measure(
    runner, batches: Sequence[np.ndarray], *, model: str, settings: MeasureSettings | None = None
) -> Measurement:
    """Warm up, then time steps over ``batches`` in rotation until min_steps AND min_duration_s are met."""
    settings = settings or MeasureSettings.from_baselines()
    bs = _check_batches(batches)
    k = len(batches)
    for i in range(settings.warmup_steps):
        runner.infer(batches[i % k])
    runner.timing.clear()
    step_s: list[float] = []
    device_s: list[float] = []
    start = time.perf_counter()
    i = 0
    while len(step_s) < settings.min_steps or time.perf_counter() - start < settings.min_duration_s:
        host, device = timed_step(runner, batches[i % k])
        step_s.append(host)
        if device is not None:
            device_s.append(device)
        i += 1
    duration = time.perf_counter() - start
    return Measurement(model=model, runner=runner.name, bs=bs, step_s=step_s, device_s=device_s,
                       settings=settings, distinct_batches=k, duration_s=duration,
                       identity=of_runner(runner, model=model))


def median_interval(values: Sequence[float], confidence: float) -> tuple[float, float]:
    """Distribution-free interval for the median: order statistics x_(k) .. x_(n-k+1) with the largest k
    whose two binomial tails P(Binom(n, 1/2) <= k-1) stay within (1 - confidence) / 2 each."""
    xs = sorted(values)
    n = len(xs)
    alpha_half = (1.0 - confidence) / 2
    k, tail = 0, 0.0
    while k < n // 2:
        tail += math.comb(n, k) / 2.0 ** n          # P(B <= k)
        if tail > alpha_half:
            break
        k += 1
    if k == 0:                                      # too few pairs for this confidence: no interval yet
        return -math.inf, math.inf
    return xs[k - 1], xs[n - k]


@dataclass
class PairedTimes:
    """Interleaved timings of two ways of running the same work, and the per-pair statistic gated."""

    a: str
    b: str
    a_s: list[float]
    b_s: list[float]
    statistic: str                  # what ``values`` hold, e.g. "bare_s / suite_s"
    values: list[float]             # the statistic per pair
    limit: float                    # the tolerance the median is held against
    confidence: float
    decided: bool                   # the limit lay outside the median's interval when pairs stopped
    duration_s: float

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def interval(self) -> tuple[float, float]:
        return median_interval(self.values, self.confidence)

    def summary(self) -> dict:
        lo, hi = self.interval
        return {
            f"{self.a}_median_ms": statistics.median(self.a_s) * 1e3,
            f"{self.b}_median_ms": statistics.median(self.b_s) * 1e3,
            "pairs": len(self.values),
            "statistic": self.statistic,
            "median": self.median,
            "interval": [v if math.isfinite(v) else None for v in (lo, hi)],
            "confidence": self.confidence,
            "decided": self.decided,
            "per_pair": [round(v, 5) for v in self.values],
            "duration_s": self.duration_s,
            "host_load_1min": _load_average(),
        }

    def verdict_note(self) -> str:
        lo, hi = self.interval
        if self.decided:
            return f"{self.confidence:.0%} interval [{lo:.4g}, {hi:.4g}] from {len(self.values)} interleaved pairs"
        return (f"inconclusive after {len(self.values)} interleaved pairs ({self.duration_s:.1f} s): the "
                f"{self.confidence:.0%} interval [{lo:.4g}, {hi:.4g}] contains the limit {self.limit:g}; host load "
                f"{_load_average()} on {os.cpu_count()} CPUs. Rerun on an idle host, or allow more time with "
                f"{MeasureSettings.env_name('pairs_max_duration_s')}=SECONDS")

    def status(self, ok: bool) -> str:
        """PASS/FAIL where the interval decided; SKIP (with verdict_note saying why) where the host was too
        noisy to tell within the time allowed: a verdict by a coin flip would make the gate flaky."""
        if not self.decided:
            return SKIP
        return PASS if ok else FAIL


def interleave(run_a: Callable[[int], float], run_b: Callable[[int], float], *,
               statistic: Callable[[float, float], float], statistic_text: str, limit: float,
               settings: MeasureSettings, max_pairs: int | None = None, a: str = "a", b: str = "b") -> PairedTimes:
    """Run pairs, A then B on even pairs and B then A on odd ones (ABBA: a drift in host load between
    the halves of a pair cancels over pairs), until ``settings.pairs_min`` pairs are done AND the limit
    lies outside the median's interval, or ``pairs_max`` / ``pairs_max_duration_s`` is reached."""
    cap = min(settings.pairs_max, max_pairs or settings.pairs_max)
    a_s: list[float] = []
    b_s: list[float] = []
    values: list[float] = []
    decided = False
    start = time.perf_counter()
    for i in range(cap):
        if i % 2 == 0:
            ta = run_a(i)
            tb = run_b(i)
        else:
            tb = run_b(i)
            ta = run_a(i)
        a_s.append(ta)
        b_s.append(tb)
        values.append(statistic(ta, tb))
        if len(values) >= settings.pairs_min:
            lo, hi = median_interval(values, settings.confidence)
            decided = not lo <= limit <= hi
            if decided or time.perf_counter() - start >= settings.pairs_max_duration_s:
                break
    return PairedTimes(a, b, a_s, b_s, statistic_text, values, limit, settings.confidence, decided,
                       time.perf_counter() - start)


def measure_anti_caching(runner, varied: Sequence[np.ndarray], repeated: np.ndarray, *,
                         settings: MeasureSettings | None = None) -> PairedTimes:
    """Time never-repeated batches (side "varied") against one batch repeated (side "repeated").

    Pair i runs ``varied[i]``, so there are at most ``len(varied)`` pairs; none of them may equal
    ``repeated`` or each other: a runner that memoises results by input can then hit its cache only on
    the repeated side (MLPerf TEST04-A vs TEST04-B). Statistic per pair: varied_s / repeated_s - 1.
    """
    settings = settings or MeasureSettings.from_baselines()
    _check_batches([*varied, repeated])
    if len(varied) < settings.pairs_min:
        raise ValueError(f"anti-caching needs at least {settings.pairs_min} never-repeated batches, got {len(varied)}")
    for _ in range(max(settings.warmup_steps, 1)):     # also the runner's first sight of the repeated batch
        runner.infer(repeated)
    return interleave(lambda i: timed_step(runner, repeated)[0], lambda i: timed_step(runner, varied[i])[0],
                      statistic=lambda rep, var: var / rep - 1.0, statistic_text="varied_s / repeated_s - 1",
                      limit=baselines.tolerance("anti_caching_rel").value, settings=settings,
                      max_pairs=len(varied), a="repeated", b="varied")


def bare_onnxruntime_session(onnx_path: str | os.PathLike, providers: Sequence[str] | None = None):
    """A default InferenceSession, nothing configured (for runners that do not expose their own)."""
    import onnxruntime as ort

    return ort.InferenceSession(os.fspath(onnx_path), providers=list(providers or ["CPUExecutionProvider"]))


def measure_harness_overhead(runner, onnx_path: str | os.PathLike, batches: Sequence[np.ndarray], *,
                             settings: MeasureSettings | None = None, session=None) -> PairedTimes:
    """Interleave the suite's step (``timed_step(runner, batch)``, exactly what ``measure`` times) with a
    bare ``session.run(None, feed)`` on the same ONNX model and the same batch.

    The bare side uses the runner's own InferenceSession where it has one (``runner.session``): two
    sessions on one host keep two intra-op thread pools whose spinning threads slow each other by
    a varying amount (seen: 4x on 2 cores), which would swamp a 2 % limit. With one session the only
    difference between the sides is the harness path. Statistic per pair: bare_s / suite_s (= suite fps
    / bare fps).
    """
    settings = settings or MeasureSettings.from_baselines()
    _check_batches(batches)
    if session is None:
        session = getattr(runner, "session", None)
        if not hasattr(session, "run"):
            session = bare_onnxruntime_session(onnx_path)
    feed_name = session.get_inputs()[0].name
    k = len(batches)

    def bare(i: int) -> float:
        feed = {feed_name: batches[i % k]}
        t0 = time.perf_counter()
        session.run(None, feed)
        return time.perf_counter() - t0

    for i in range(max(settings.warmup_steps, 1)):
        runner.infer(batches[i % k])
        session.run(None, {feed_name: batches[i % k]})
    return interleave(bare, lambda i: timed_step(runner, batches[i % k])[0],
                      statistic=lambda bare_s, suite_s: bare_s / suite_s, statistic_text="bare_s / suite_s",
                      limit=baselines.tolerance("harness_overhead_min_ratio").value, settings=settings,
                      a="bare", b="suite")


# ---------------------------------------------------------------- gates

def _record(check: str, m_model: str, runner: str, bs: int, status: str, measured, baseline, source: str,
            tolerance: str, reason: str, details: dict) -> GateRecord:
    return GateRecord(
        gate=GATE,
        check=check,
        model=m_model,
        status=status,
        measured=measured,
        baseline=baseline,
        source=source,
        tolerance=tolerance,
        reason=reason,
        runner=runner,
        bs=bs,
        details=details,
    )


def documented_fps(model: str, runner: str, bs: int, row_id: str | None = None):
    """(fps or None, the row, why not) for a model's documented throughput row of this runner."""
    mb = baselines.model(model)
    if row_id not in (None, "reference"):
        row = mb.row(row_id)
        rows = [row]
    else:
        rows = [r for r in mb.rows if r.runner == runner and r.fps and not r.informational]
    if not rows:
        return None, None, (f"{mb.file} has no throughput row for {model} on runner {runner!r}; a host without "
                            "documented floors records its own with --save-baseline NAME and gates later runs "
                            "with --compare-baseline NAME")
    row = rows[0]
    if bs not in row.fps:
        return None, row, (f"{mb.file}: row {row.id} documents fps only at bs {sorted(row.fps)}, not bs {bs} "
                           f"(pass --bs {','.join(str(b) for b in sorted(row.fps))})")
    return row.fps[bs], row, ""


def fps_floor_gate(m: Measurement, *, row_id: str | None = None) -> GateRecord:
    """Measured fps >= documented fps x (1 - fps_floor_rel); SKIP where no row documents this bs."""
    tol = baselines.tolerance("fps_floor_rel")
    fps_doc, row, why_not = documented_fps(m.model, m.runner, m.bs, row_id)
    details = {"measurement": m.summary()}
    if fps_doc is None:
        return _record("fps_floor", m.model, m.runner, m.bs, SKIP, m.fps, None, "", str(tol), why_not, details)
    floor = fps_doc * (1 - tol.value)
    measured, basis = m.gated_fps
    ok = measured >= floor
    details.update(floor=floor, basis=basis, row=row.id)
    reason = (f"{measured:.1f} img/s ({basis}, median of {m.steps} steps) {'>=' if ok else '<'} floor {floor:.1f} "
              f"= documented {fps_doc:g} x (1 - {tol.value:g}) [{row.hardware}]")
    return _record("fps_floor", m.model, m.runner, m.bs, PASS if ok else FAIL, measured, fps_doc,
                   f"{row.source} (row {row.id})", str(tol), reason, details)


def anti_caching_gate(model: str, runner: str, bs: int, times: PairedTimes) -> GateRecord:
    """A repeated batch may run at most anti_caching_rel faster than never-repeated ones (median pair)."""
    tol = baselines.tolerance("anti_caching_rel")
    speedup = times.median                      # varied_s / repeated_s - 1
    ok = speedup <= tol.value
    reason = (f"a repeated batch ran {speedup:+.1%} faster than never-repeated ones, allowed {tol.value:.0%} "
              f"({times.verdict_note()})" + ("" if ok or not times.decided else
                                             "; the runner appears to cache results by input"))
    return _record("anti_caching", model, runner, bs, times.status(ok), speedup, tol.value,
                   "MLPerf inference TEST04 (a repeated sample must not run faster)", str(tol), reason, times.summary())


def harness_overhead_gate(model: str, runner: str, bs: int, times: PairedTimes) -> GateRecord:
    """suite fps / bare InferenceSession.run fps (median over pairs of bare_s / suite_s) >= the minimum."""
    tol = baselines.tolerance("harness_overhead_min_ratio")
    ratio = times.median
    ok = ratio >= tol.value
    summary = times.summary()
    summary.update(suite_fps=bs / statistics.median(times.b_s), bare_fps=bs / statistics.median(times.a_s))
    reason = (f"suite/bare throughput ratio {ratio:.4f} {'>=' if ok else '<'} {tol.value:g}: suite "
              f"{summary['suite_fps']:.2f} img/s, bare InferenceSession.run {summary['bare_fps']:.2f} img/s "
              f"({times.verdict_note()})")
    return _record("harness_overhead", model, runner, bs, times.status(ok), ratio, tol.value,
                   "bare onnxruntime InferenceSession.run loop, same model and batch, same run",
                   str(tol), reason, summary)


# ---------------------------------------------------------------- host baselines

def bench_key(model: str, runner: str, bs: int) -> str:
    return f"{model}-{runner}-bs{bs}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=None)
def _version(module: str) -> str | None:
    """Installed version of the distribution providing ``module`` (onnxruntime may come as onnxruntime-gpu,
    onnxruntime-cann, ...), without importing it."""
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        pass
    dists = metadata.packages_distributions().get(module, [])
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def host_fingerprint() -> dict:
    """What makes fps on this host comparable with a saved run: CPU, cores, libraries, thread counts."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    fp = {"system": platform.system(), "machine": platform.machine(), "cpu": _cpu_model(),
          "cpu_count": os.cpu_count(), "usable_cpus": usable,
          "python": ".".join(platform.python_version_tuple()[:2]),
          "torch": _version("torch"), "onnxruntime": _version("onnxruntime"), "numpy": _version("numpy")}
    try:
        import torch

        fp["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return fp


def host_id(fingerprint: dict | None = None) -> str:
    """A folder name for the fingerprint: readable prefix + hash of the whole fingerprint."""
    fp = fingerprint or host_fingerprint()
    digest = hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:10]
    return f"{fp['system']}-{fp['machine']}-{fp['usable_cpus']}cpu-{digest}"


def default_storage() -> Path:
    env = os.environ.get(STORAGE_ENV)
    if env:
        return Path(env)
    from zoogate import cache

    return cache.root() / "host-baselines"


class _StorageLog:
    """The logger pytest-benchmark's FileStorage expects; keeps warnings so a bad file becomes an error."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def info(self, text: str, **_: Any) -> None:
        log.info(text)

    def warning(self, text: str, **_: Any) -> None:
        self.warnings.append(str(text))


def _storage(directory: str | os.PathLike | None, fingerprint: dict):
    from pytest_benchmark.storage.file import FileStorage

    logger = _StorageLog()
    return FileStorage(Path(directory) if directory else default_storage(), logger,
                       default_machine_id=host_id(fingerprint)), logger


def _check_name(name: str) -> None:
    if not name or any(c in name for c in "/\\*?[]") or name.startswith("."):
        raise ZoogateError(f"baseline name {name!r}: use letters, digits, '-', '_' and '.'")


def _benchmark_entry(summary: dict) -> dict:
    """One pytest-benchmark "benchmarks" entry for a measurement summary."""
    key = bench_key(summary["model"], summary["runner"], summary["bs"])
    try:
        stats = dict(summary["stats"])
        float(stats["median"])
    except (KeyError, TypeError, ValueError):
        raise ZoogateError(f"measurement {key} carries no step statistics to save") from None
    settings = summary.get("settings", {})
    return {"group": BENCH_GROUP, "name": key, "fullname": key, "param": key,
            "params": {"model": summary["model"], "runner": summary["runner"], "bs": summary["bs"]},
            "options": {"timer": "time.perf_counter", "warmup": settings.get("warmup_steps"),
                        "min_rounds": settings.get("min_steps"), "min_time": settings.get("min_duration_s")},
            "stats": stats, "extra_info": {k: v for k, v in summary.items() if k != "stats"}}


def save_host_baseline(name: str, measurements: Sequence[Measurement | dict], *,
                       storage: str | os.PathLike | None = None, fingerprint: dict | None = None) -> Path:
    """Write measured fps per (model, runner, bs) as pytest-benchmark JSON under ``<storage>/<host id>/``."""
    import pytest_benchmark

    _check_name(name)
    if not measurements:
        raise ZoogateError(f"host baseline {name!r}: nothing was measured, nothing to save")
    fp = fingerprint or host_fingerprint()
    store, _ = _storage(storage, fp)
    benches = {}
    for m in measurements:
        entry = _benchmark_entry(m.summary() if isinstance(m, Measurement) else m)
        benches[entry["fullname"]] = entry          # one entry per key; the last measured wins
    doc = {"machine_info": {**fp, "host_id": host_id(fp)}, "commit_info": {},
           "benchmarks": list(benches.values()),
           "datetime": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "version": pytest_benchmark.__version__, "zoogate_baseline": name}
    before = set(store.query("[0-9][0-9][0-9][0-9]_*"))
    store.save(doc, name)
    written = sorted(set(store.query("[0-9][0-9][0-9][0-9]_*")) - before)
    return written[-1] if written else store.get(name)


@dataclass
class HostBaseline:
    """One saved host baseline: the newest ``NNNN_<name>.json`` of this host."""

    name: str
    path: Path
    host_id: str
    saved: str
    benchmarks: dict[str, dict]

    def get(self, model: str, runner: str, bs: int) -> dict | None:
        return self.benchmarks.get(bench_key(model, runner, bs))

    @property
    def source(self) -> str:
        return f"host baseline {self.name!r} ({self.path}, saved {self.saved})"


def load_host_baseline(name: str, *, storage: str | os.PathLike | None = None,
                       fingerprint: dict | None = None) -> HostBaseline:
    """The newest save named ``name`` for this host; ZoogateError when there is none or it is malformed."""
    _check_name(name)
    fp = fingerprint or host_fingerprint()
    store, logger = _storage(storage, fp)
    hid = host_id(fp)
    candidates = [p for p in store.query(f"[0-9][0-9][0-9][0-9]_{name}")
                  if p.stem.split("_", 1)[-1] == name]
    if not candidates:
        others = sorted({p.parent.name for p in store.path.glob(f"*/[0-9][0-9][0-9][0-9]_{name}.json")})
        hint = (f"; saved for other hosts: {', '.join(others)} (fps from another host are not comparable)"
                if others else "")
        raise ZoogateError(f"no host baseline named {name!r} for this host ({hid}): record one with "
                           f"--save-baseline {name}{hint}", store.path / hid)
    path = candidates[-1]
    loaded = list(store.load(str(path)))
    if not loaded:
        raise ZoogateError(f"not a readable host baseline ({'; '.join(logger.warnings) or 'no data'})", path)
    _, data = loaded[-1]
    try:
        benches = {b["fullname"]: b for b in data["benchmarks"]}
        for b in benches.values():
            float(b["stats"]["median"]), float(b["extra_info"]["fps"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ZoogateError(f"malformed host baseline: missing or bad field {exc}", path) from None
    return HostBaseline(name=name, path=path, host_id=hid, saved=str(data.get("datetime", "?")), benchmarks=benches)


def regression_threshold_pct(fps_rel: float) -> float:
    """An fps drop of fps_rel is a median-step-time rise of 1/(1-fps_rel) - 1 (as a percentage)."""
    return (1.0 / (1.0 - fps_rel) - 1.0) * 100.0


def fps_regression_gate(m: Measurement, saved: HostBaseline | None, *, compare_name: str | None = None) -> GateRecord:
    """Median step time may not rise beyond the fps_regression_rel drop (pytest-benchmark's
    PercentageRegressionCheck on "median"); SKIP without a saved entry for this (model, runner, bs), or when
    the saved entry was measured on another build (artifact, runner options, precision: its BuildIdentity)."""
    from pytest_benchmark.utils import PercentageRegressionCheck

    tol = baselines.tolerance("fps_regression_rel")
    details = {"measurement": m.summary()}
    if saved is None:
        return _record("fps_regression", m.model, m.runner, m.bs, SKIP, m.fps, None, "", str(tol),
                       "no host baseline to compare with: record one on this host with --save-baseline NAME, "
                       "then run with --compare-baseline NAME", details)
    bench = saved.get(m.model, m.runner, m.bs)
    if bench is None:
        return _record("fps_regression", m.model, m.runner, m.bs, SKIP, m.fps, None, saved.source, str(tol),
                       f"host baseline {saved.name!r} has no entry {m.key}: save one with --save-baseline "
                       f"{saved.name} --models {m.model} --bs {m.bs}", details)
    recorded = BuildIdentity.from_dict(bench.get("extra_info", {}).get("identity"))
    diffs = differences(recorded, m.identity) if m.identity is not None else ["build identity: now unknown"]
    if diffs:
        details["build_differences"] = diffs
        return _record("fps_regression", m.model, m.runner, m.bs, SKIP, m.fps, None, saved.source, str(tol),
                       f"host baseline {saved.name!r} was recorded for another build: {describe_differences(diffs)}; "
                       f"record this build with --save-baseline NAME", details)
    check = PercentageRegressionCheck("median", regression_threshold_pct(tol.value))
    failure = check.fails({"median": m.median_s}, {"median": float(bench["stats"]["median"])})
    saved_fps = float(bench["extra_info"]["fps"])
    change = m.fps / saved_fps - 1.0
    floor = saved_fps * (1 - tol.value)
    details.update(floor=floor, saved=bench["extra_info"], check=failure or "")
    reason = (f"{m.fps:.2f} img/s vs saved {saved_fps:.2f} img/s ({change:+.1%}); "
              f"{'fails' if failure else 'above'} floor {floor:.2f} (-{tol.value:.0%})")
    return _record("fps_regression", m.model, m.runner, m.bs, FAIL if failure else PASS, m.fps, saved_fps,
                   saved.source, str(tol), reason, details)
