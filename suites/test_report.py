"""The gate report: JSON/table/plot/diff on synthetic records, and the pytest plugin end to end
(pytester runs with the suite's own root conftest): exit status, --require, JUnit beside the JSON,
records from xdist workers, --save-baseline / --compare-baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from zoogate import baselines
from zoogate.errors import ZoogateError
from zoogate.record import FAIL, GATE_KINDS, INCONCLUSIVE, PASS, SKIP, GateRecord
from zoogate.report import (DEFAULT_PATH, build_report, diff_reports, environment, fps_series, load_report,
                            parse_report, plot_fps, render_diff, render_report, render_table, write_report)

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ synthetic records

def _records(top1=80.1, max_abs=2e-4, fps=(20.0, 31.0), agreement_status=PASS) -> list[GateRecord]:
    recs = [
        GateRecord(gate="architecture", check="params_m", model="inception_v4", status=PASS, measured=42.68,
                   baseline=42.68, source="000: 模型性能", tolerance="params_exact_m=0.0005 M", reason="equal"),
        GateRecord(gate="preprocessing", check="max_abs_vs_reference", model="inception_v4", status=PASS,
                   measured=0.0, baseline=0.0, source="torchvision", tolerance="preprocess_identical=0",
                   reason="identical"),
        GateRecord(gate="agreement", check="eager_agreement", model="inception_v4", status=agreement_status,
                   measured=max_abs, baseline=0.0, source="eager",
                   tolerance=str(baselines.tolerance("fp32_cross_backend")), reason="compared", runner="onnxruntime",
                   bs=4, details={"top1_agreement": 1.0}),
        GateRecord(gate="accuracy", check="top1", model="inception_v4", status=PASS, measured=top1, baseline=80.162,
                   source="000: 模型性能", tolerance="top1_abs_pp=0.5", reason="close", runner="onnxruntime", bs=8),
        GateRecord(gate="accuracy", check="top5", model="inception_v4", status=SKIP,
                   reason="no ImageNet: pass --imagenet DIR"),
    ]
    for bs, f in zip((1, 8), fps):
        recs.append(
            GateRecord(gate="throughput", check="fps_floor", model="inception_v4", status=SKIP, measured=f,
                       baseline=None, source="", tolerance="fps_floor_rel=0.1", reason="no documented row",
                       runner="onnxruntime", bs=bs,
                       details={"measurement": {"fps": f, "median_step_ms": bs / f * 1e3}})
        )
    recs.append(
        GateRecord(gate="throughput", check="fps_floor", model="inception_v4_1001", status=FAIL, measured=600.0,
                   baseline=761.4, source="001: 性能", tolerance="fps_floor_rel=0.1", reason="600 < 685.3",
                   runner="ascend", bs=1, details={"floor": 685.26, "measurement": {"fps": 600.0}})
    )
    return recs


def _report(tmp_path, name="r.json", **kw):
    path = write_report(build_report(_records(**kw), environment={"host_id": "h"}, run={"problems": []}),
                        tmp_path / name)
    return load_report(path)


def test_report_round_trip_keeps_every_record(tmp_path):
    recs = _records()
    doc = build_report(recs, environment=environment(seeds={"images": 700}), run={"args": ["-m", "not npu"]})
    path = write_report(doc, tmp_path / "sub" / "r.json")
    back = load_report(path)
    assert [r.to_dict() for r in back.records] == [r.to_dict() for r in recs]
    assert back.summary["gates_covered"] == list(GATE_KINDS)
    assert (back.summary[PASS], back.summary[FAIL], back.summary[SKIP]) == (4, 1, 3)
    env = back.environment
    assert env["packages"]["torch"] and env["packages"]["onnxruntime"] and env["host_id"]
    assert set(env["vendor_sdks"]) >= {"ais_bench", "vaststreamx", "cann_toolkit"}
    assert set(env["devices"]) >= {"cpu", "ascend", "vacc", "cuda"} and env["seeds"]["images"] == 700
    assert DEFAULT_PATH == Path("reports/gate-report.json")


@pytest.mark.parametrize("content, problem", [
    (None, "not found"),
    ("", "the file is empty"),
    ("{oops", "invalid JSON at line 1"),
    ("[]", "expected a JSON object"),
    ('{"schema": "other"}', "schema is 'other'"),
    ('{"schema": "zoogate.gate-report", "version": 99, "records": []}', "version 99 is not supported"),
    ('{"schema": "zoogate.gate-report", "version": 1}', "records: missing or not a list"),
    ('{"schema": "zoogate.gate-report", "version": 1, "records": [{"gate": "x", "check": "c", "model": "m", '
     '"status": "pass"}]}', "records[0]: unknown gate kind 'x'"),
    ('{"schema": "zoogate.gate-report", "version": 1, "records": [{"gate": "accuracy", "check": "top1", '
     '"model": "m", "status": "pass", "bs": "8"}]}', "records[0].bs: expected an integer"),
    ('{"schema": "zoogate.gate-report", "version": 1, "records": [{"gate": "accuracy", "model": "m", '
     '"status": "pass"}]}', "records[0]: missing or non-text field(s) ['check']"),
])
def test_load_report_names_the_file_and_the_problem(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ZoogateError) as err:
        load_report(path)
    assert str(err.value).startswith(str(path)) and problem in str(err.value)


def test_table_has_one_row_per_record_with_every_field():
    recs = _records()
    lines = render_table(recs, width=None).splitlines()
    assert lines[0].split() == ["status", "gate", "check", "model", "runner", "bs", "measured", "baseline",
                                "tolerance", "source"]
    assert lines[1].split() == ["->", "reason"]
    rows, reasons = lines[3::2], lines[4::2]
    assert len(rows) == len(recs) == len(reasons)
    i = next(i for i, line in enumerate(rows) if line.startswith("FAIL"))
    assert all(t in rows[i] for t in ("fps_floor", "inception_v4_1001", "ascend", "600", "761.4", "001: 性能",
                                      "fps_floor_rel=0.1"))
    assert reasons[i].split() == ["->", "600", "<", "685.3"]
    order = [line.split()[1] for line in rows]                         # gate kinds in their fixed order
    assert order == sorted(order, key=list(GATE_KINDS).index)
    narrow = render_table(recs, width=60).splitlines()
    assert all(len(line) <= 60 for line in narrow)
    long_reason = GateRecord(gate="accuracy", check="top1", model="m", status=FAIL, reason="word " * 40)
    assert " ".join(render_table([long_reason], width=60).split("reason")[1].split()).count("word") == 40


def test_render_report_lists_run_problems(tmp_path):
    doc = build_report(_records(), environment={"host_id": "h1"}, run={"problems": ["--require ascend: none ran"]})
    text = render_report(parse_report(doc, tmp_path / "x.json"))
    assert "host h1" in text and "--require ascend: none ran" in text and "1 fail" in text


def test_fps_plot_draws_runners_and_floors(tmp_path):
    recs = _records()
    series = fps_series(recs)
    assert {s.runner: s.fps for s in series["inception_v4"]} == {"onnxruntime": {1: 20.0, 8: 31.0}}
    assert series["inception_v4_1001"][0].floors == {"documented floor": {1: 685.26}}
    path = plot_fps(recs, tmp_path / "fps.png", title="t")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width >= 800 and img.height >= 2 * 400   # a panel per model
        colours = {c for _, c in img.convert("RGB").getcolors(1 << 20)}
    assert (31, 119, 180) in colours                    # the first runner's line colour was drawn
    assert plot_fps([r for r in recs if r.gate != "throughput"], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_diff_flags_regressions_by_named_tolerances(tmp_path):
    top1_tol = baselines.tolerance("top1_abs_pp").value
    fps_tol = baselines.tolerance("fps_regression_rel").value
    old = _report(tmp_path, "old.json")
    same = _report(tmp_path, "same.json")
    assert diff_reports(old, same).regressions == []

    small = _report(tmp_path, "small.json", top1=80.1 - top1_tol / 2, fps=(20.0 * (1 - fps_tol / 2), 31.0))
    d = diff_reports(old, small)
    assert d.regressions == [] and {c.check for c in d.changes} == {"top1", "fps"}

    atol = baselines.tolerance("fp32_cross_backend").atol
    bad = _report(tmp_path, "bad.json", top1=80.1 - 2 * top1_tol, fps=(20.0, 31.0 * (1 - 2 * fps_tol)),
                  max_abs=2e-4 + 2 * atol, agreement_status=FAIL)
    d = diff_reports(old, bad)
    flagged = {(c.check, c.kind) for c in d.regressions}
    assert flagged == {("top1", "value"), ("fps", "value"), ("eager_agreement", "status"),
                       ("eager_agreement", "value")}
    text = render_diff(d)
    assert "REGRESSION" in text and "throughput:fps:inception_v4-onnxruntime-bs8" in text
    assert f"{len(d.regressions)} regression(s)" in text


def test_diff_lists_coverage_lost_and_new_failures(tmp_path):
    old = _report(tmp_path, "old.json")
    recs = [r for r in _records() if r.gate != "architecture"]
    recs[1] = GateRecord(gate="agreement", check="eager_agreement", model="inception_v4", status=SKIP,
                         reason="runner missing", runner="onnxruntime", bs=4)
    recs.append(
        GateRecord(gate="accuracy", check="label_offset", model="inception_v4", status=FAIL, measured=1, baseline=0,
                   reason="off by one")
    )
    new = parse_report(build_report(recs), tmp_path / "new.json")
    d = diff_reports(old, new)
    assert {c.key for c in d.coverage_lost} == {"architecture:params_m:inception_v4--",
                                                "agreement:eager_agreement:inception_v4-onnxruntime-bs4"}
    assert [c.key for c in d.regressions] == ["accuracy:label_offset:inception_v4--"]


def test_diff_counts_a_gate_gone_inconclusive_as_a_regression(tmp_path):
    old = _report(tmp_path, "old.json")
    recs = [r for r in _records()]
    top1 = next(i for i, r in enumerate(recs) if r.gate == "accuracy" and r.check == "top1")
    recs[top1] = GateRecord(gate="accuracy", check="top1", model=recs[top1].model, status=INCONCLUSIVE, measured=50.0,
                            baseline=recs[top1].baseline, reason="2 images", runner=recs[top1].runner,
                            bs=recs[top1].bs)
    new = parse_report(build_report(recs), tmp_path / "new.json")
    d = diff_reports(old, new)
    assert [(c.check, c.kind, c.new) for c in d.regressions] == [("top1", "status", INCONCLUSIVE)]
    assert "1 inconclusive" in render_diff(d)
    back = diff_reports(new, old)              # inconclusive -> pass is no regression
    assert back.regressions == []


# ------------------------------------------------------------------ the plugin, end to end (pytester)

@pytest.fixture
def suite(torch_before_pytester, pytester, monkeypatch, tmp_path, request):
    """A pytester project with the suite's pytest configuration (the plugin comes by its entry point);
    host baselines and caches in tmp_path, never the user's."""
    from zoogate import cache

    pytester.makepyprojecttoml((ROOT / "pyproject.toml").read_text())
    monkeypatch.setenv("ZOOGATE_HOST_BASELINES", str(tmp_path / "host-baselines"))
    monkeypatch.setenv("ZOOGATE_CACHE", str(tmp_path / "cache"))
    yield pytester
    cache.set_root(request.config.getoption("--cache-dir"))    # in-process runs reset the cache root


