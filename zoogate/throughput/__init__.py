"""Throughput: measure a runner per (model, runner, batch size) and gate the numbers.

Modules: ``settings`` (named settings, batches), ``measuring`` (timed steps, paired comparisons), ``host``
(host fingerprint, pytest-benchmark storage of host baselines). The four gates on these measurements are
zoogate.gates.throughput.

Measurement: untimed warm-up steps, then timed steps until BOTH a minimum count and a minimum duration
are reached (settings in baselines/tolerances_throughput.toml, recorded with every result). Each step is
the host wall time of ``runner.infer(batch)`` over real preprocessed batches rotated between steps;
device time is kept beside it where the runner reports one (``runner.timing.device_s``, ais_bench).
Throughput = batch size / MEDIAN step time; latency p50/p90/p99 of the same steps.

Gates (zoogate.gates.throughput; each returns a GateRecord, gate "throughput"):
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


from zoogate.throughput.host import (
    HostBaseline,
    check_name,
    default_storage,
    host_fingerprint,
    host_id,
    load_host_baseline,
    package_version,
    save_host_baseline,
)
from zoogate.throughput.measuring import (
    Measurement,
    PairedTimes,
    bare_onnxruntime_session,
    interleave,
    measure,
    measure_anti_caching,
    measure_harness_overhead,
    median_interval,
    timed_step,
)
from zoogate.throughput.settings import (
    MeasureSettings,
    bench_key,
    check_batches,
    split_batches,
    window_batches,
)

__all__ = [
    "HostBaseline",
    "check_name",
    "default_storage",
    "host_fingerprint",
    "host_id",
    "load_host_baseline",
    "package_version",
    "save_host_baseline",
    "Measurement",
    "PairedTimes",
    "bare_onnxruntime_session",
    "interleave",
    "measure",
    "measure_anti_caching",
    "measure_harness_overhead",
    "median_interval",
    "timed_step",
    "MeasureSettings",
    "bench_key",
    "check_batches",
    "split_batches",
    "window_batches",
]
