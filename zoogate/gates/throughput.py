"""Throughput gates (gate="throughput"): documented floor, host-baseline regression, anti-caching, harness overhead,
on measurements of zoogate.throughput.

``diff_across``: host fps of a model-runner-bs measured in both reports, down by more than fps_regression_rel,
is a regression whether or not a floor was gated.
"""

from __future__ import annotations

import statistics

from zoogate import baselines
from zoogate.gates._diff import number, tolerance_named
from zoogate.identity import BuildIdentity, describe_differences, differences
from zoogate.record import FAIL, PASS, SKIP, GateRecord
from zoogate.throughput.host import HostBaseline
from zoogate.throughput.measuring import Measurement, PairedTimes


GATE = "throughput"


def _record(check: str, m_model: str, runner: str, bs: int, status: str, measured, baseline, source: str,
            tolerance: str, reason: str, details: dict) -> GateRecord:
    return GateRecord(gate=GATE, check=check, model=m_model, status=status, measured=measured, baseline=baseline,
                      source=source, tolerance=tolerance, reason=reason, runner=runner, bs=bs, details=details)


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


def _fps_by_key(records) -> dict[str, float]:
    """model-runner-bsN -> measured host fps, from any throughput record carrying a measurement."""
    out = {}
    for r in records:
        fps = number((r.details.get("measurement") or {}).get("fps")) if r.gate == GATE else None
        if fps is not None and r.bs is not None:
            out[f"{r.model}-{r.runner}-bs{r.bs}"] = fps
    return out


def diff_across(old_records, new_records) -> list[tuple]:
    """(key, old fps, new fps, regression?, note) per model-runner-bs measured in both reports, whether or not
    a floor was gated: a drop beyond fps_regression_rel is a regression."""
    fa, fb = _fps_by_key(old_records), _fps_by_key(new_records)
    tol = tolerance_named("", "fps_regression_rel")
    rel = tol.value if tol else 0.0
    return [(f"throughput:fps:{key}", fa[key], fb[key], fb[key] < fa[key] * (1 - rel),
             f"{fb[key] / fa[key] - 1:+.1%} img/s (a regression is a drop beyond {rel:.0%}, fps_regression_rel)")
            for key in sorted(set(fa) & set(fb)) if fa[key] > 0 and fa[key] != fb[key]]