GATE_TESTS = '''
import pytest
from zoogate.record import GateRecord, GATE_KINDS

@pytest.mark.parametrize("gate", GATE_KINDS)
def test_gate(gate, gate_log):
    gate_log(GateRecord(gate=gate, check="check", model="iresnet50", status="pass", measured=1.0, baseline=1.0, source="src",
                        tolerance="tol", reason="fine", runner="onnxruntime", bs=1))
'''


def _json(pytester, name="r.json") -> dict:
    return json.loads((pytester.path / name).read_text())


def test_report_covers_every_gate_kind_with_junit_beside_it(suite):
    suite.makepyfile(test_gates=GATE_TESTS)
    result = suite.runpytest("--gate-report", "r.json")
    result.assert_outcomes(passed=5)
    doc = _json(suite)
    assert doc["summary"]["gates_covered"] == list(GATE_KINDS)
    assert {r["details"]["nodeid"].split("::")[0] for r in doc["records"]} == {"test_gates.py"}
    junit = suite.path / "r.junit.xml"
    assert junit.exists() and "test_gate[throughput]" in junit.read_text()
    result.stdout.fnmatch_lines(["*zoogate gate report*", "PASS*throughput*check*iresnet50*onnxruntime*",
                                 "5 gate records: 5 pass, 0 fail, 0 inconclusive, 0 skip*", "report: *r.json"])
    assert doc["environment"]["host_fingerprint"]["cpu_count"] and doc["run"]["junit"].endswith("r.junit.xml")


