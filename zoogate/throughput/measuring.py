"""Measuring a runner: timed steps, the Measurement they make, and interleaved paired comparisons."""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Sequence

import numpy as np

from zoogate import baselines
from zoogate.identity import BuildIdentity, of_runner
from zoogate.record import FAIL, PASS, SKIP
from zoogate.throughput.settings import MeasureSettings, check_batches, bench_key





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
    bs = check_batches(batches)
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
    check_batches([*varied, repeated])
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
    check_batches(batches)
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


