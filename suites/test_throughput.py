"""Throughput gates: fps floors, host-baseline regressions, anti-caching, harness overhead.

Parametrized over (model, runner, bs) by zoogate.plugin.runners. On the CPU the default is the cheap
iresnet50 at bs 1 and 8 (the harness overhead is asked at those sizes); ``--models inception_v4 --bs 1,4,8``
measures the primary model. Accelerator classes gate the documented Ascend 310P3 table
(``pytest -m ascend --bs N --model-dir DIR``). Hosts without documented fps skip ``fps_floor`` and use
``--save-baseline NAME`` / ``--compare-baseline NAME`` (``fps_regression``).

The self-tests at the bottom plant each fault a throughput gate exists for and assert the gate FAILs.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from hardware import registry
from hardware.base import Runner
from zoogate import baselines
from zoogate.errors import ZoogateError
from zoogate.planted_runners import CachingRunner as ResultCache  # planted faults, shared with the fault matrix
from zoogate.planted_runners import SlowedRunner as Slowed
from zoogate.record import FAIL, PASS, SKIP
from zoogate.gates.throughput import anti_caching_gate, fps_floor_gate, fps_regression_gate, harness_overhead_gate
from zoogate.throughput import (MeasureSettings, PairedTimes, host_fingerprint, interleave, load_host_baseline, measure,
                                measure_anti_caching, measure_harness_overhead, median_interval, save_host_baseline,
                                split_batches, window_batches)

CPU_MODELS = ["iresnet50"]                     # cheapest real network (9.3 GFLOPs at 224 px)
# host runners (no accelerator card: the CPU, a GPU) at the host sizes; card runners at the documented table
HOST_RUNNERS = [n for n, cls in registry.runners().items() if n not in registry.card_runners()]
# harness overhead: a property of the harness code around session.run, so measured once per implementation
# (onnxruntime-int8 runs the very infer/_infer of onnxruntime on another graph)
def _harness_implementations(names: list[str]) -> list[str]:
    """One runner per (infer, _infer, marker): the class that defines _infer itself where there is one."""
    chosen: dict[tuple, str] = {}
    for name in sorted(names, key=lambda n: "_infer" not in vars(registry.get(n))):
        cls = registry.get(name)
        chosen.setdefault((cls.infer, cls._infer, cls.marker), name)
    return [n for n in names if n in chosen.values()]


BARE_SESSION_RUNNERS = _harness_implementations([n for n in HOST_RUNNERS if registry.get(n).bare_session])
HOST_BS = [1, 8]                               # the harness overhead is asked at bs 1 and 8
ANTI_CACHING_HOST_BS = [1]                     # a result cache is per input whatever the bs; bs 1 is cheapest
ACCELERATOR_MODELS = ["inception_v4_1001"]     # the model of the documented Ascend 310P3 fps table
ACCELERATOR_RUNNERS = registry.card_runners()
DOCUMENTED_BS = [1, 4, 8, 16, 32, 64]
ROTATION_SEED = 700                            # generated images the timed steps rotate through
VARIED_SEED = 7_000                            # the anti-caching pool: seeds disjoint from the rotation's


@pytest.fixture(scope="session")
def throughput_settings() -> MeasureSettings:
    return MeasureSettings.from_baselines()


@pytest.fixture(scope="session")
def _measured() -> dict:
    return {}


def _rotation(zoo, case, settings: MeasureSettings) -> list[np.ndarray]:
    return split_batches(zoo.batch(case.model, settings.rotation * case.bs, seed=ROTATION_SEED), case.bs)


def _gated(request, case) -> bool:
    """Whether a gate will hold this measurement against anything: a documented row, or a host baseline
    being compared with or saved."""
    from zoogate.gates.throughput import documented_fps

    config = request.config
    return bool(config.getoption("--compare-baseline") or config.getoption("--save-baseline")
                or documented_fps(case.model, case.runner, case.bs, config.getoption("--baseline-row"))[0])


@pytest.fixture
def measurement(runner_case, loaded_runner, zoo, throughput_settings, _measured, request):
    """The timed steps of this (model, runner, bs), measured once per session for both fps gates. With nothing
    to hold it against (both gates SKIP, the fps goes to the report's plot) it is measured for the shorter
    throughput_informational_min_duration_s; the record's settings say which."""
    if runner_case.id not in _measured:
        settings = throughput_settings if _gated(request, runner_case) else dataclasses.replace(
            throughput_settings, min_duration_s=baselines.tolerance("throughput_informational_min_duration_s").value)
        _measured[runner_case.id] = measure(loaded_runner, _rotation(zoo, runner_case, settings),
                                            model=runner_case.model, settings=settings)
    return _measured[runner_case.id]


class _ThroughputGates:
    """The gates every runner's throughput goes through; subclasses say which (model, runner, bs)."""

    def test_fps_floor(self, runner_case, measurement, gate_log, request):
        gate_log(fps_floor_gate(measurement, row_id=request.config.getoption("--baseline-row")))

    def test_fps_regression(self, runner_case, measurement, host_baseline, gate_log):
        gate_log(fps_regression_gate(measurement, host_baseline))

    def test_anti_caching(self, runner_case, loaded_runner, zoo, throughput_settings, gate_log):
        self.check_anti_caching(runner_case, loaded_runner, zoo, throughput_settings, gate_log)

    @staticmethod
    def check_anti_caching(runner_case, loaded_runner, zoo, throughput_settings, gate_log):
        bs = runner_case.bs
        pool = zoo.batch(runner_case.model, throughput_settings.pairs_max + bs - 1, seed=VARIED_SEED)
        repeated = _rotation(zoo, runner_case, throughput_settings)[0]
        times = measure_anti_caching(loaded_runner, window_batches(pool, bs), repeated, settings=throughput_settings)
        gate_log(anti_caching_gate(runner_case.model, runner_case.runner, bs, times))


@pytest.mark.runner_cases(models=CPU_MODELS, runners=HOST_RUNNERS, bs=HOST_BS)
class TestHostThroughput(_ThroughputGates):
    @pytest.mark.runner_cases(bs=ANTI_CACHING_HOST_BS)
    def test_anti_caching(self, runner_case, loaded_runner, zoo, throughput_settings, gate_log):
        self.check_anti_caching(runner_case, loaded_runner, zoo, throughput_settings, gate_log)

    @pytest.mark.runner_cases(runners=BARE_SESSION_RUNNERS)
    def test_harness_overhead(self, runner_case, loaded_runner, runner_loader, zoo, throughput_settings, gate_log):
        onnx_path = runner_loader.artifact(runner_case.model, runner_case.runner, runner_case.bs, {})
        times = measure_harness_overhead(loaded_runner, onnx_path, _rotation(zoo, runner_case, throughput_settings),
                                         settings=throughput_settings)
        gate_log(harness_overhead_gate(runner_case.model, runner_case.runner, runner_case.bs, times))


@pytest.mark.runner_cases(models=ACCELERATOR_MODELS, runners=ACCELERATOR_RUNNERS, bs=DOCUMENTED_BS)
class TestAcceleratorThroughput(_ThroughputGates):
    """`pytest -m ascend --bs 4 --model-dir DIR`: the Ascend 310P3 table of inception_v4_1001."""


# ------------------------------------------------------------------ self-tests: planted faults


QUICK = dict(warmup_steps=1, min_steps=5, min_duration_s=0.0)   # self-tests time a few steps, not seconds


class SleepRunner(Runner):
    """A stand-in backend whose step costs a fixed wall time (time.sleep), so the CPU load of other
    processes on this shared host barely moves it. Outputs: per-image means, 10 'classes'."""

    name = "sleep"

    def __init__(self, step_s: float) -> None:
        super().__init__()
        self.step_s = step_s

    @classmethod
    def available(cls):
        return True, "always"

    def load(self, artifact, batch_size):
        self.batch_size = batch_size
        self.artifact_id = f"sleep {self.step_s} s"        # what a host baseline entry is recorded for
        return self

    def _infer(self, batch):
        time.sleep(self.step_s)
        return np.repeat(batch.mean(axis=(1, 2, 3))[:, None], 10, axis=1)


def _toy_batches(n: int, bs: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return split_batches(rng.standard_normal((n * bs, 3, 8, 8)).astype(np.float32), bs)


def _planted_slowdown() -> float:
    """Extra step time that drops fps to half the fps_regression_rel floor margin below it: 1/(1+x) = 1-2r."""
    rel = baselines.tolerance("fps_regression_rel").value
    return 1.0 / (1.0 - 2 * rel) - 1.0


def test_slowed_runner_fails_a_recorded_host_floor(tmp_path):
    """Save a host baseline, then compare a runner slowed by a planted sleep: fps_regression FAILs,
    the same runner un-slowed PASSes. Storage is tmp_path, never the user's."""
    settings = MeasureSettings.from_baselines(**QUICK)
    batches = _toy_batches(4)
    fast = SleepRunner(step_s=0.02).load(None, 2)
    fp = {**host_fingerprint(), "cpu": "self-test host"}
    saved_file = save_host_baseline("selftest", [measure(fast, batches, model="toy", settings=settings)],
                                    storage=tmp_path, fingerprint=fp)
    assert saved_file.parent.parent == tmp_path and saved_file.name == "0001_selftest.json"
    saved = load_host_baseline("selftest", storage=tmp_path, fingerprint=fp)

    slowed = Slowed(fast, extra=_planted_slowdown())
    rec = fps_regression_gate(measure(slowed, batches, model="toy", settings=settings), saved)
    assert rec.status == FAIL, rec.explain()
    assert rec.gate == "throughput" and rec.check == "fps_regression" and "selftest" in rec.source
    assert rec.measured < rec.baseline * (1 - baselines.tolerance("fps_regression_rel").value)

    control = fps_regression_gate(measure(fast, batches, model="toy", settings=settings), saved)
    assert control.status == PASS, control.explain()


def test_host_baseline_is_pytest_benchmark_storage(tmp_path):
    """The saved file is pytest-benchmark JSON in its FileStorage layout: its own loader reads it back."""
    from pytest_benchmark.storage.file import FileStorage

    settings = MeasureSettings.from_baselines(**QUICK)
    fp = {**host_fingerprint(), "cpu": "self-test host"}
    m = measure(SleepRunner(0.001).load(None, 2), _toy_batches(2), model="toy", settings=settings)
    path = save_host_baseline("layout", [m], storage=tmp_path, fingerprint=fp)
    second = save_host_baseline("layout", [m], storage=tmp_path, fingerprint=fp)
    assert (path.name, second.name) == ("0001_layout.json", "0002_layout.json")

    class Log:
        def info(self, *a, **k): ...
        def warning(self, text, **k): raise AssertionError(text)

    benches = list(FileStorage(tmp_path, Log()).load_benchmarks("*/*layout"))
    assert {b["fullname"] for b in benches} == {"toy-sleep-bs2"}
    assert all(b["median"] == pytest.approx(m.median_s) and b["extra_info"]["fps"] == pytest.approx(m.fps)
               for b in benches)
    assert load_host_baseline("layout", storage=tmp_path, fingerprint=fp).path == second   # newest wins


def test_host_fingerprint_is_the_same_whether_or_not_torch_ran(tmp_path, monkeypatch):
    """A process that runs no torch code names its host from the cached default thread count, without
    importing torch; the fingerprint (so the host id baselines are saved under) is the one torch gives."""
    import json
    import os
    import subprocess
    import sys

    import torch

    from zoogate import cache
    from zoogate.throughput import host

    monkeypatch.setenv("ZOOGATE_CACHE", str(tmp_path))
    here = host_fingerprint()
    cache.cached_json("torch-threads", host.torch_threads_key(here["torch"], here["usable_cpus"]),
                      torch.get_num_threads)             # what a process that imported torch would store
    code = ("import json, sys; from zoogate.throughput import host_fingerprint; "
            "print(json.dumps([host_fingerprint(), 'torch' in sys.modules]))")
    res = subprocess.run([sys.executable, "-c", code], env=dict(os.environ), capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    there, imported = json.loads(res.stdout)
    assert not imported, "the process imported torch instead of reading the cached thread count"
    assert there == here and there["torch_threads"] == torch.get_num_threads()


def test_host_baseline_errors_name_the_file(tmp_path):
    fp = {**host_fingerprint(), "cpu": "self-test host"}
    other = {**fp, "cpu": "another host"}
    m = measure(SleepRunner(0.001).load(None, 2), _toy_batches(2), model="toy",
                settings=MeasureSettings.from_baselines(**QUICK))
    save_host_baseline("lab", [m], storage=tmp_path, fingerprint=other)
    with pytest.raises(ZoogateError, match=r"no host baseline named 'lab' for this host .*saved for other hosts"):
        load_host_baseline("lab", storage=tmp_path, fingerprint=fp)
    bad = save_host_baseline("broken", [m], storage=tmp_path, fingerprint=fp)
    bad.write_text("{not json")
    with pytest.raises(ZoogateError, match="not a readable host baseline") as err:
        load_host_baseline("broken", storage=tmp_path, fingerprint=fp)
    assert str(bad) in str(err.value)
    with pytest.raises(ZoogateError, match="baseline name"):
        save_host_baseline("../escape", [m], storage=tmp_path, fingerprint=fp)


def test_fps_floor_gates_the_documented_ascend_table():
    """A measurement below 310P3's documented fps minus fps_floor_rel FAILs, one above PASSes, an
    undocumented batch size SKIPs with the sizes that are documented."""
    settings = MeasureSettings.from_baselines(**QUICK)
    rel = baselines.tolerance("fps_floor_rel").value
    documented = baselines.model("inception_v4_1001").row("ascend-310p3").fps

    def at(fps: float, bs: int):
        m = measure(SleepRunner(0.0).load(None, bs), _toy_batches(1, bs), model="inception_v4_1001",
                    settings=settings)
        m.runner = "ascend"
        m.step_s = [bs / fps] * m.steps      # the planted number: a device this slow or this fast
        return fps_floor_gate(m)

    slow = at(documented[4] * (1 - 2 * rel), 4)
    assert slow.status == FAIL and slow.baseline == documented[4] and "InceptionV4_for_Pytorch/README.md" in slow.source, slow.explain()
    assert at(documented[8], 8).status == PASS
    skipped = at(100.0, 2)
    assert skipped.status == SKIP and "1, 4, 8, 16, 32, 64" in skipped.reason


def test_fps_floor_uses_device_time_when_the_runner_reports_it():
    """ais_bench's documented throughput is 1000 x bs / NPU compute time: the floor compares device fps."""
    settings = MeasureSettings.from_baselines(**QUICK)
    documented = baselines.model("inception_v4_1001").row("ascend-310p3").fps[1]
    m = measure(SleepRunner(0.0).load(None, 1), _toy_batches(1, 1), model="inception_v4_1001", settings=settings)
    m.runner = "ascend"
    m.step_s = [1.0] * m.steps                            # slow host wall time ...
    m.device_s = [1.0 / documented] * m.steps             # ... but the device meets the table
    rec = fps_floor_gate(m)
    assert rec.status == PASS and rec.details["basis"] == "device time", rec.explain()


def test_cached_result_runner_fails_anti_caching(runner_loader):
    """MLPerf TEST04: the real onnxruntime runner behind a result cache answers the repeated batch at
    once; anti_caching FAILs. The same runner without the cache PASSes."""
    runner = runner_loader.load("iresnet50", "onnxruntime", 1)
    images = runner_loader.zoo.batch("iresnet50", 12, seed=VARIED_SEED)
    settings = MeasureSettings.from_baselines(warmup_steps=1)
    varied, repeated = window_batches(images[1:], 1), images[:1].copy()

    cached = anti_caching_gate("iresnet50", "onnxruntime", 1,
                               measure_anti_caching(ResultCache(runner), varied, repeated, settings=settings))
    assert cached.status == FAIL and cached.check == "anti_caching", cached.explain()
    assert "cache" in cached.reason


def test_anti_caching_distinguishes_a_result_cache_from_an_honest_runner():
    settings = MeasureSettings.from_baselines(warmup_steps=1)
    pool = np.random.default_rng(1).standard_normal((settings.pairs_max + 1, 3, 8, 8)).astype(np.float32)
    varied, repeated = window_batches(pool[1:], 1), pool[:1].copy()
    honest = SleepRunner(0.03).load(None, 1)
    assert anti_caching_gate("toy", "sleep", 1, measure_anti_caching(
        ResultCache(honest), varied, repeated, settings=settings)).status == FAIL
    rec = anti_caching_gate("toy", "sleep", 1, measure_anti_caching(honest, varied, repeated, settings=settings))
    assert rec.status == PASS, rec.explain()


def test_planted_sleep_in_the_harness_fails_harness_overhead(runner_loader, zoo):
    """A per-call sleep in the harness path (10x the allowed 2 % overhead) FAILs harness_overhead."""
    runner = runner_loader.load("iresnet50", "onnxruntime", 1)
    onnx_path = zoo.onnx("iresnet50")
    batches = split_batches(zoo.batch("iresnet50", 4, seed=ROTATION_SEED), 1)
    extra = 10 * (1 - baselines.tolerance("harness_overhead_min_ratio").value)
    times = measure_harness_overhead(Slowed(runner, extra), onnx_path, batches,
                                     settings=MeasureSettings.from_baselines(warmup_steps=1))
    rec = harness_overhead_gate("iresnet50", "onnxruntime", 1, times)
    assert rec.status == FAIL and rec.check == "harness_overhead", rec.explain()
    assert rec.details["suite_fps"] < rec.details["bare_fps"]


def test_measurement_meets_count_and_duration_and_records_its_settings():
    settings = MeasureSettings.from_baselines(warmup_steps=2, min_steps=3, min_duration_s=0.05)
    runner = SleepRunner(0.002).load(None, 2)
    seen = []
    real = runner._infer
    runner._infer = lambda b: (seen.append(b[0, 0, 0, 0]), real(b))[1]
    m = measure(runner, _toy_batches(3), model="toy", settings=settings)
    assert m.steps >= 3 and m.duration_s >= 0.05
    assert len(seen) == m.steps + 2                                   # warm-up steps are not timed
    assert len(set(seen[2:5])) == 3                                   # batches rotate between steps
    s = m.summary()
    assert s["settings"] == settings.to_dict() and s["steps"] == m.steps and s["distinct_batches"] == 3
    assert s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"] and s["fps"] == pytest.approx(2 / m.median_s)
    assert s["stats"]["median"] == pytest.approx(m.median_s) and s["device_fps"] is None


def test_window_batches_never_repeat():
    pool = np.arange(10 * 3 * 2 * 2, dtype=np.float32).reshape(10, 3, 2, 2)
    batches = window_batches(pool, 4)
    assert len(batches) == 7
    assert len({b.tobytes() for b in batches}) == 7
    with pytest.raises(ValueError):
        split_batches(pool, 3)


def test_settings_come_from_named_values_and_environment(monkeypatch):
    assert MeasureSettings.from_baselines().min_steps == baselines.tolerance("throughput_min_steps").value
    monkeypatch.setenv("ZOOGATE_THROUGHPUT_MIN_DURATION_S", "7.5")
    assert MeasureSettings.from_baselines().min_duration_s == 7.5
    monkeypatch.setenv("ZOOGATE_THROUGHPUT_MIN_STEPS", "many")
    with pytest.raises(ZoogateError, match="ZOOGATE_THROUGHPUT_MIN_STEPS"):
        MeasureSettings.from_baselines()


def test_median_interval_is_the_order_statistic_interval():
    # n = 6: P(B <= 0) = 1/64 <= 2.5 % < P(B <= 1) = 7/64 -> [x(1), x(6)]; n = 9: P(B <= 1) = 10/512 -> [x(2), x(8)]
    assert median_interval([5, 1, 4, 2, 6, 3], 0.95) == (1, 6)
    assert median_interval(list(range(1, 10)), 0.95) == (2, 8)
    assert median_interval([1, 2, 3], 0.95) == (float("-inf"), float("inf"))      # too few pairs to tell


def test_interleave_runs_abba_and_stops_once_decided():
    settings = MeasureSettings.from_baselines()
    calls = []
    times = interleave(lambda i: calls.append(("a", i)) or 1.0, lambda i: calls.append(("b", i)) or 2.0,
                       statistic=lambda a, b: b / a, statistic_text="b/a", limit=1.5, settings=settings)
    assert times.decided and len(times.values) == settings.pairs_min and times.median == 2.0
    assert calls[:4] == [("a", 0), ("b", 0), ("b", 1), ("a", 1)]


def test_an_inconclusive_comparison_is_a_skip_that_says_why():
    limit = baselines.tolerance("harness_overhead_min_ratio").value
    noisy = PairedTimes("bare", "suite", [1.0] * 6, [1.0] * 6, "bare_s / suite_s",
                        [limit - 0.1, limit + 0.1, limit - 0.05, limit + 0.05, limit - 0.01, limit + 0.01],
                        limit=limit, confidence=0.95, decided=False, duration_s=12.0)
    rec = harness_overhead_gate("toy", "onnxruntime", 1, noisy)
    assert rec.status == SKIP and "inconclusive" in rec.reason
    assert "ZOOGATE_THROUGHPUT_PAIRS_MAX_DURATION_S" in rec.reason and "host load" in rec.reason