def test_default_report_path_and_explicit_junitxml_are_respected(suite):
    suite.makepyfile(test_gates=GATE_TESTS)
    suite.runpytest("--junitxml", "mine.xml").assert_outcomes(passed=5)
    assert (suite.path / DEFAULT_PATH).exists() and (suite.path / "mine.xml").exists()
    assert not list(suite.path.glob("reports/*.junit.xml"))


def test_planted_gate_fail_exits_nonzero_and_is_in_the_json(suite):
    suite.makepyfile(test_planted='''
from zoogate.record import GateRecord

def test_broken_build(gate_log):
    gate_log(GateRecord(gate="accuracy", check="top1", model="inception_v4", status="fail", measured=16.37,
                        baseline=80.162, source="VACC int8 row", tolerance="top1_abs_pp=0.5",
                        reason="int8 build lost 63.8 pp", runner="vacc", bs=8))
''')
    result = suite.runpytest("--gate-report", "r.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*[[]FAIL[]] accuracy:top1:inception_v4-vacc-bs8*", "FAIL*accuracy*top1*"])
    (rec,) = _json(suite)["records"]
    assert rec["status"] == "fail" and rec["measured"] == 16.37 and rec["reason"] == "int8 build lost 63.8 pp"
    assert 'failures="1"' in (suite.path / "r.junit.xml").read_text()


