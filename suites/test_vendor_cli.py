"""Parsing what the vendor command lines write: the ais_bench throughput line and *_summary.json."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoogate import vendor_cli
from zoogate.errors import ZoogateError

# An ais_bench run as the Ascend guide (seed 001) shows it; numbers from its 310P3 table (bs 4: 1498.5 fps).
LOG = """\
[INFO] acl init success
[INFO] open device 0 success
[INFO] load model inceptionv4_bs4.om success
[INFO] -----------------Performance Summary------------------
[INFO] H2D_latency (ms): min = 0.84, max = 1.97, mean = 0.99, median = 0.97, percentile(99%) = 1.41
[INFO] NPU_compute_time (ms): min = 2.61, max = 2.79, mean = 2.67, median = 2.66, percentile(99%) = 2.77
[INFO] D2H_latency (ms): min = 0.03, max = 0.07, mean = 0.04, median = 0.04, percentile(99%) = 0.06
[INFO] throughput 1000*batchsize.mean(4)/NPU_compute_time.mean(2.6693): 1498.5
[INFO] ------------------------------------------------------
[INFO] unload model success, model Id is 1
"""


def _summary(**over) -> dict:
    stats = {"min": 2.61, "max": 2.79, "mean": 2.67, "median": 2.66, "percentile(99%)": 2.77, "count": 100}
    data = {"NPU_compute_time": dict(stats), "H2D_latency": {**stats, "mean": 0.99},
            "D2H_latency": {**stats, "mean": 0.04}, "throughput": 1498.5, "pid": 4242,
            "filesinfo": {}, "npu_compute_time_list": [2.6] * 3}
    data.update(over)
    return data


def test_throughput_line_from_a_log_file(tmp_path):
    log = tmp_path / "ais_bench.log"
    log.write_text(LOG)
    t = vendor_cli.read_throughput_log(log)
    assert t.fps == 1498.5 and t.batchsize == 4.0 and t.npu_compute_mean_ms == 2.6693
    assert t.line_no == 8 and t.line.startswith("[INFO] throughput")


def test_example_line_of_the_reference_notes():
    t = vendor_cli.parse_throughput_line("[INFO] throughput 1000*batchsize.mean(8)/NPU_compute_time.mean(5.3): 1509.4")
    assert (t.fps, t.batchsize, t.npu_compute_mean_ms) == (1509.4, 8.0, 5.3)


def test_newer_capitalised_line_and_the_last_run_counts():
    text = ("[INFO] throughput 1000*batchsize.mean(1)/NPU_compute_time.mean(1.3): 761.4\n"
            "2024-01-01 10:00:00 - INFO - Throughput 1000*batchsize.mean(4.0)/NPU_compute_time.mean(2.67): 1498.5\n")
    t = vendor_cli.throughput_from_text(text)
    assert t.fps == 1498.5 and t.batchsize == 4.0 and t.line_no == 2


def test_non_throughput_lines_are_ignored():
    assert vendor_cli.parse_throughput_line("[INFO] NPU_compute_time (ms): min = 2.61, mean = 2.67") is None
    assert vendor_cli.parse_throughput_line("") is None


@settings(max_examples=40, deadline=None)
@given(fps=st.floats(min_value=0, max_value=1e6, allow_nan=False), bs=st.integers(1, 256))
def test_any_printed_throughput_round_trips(fps, bs):
    line = f"[INFO] throughput 1000*batchsize.mean({bs})/NPU_compute_time.mean(1.5): {fps}"
    assert vendor_cli.parse_throughput_line(line).fps == fps


def test_log_without_throughput_names_the_file(tmp_path):
    log = tmp_path / "partial.log"
    log.write_text("[INFO] acl init success\n[ERROR] model load failed\n")
    with pytest.raises(ZoogateError, match="no ais_bench throughput line") as err:
        vendor_cli.read_throughput_log(log)
    assert str(log) in str(err.value)


@pytest.mark.parametrize("tail", ["", "abc", "1509.4 fps", "-3.0", "nan"])
def test_malformed_throughput_line_names_file_and_line(tmp_path, tail):
    log = tmp_path / "bad.log"
    log.write_text(f"[INFO] start\n[INFO] throughput 1000*batchsize.mean(8)/NPU_compute_time.mean(5.3): {tail}\n")
    with pytest.raises(ZoogateError, match="line 2: throughput") as err:
        vendor_cli.read_throughput_log(log)
    assert str(log) in str(err.value)


def test_missing_log_file(tmp_path):
    with pytest.raises(ZoogateError, match="cannot read ais_bench log"):
        vendor_cli.read_throughput_log(tmp_path / "nope.log")


def test_summary_json(tmp_path):
    path = tmp_path / "result_bs4_summary.json"
    path.write_text(json.dumps(_summary()))
    s = vendor_cli.read_summary_json(path)
    assert s.throughput == 1498.5 and s.path == str(path)
    npu = s.npu_compute_time
    assert (npu.min, npu.max, npu.mean, npu.median, npu.percentile, npu.percentile_level, npu.count) == \
        (2.61, 2.79, 2.67, 2.66, 2.77, 99.0, 100)
    assert s.h2d_latency.mean == 0.99 and s.d2h_latency.mean == 0.04


def test_summary_json_newer_p99_key_and_older_without_count(tmp_path):
    stats = {"min": 1.0, "max": 3.0, "mean": 2.0, "median": 2.0, "P99": 2.9}
    path = tmp_path / "out_summary.json"
    path.write_text(json.dumps({"NPU_compute_time": stats, "throughput": 500.0}))
    s = vendor_cli.read_summary_json(path)
    assert s.npu_compute_time.percentile == 2.9 and s.npu_compute_time.percentile_level == 99.0
    assert s.npu_compute_time.count is None and s.h2d_latency is None and s.d2h_latency is None


@pytest.mark.parametrize("data, problem", [
    ({"throughput": 1.0}, "NPU_compute_time: missing"),
    (_summary(throughput="fast"), "throughput: expected a finite number"),
    ({k: v for k, v in _summary().items() if k != "throughput"}, "throughput: missing"),
    (_summary(throughput=-1.0), "throughput: negative"),
    (_summary(NPU_compute_time={"min": 1.0, "max": 2.0, "median": 1.5}), "NPU_compute_time.mean: missing"),
    (_summary(NPU_compute_time={"min": 3.0, "max": 2.0, "mean": 2.5, "median": 2.5}), "min 3.0 > max 2.0"),
    (_summary(H2D_latency=[1, 2]), "H2D_latency: expected an object"),
    (_summary(D2H_latency={"min": 0, "max": 1, "mean": 0.5, "median": 0.5, "count": 2.5}), "D2H_latency.count"),
    ([1, 2, 3], "expected a JSON object"),
], ids=["no-npu-time", "throughput-text", "no-throughput", "negative", "no-mean", "min-gt-max", "h2d-list",
        "bad-count", "not-object"])
def test_malformed_summary_names_file_and_key(tmp_path, data, problem):
    path = tmp_path / "x_summary.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ZoogateError, match=problem.replace("(", r"\(")) as err:
        vendor_cli.read_summary_json(path)
    assert str(path) in str(err.value)


def test_summary_not_json_or_missing(tmp_path):
    path = tmp_path / "trunc_summary.json"
    path.write_text('{"NPU_compute_time": {"min": 1')
    with pytest.raises(ZoogateError, match="not valid JSON"):
        vendor_cli.read_summary_json(path)
    with pytest.raises(ZoogateError, match="cannot read ais_bench summary"):
        vendor_cli.read_summary_json(tmp_path / "none_summary.json")


def test_summary_files_are_recognised_for_scorers_to_skip(tmp_path):
    (tmp_path / "result_bs4").mkdir()
    (tmp_path / "result_bs4_summary.json").write_text(json.dumps(_summary()))
    (tmp_path / "ILSVRC2012_val_00000001_0.txt").write_text("0.1 0.2 \n")
    assert vendor_cli.find_summaries(tmp_path) == [tmp_path / "result_bs4_summary.json"]
    assert vendor_cli.is_summary_file("out/result_bs4_summary.json")
    assert not vendor_cli.is_summary_file("out/ILSVRC2012_val_00000001_0.txt")
    with pytest.raises(ZoogateError, match="not a directory"):
        vendor_cli.find_summaries(tmp_path / "missing")


# ---------------------------------------------------------------- multi-device runs (--device 0,1)

# 2023: the per-device lines are bare prints; each device's own run logs its summary before them.
MULTI_2023 = """\
[INFO] multidevice:[1, 2] run begin
[INFO] throughput 1000*batchsize.mean(1)/NPU_compute_time.mean(3.5538000106811523): 281.38893494131406
[INFO] throughput 1000*batchsize.mean(1)/NPU_compute_time.mean(3.6741): 276.5487111085682
[INFO] multidevice run end qsize:4 result:1
i:0 device_1 throughput:281.38893494131406 start_time:1676875630.804429 end_time:1676875630.8303885
i:1 device_2 throughput:276.5487111085682 start_time:1676875630.8043716 end_time:1676875630.8308408
[INFO] summary throughput:557.9376460498822
"""
# 2025: through the logger, with 17 spaces between the throughput and start_time.
MULTI_2025 = ("[INFO] i:1 device_3 throughput:500.25" + " " * 17 + "start_time:1700000000.5 end_time:1700000010.25\n"
              "[INFO] i:0 device_2 throughput:499.75" + " " * 17 + "start_time:1700000000.25 end_time:1700000010.5\n"
              "[INFO] summary throughput:1000.0\n")


def test_a_2023_multi_device_log_is_read_per_device_and_summed(tmp_path):
    log = tmp_path / "multi.log"
    log.write_text(MULTI_2023)
    parsed = vendor_cli.read_log(log)
    assert parsed.multi_device and [(d.index, d.device) for d in parsed.devices] == [(0, 1), (1, 2)]
    assert [d.fps for d in parsed.devices] == [281.38893494131406, 276.5487111085682]     # never the end_time
    assert parsed.devices[0].end_time == 1676875630.8303885 and parsed.devices[0].line_no == 5
    assert parsed.summary_fps == 557.9376460498822 and parsed.summed_fps == parsed.summary_fps == parsed.fps
    assert [r.fps for r in parsed.runs] == [281.38893494131406, 276.5487111085682]      # each device's own summary
    assert vendor_cli.throughput_from_text(MULTI_2023).fps == 276.5487111085682


def test_a_2025_multi_device_log_with_the_logger_prefix_and_spaces():
    parsed = vendor_cli.log_from_text(MULTI_2025)
    assert [(d.index, d.device, d.fps) for d in parsed.devices] == [(0, 2, 499.75), (1, 3, 500.25)]
    assert parsed.fps == 1000.0 and parsed.runs == ()
    with pytest.raises(ZoogateError, match="it holds a multi-device run"):
        vendor_cli.throughput_from_text(MULTI_2025)


def test_device_and_summary_lines_are_not_single_device_throughputs():
    line = "i:0 device_1 throughput:281.38893494131406 start_time:1676875630.804429 end_time:1676875630.8303885"
    assert vendor_cli.parse_throughput_line(line) is None
    assert vendor_cli.parse_throughput_line("[INFO] summary throughput:557.93") is None
    assert vendor_cli.parse_device_line(line).fps == 281.38893494131406
    assert vendor_cli.parse_summary_line("[INFO] summary throughput:557.93") == 557.93
    assert vendor_cli.log_from_text(LOG).devices == () and vendor_cli.log_from_text(LOG).fps == 1498.5


def test_the_last_complete_block_counts():
    text = MULTI_2023 + MULTI_2025
    assert vendor_cli.log_from_text(text).fps == 1000.0
    interrupted = vendor_cli.log_from_text(MULTI_2025 + MULTI_2023.splitlines(keepends=True)[4])
    assert interrupted.fps == 1000.0 and "have no summary line after them" in interrupted.notes[0]


@pytest.mark.parametrize("text, problem", [
    (MULTI_2025.replace("summary throughput:1000.0", "summary throughput:1200.0"),
     "line 3: summary throughput 1200.0 is not the sum of its 2 device lines"),
    (MULTI_2025.rsplit("\n", 2)[0] + "\n", "2 per-device throughput line\\(s\\) from line 1 but no '\\[INFO\\] summary"),
    (MULTI_2025.replace("i:0 device_2", "i:1 device_2"), "line 2: device line i:1 again \\(first on line 1\\)"),
    (MULTI_2025.replace("throughput:500.25", "throughput:fast"), "line 1: device throughput 'fast' is not a number"),
    (MULTI_2025.replace("end_time:1700000010.25", "end_time:1699999999.0"), "line 1: end_time .* before start_time"),
    ("[INFO] i:0 device_1 throughput:3.0\n", "line 1: per-device line is not"),
    ("[INFO] summary throughput:3.0\n", "line 1: summary throughput line without per-device lines"),
], ids=["sum", "no-summary", "same-index", "fps-text", "time-order", "no-times", "summary-alone"])
def test_malformed_multi_device_logs_name_file_and_line(tmp_path, text, problem):
    log = tmp_path / "bad.log"
    log.write_text(text)
    with pytest.raises(ZoogateError, match=problem) as err:
        vendor_cli.read_log(log)
    assert str(log) in str(err.value)


@settings(max_examples=40, deadline=None)
@given(fps=st.lists(st.floats(min_value=0, max_value=1e5, allow_nan=False), min_size=1, max_size=8),
       style=st.sampled_from(["2023", "2025"]))
def test_any_printed_multi_device_run_round_trips(fps, style):
    prefix, gap = ("", " ") if style == "2023" else ("[INFO] ", " " * 17)
    lines = [f"{prefix}i:{i} device_{i + 4} throughput:{v}{gap}start_time:1.5 end_time:2.5" for i, v in enumerate(fps)]
    text = "\n".join(lines + [f"[INFO] summary throughput:{sum(fps)}"])
    parsed = vendor_cli.log_from_text(text)
    assert [d.fps for d in parsed.devices] == fps and parsed.fps == sum(fps)