def test_a_swallowed_gate_fail_still_fails_the_run(suite):
    suite.makepyfile(test_swallowed='''
import pytest
from zoogate.record import GateRecord

def test_hides_its_failure(gate_log):
    with pytest.raises(pytest.fail.Exception):
        gate_log(GateRecord(gate="agreement", check="logits", model="iresnet50", status="fail", measured=1.0,
                            baseline=0.0, reason="planted"))
''')
    result = suite.runpytest("--gate-report", "r.json")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["RUN FAILS: 1 gate record(s) FAILED or INCONCLUSIVE although no test failed*"])
    assert _json(suite)["run"]["problems"]


def test_an_inconclusive_gate_fails_its_test_unless_allowed(suite):
    suite.makepyfile(test_thin='''
from zoogate.record import GateRecord

def test_two_images(gate_log):
    gate_log(GateRecord(gate="accuracy", check="top1", model="iresnet50", status="inconclusive", measured=0.0,
                        baseline=77.168, reason="2 images"))
''')
    result = suite.runpytest("--gate-report", "r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*INCONCLUSIVE*accuracy:top1:iresnet50*", "*--allow-inconclusive*"])
    assert _json(suite)["summary"]["inconclusive"] == 1
    allowed = suite.runpytest("--gate-report", "r.json", "--allow-inconclusive")
    allowed.assert_outcomes(skipped=1)
    assert allowed.ret == pytest.ExitCode.OK
    assert _json(suite)["records"][0]["status"] == "inconclusive"


def test_a_gate_test_that_logs_nothing_fails_the_run(suite):
    suite.makepyfile(test_silent='''
def test_asserts_nothing(gate_log):
    pass

def test_plain_unit_test():
    assert 1 + 1 == 2
''')
    result = suite.runpytest("--gate-report", "r.json")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["RUN FAILS: 1 gate test(s) passed without logging a gate record*"
                                 "test_silent.py::test_asserts_nothing*"])


def test_an_empty_model_selection_is_a_usage_error(suite):
    suite.makepyfile(test_gates=GATE_TESTS)
    result = suite.runpytest("--models", ",")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--models ',' selects no model*"])


RUNNER_TESTS = '''
import pytest

@pytest.mark.runner_cases(models=["iresnet50"], runners=["onnxruntime", "ascend"], bs=[1])
def test_runs(runner_case):
    assert runner_case.model == "iresnet50"

@pytest.mark.ascend
def test_needs_a_card():
    pass
'''


def test_require_ascend_fails_when_every_ascend_test_skipped(suite):
    suite.makepyfile(test_runners=RUNNER_TESTS)
    result = suite.runpytest("--require", "ascend", "--gate-report", "r.json")
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["RUN FAILS: --require ascend: all 2 ascend test(s) were skipped: *no Ascend device*"])
    assert any("--require ascend" in p for p in _json(suite)["run"]["problems"])
    # the runner that did run satisfies its own requirement
    assert suite.runpytest("--require", "onnxruntime").ret == pytest.ExitCode.OK


def test_require_fails_when_nothing_of_the_runner_was_selected(suite):
    suite.makepyfile(test_runners=RUNNER_TESTS)
    result = suite.runpytest("-m", "not npu", "--require", "ascend")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["RUN FAILS: --require ascend: no test of ascend was collected or selected*"])


def test_require_rejects_an_unknown_runner(suite):
    suite.makepyfile(test_runners=RUNNER_TESTS)
    result = suite.runpytest("--require", "ascnd")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--require: unknown runner or hardware [[]'ascnd'[]]*"])


def test_records_from_xdist_workers_reach_the_report(suite):
    suite.makepyfile(test_gates=GATE_TESTS)
    result = suite.runpytest("-n", "1", "-p", "no:benchmark", "--gate-report", "r.json")
    result.assert_outcomes(passed=5)
    assert _json(suite)["summary"]["gates_covered"] == list(GATE_KINDS)
    junit = (suite.path / "r.junit.xml").read_text()
    assert "test_gate[accuracy]" in junit and "zoogate_records" not in junit    # records go to the JSON only


HOST_BASELINE_TESTS = '''
import os, time
import numpy as np
from hardware.base import Runner
from zoogate.gates.throughput import fps_floor_gate, fps_regression_gate
from zoogate.throughput import MeasureSettings, measure, split_batches

class SleepRunner(Runner):
    name = "sleep"
    @classmethod
    def available(cls):
        return True, "always"
    def load(self, artifact, batch_size):
        self.batch_size = batch_size
        self.artifact_id = "sleep 0.01 s"
        return self
    def _infer(self, batch):
        time.sleep(0.01 * (1 + float(os.environ.get("PLANTED_SLOWDOWN", "0"))))
        return np.zeros((batch.shape[0], 10), np.float32)

MEASURED = {}

def _measurement():
    if not MEASURED:
        batches = split_batches(np.zeros((4, 3, 8, 8), np.float32), 2)
        settings = MeasureSettings.from_baselines(warmup_steps=1, min_steps=5, min_duration_s=0)
        MEASURED["m"] = measure(SleepRunner().load(None, 2), batches, model="iresnet50", settings=settings)
    return MEASURED["m"]

def test_fps_floor(gate_log):
    gate_log(fps_floor_gate(_measurement()))

def test_fps_regression(gate_log, host_baseline):
    gate_log(fps_regression_gate(_measurement(), host_baseline))
'''


def test_save_then_compare_a_host_baseline_catches_a_slowed_runner(suite, monkeypatch, tmp_path):
    suite.makepyfile(test_host=HOST_BASELINE_TESTS)
    saved = suite.runpytest("--save-baseline", "lab", "--gate-report", "save.json")
    saved.assert_outcomes(skipped=2)          # CPU: no documented floor, nothing to compare with yet
    saved.stdout.fnmatch_lines(["host baseline saved: *0001_lab.json"])
    files = list((tmp_path / "host-baselines").glob("*/0001_lab.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["benchmarks"][0]["fullname"] == "iresnet50-sleep-bs2"

    assert suite.runpytest("--compare-baseline", "lab").ret == pytest.ExitCode.OK

    rel = baselines.tolerance("fps_regression_rel").value
    monkeypatch.setenv("PLANTED_SLOWDOWN", str(1 / (1 - 2 * rel) - 1))    # fps at 1 - 2 x the tolerance
    slowed = suite.runpytest("--compare-baseline", "lab", "--gate-report", "compare.json")
    assert slowed.ret == pytest.ExitCode.TESTS_FAILED
    slowed.stdout.fnmatch_lines(["*[[]FAIL[]] throughput:fps_regression:iresnet50-sleep-bs2*"])
    failed = [r for r in _json(suite, "compare.json")["records"] if r["status"] == "fail"]
    assert [r["check"] for r in failed] == ["fps_regression"] and "'lab'" in failed[0]["source"]

    missing = suite.runpytest("--compare-baseline", "nosuch")
    assert missing.ret == pytest.ExitCode.TESTS_FAILED
    missing.stdout.fnmatch_lines(["*no host baseline named 'nosuch' for this host*--save-baseline nosuch*"])


def test_save_baseline_with_nothing_measured_fails_the_run(suite):
    suite.makepyfile(test_gates=GATE_TESTS)
    result = suite.runpytest("--save-baseline", "empty")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["RUN FAILS: --save-baseline empty: no throughput was measured*"])
