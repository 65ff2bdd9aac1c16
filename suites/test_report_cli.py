"""`zoogate report PATH` and `zoogate diff OLD NEW`: output and exit codes."""

from __future__ import annotations

import json

import pytest

from zoogate import baselines
from zoogate.cli import main
from zoogate.record import FAIL, PASS, SKIP, GateRecord
from zoogate.report import build_report, write_report


def _write(path, *, top1=80.1, fps=20.0, status=PASS, problems=()):
    recs = [
        GateRecord(gate="accuracy", check="top1", model="inception_v4", status=status, measured=top1, baseline=80.162,
                   source="000: 模型性能", tolerance="top1_abs_pp=0.5", reason="measured vs documented",
                   runner="onnxruntime", bs=8),
        GateRecord(gate="throughput", check="fps_floor", model="inception_v4", status=SKIP, measured=fps,
                   baseline=None, source="", tolerance="fps_floor_rel=0.1", reason="no documented row",
                   runner="onnxruntime", bs=1, details={"measurement": {"fps": fps}}),
    ]
    return write_report(build_report(recs, environment={"host_id": "lab-host"}, run={"problems": list(problems)}),
                        path)


def test_report_reprints_the_table(tmp_path, capsys):
    path = _write(tmp_path / "r.json")
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert "host lab-host" in out and "2 gate records: 1 pass, 0 fail, 0 inconclusive, 1 skip" in out
    assert "PASS" in out and "accuracy" in out and "top1_abs_pp=0.5" in out and "no documented row" in out


def test_report_exits_1_when_the_saved_run_failed(tmp_path, capsys):
    assert main(["report", str(_write(tmp_path / "f.json", status=FAIL))]) == 1
    assert main(["report", "--failed", str(_write(tmp_path / "f.json", status=FAIL))]) == 1
    assert "[FAIL] accuracy:top1:inception_v4-onnxruntime-bs8" in capsys.readouterr().out
    assert main(["report", str(_write(tmp_path / "p.json", problems=["--require ascend: all skipped"]))]) == 1
    assert "--require ascend: all skipped" in capsys.readouterr().out


def test_report_of_a_malformed_file_exits_2_naming_it(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "zoogate.gate-report", "version": 1, "records": "nope"}))
    assert main(["report", str(bad)]) == 2
    assert f"zoogate report: error: {bad}: records: missing or not a list" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    assert "gate report not found" in capsys.readouterr().err


def test_diff_exits_1_on_a_regression_and_says_which(tmp_path, capsys):
    top1_tol = baselines.tolerance("top1_abs_pp").value
    fps_tol = baselines.tolerance("fps_regression_rel").value
    old = _write(tmp_path / "old.json")
    fine = _write(tmp_path / "fine.json", top1=80.1 - top1_tol / 2, fps=20.0 * (1 - fps_tol / 2))
    assert main(["diff", str(old), str(fine)]) == 0
    out = capsys.readouterr().out
    assert "[changed] accuracy:top1:inception_v4-onnxruntime-bs8" in out and "0 regression(s)" in out

    worse = _write(tmp_path / "worse.json", top1=80.1 - 2 * top1_tol, fps=20.0 * (1 - 2 * fps_tol))
    assert main(["diff", str(old), str(worse)]) == 1
    out = capsys.readouterr().out
    assert "[REGRESSION] accuracy:top1:inception_v4-onnxruntime-bs8" in out
    assert "[REGRESSION] throughput:fps:inception_v4-onnxruntime-bs1" in out and "2 regression(s)" in out


def test_diff_strict_counts_coverage_lost(tmp_path, capsys):
    old = _write(tmp_path / "old.json")
    skipped = tmp_path / "skipped.json"
    write_report(
        build_report(
            [
                GateRecord(gate="accuracy", check="top1", model="inception_v4", status=SKIP, reason="no ImageNet",
                           runner="onnxruntime", bs=8)
            ]
        ),
        skipped,
    )
    assert main(["diff", str(old), str(skipped)]) == 0
    assert "coverage lost" in capsys.readouterr().out
    assert main(["diff", "--strict", str(old), str(skipped)]) == 1


@pytest.mark.parametrize("which", ["old", "new"])
def test_diff_of_a_malformed_file_exits_2(tmp_path, capsys, which):
    good = _write(tmp_path / "good.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    args = [str(bad), str(good)] if which == "old" else [str(good), str(bad)]
    assert main(["diff", *args]) == 2
    assert f"{bad}: not a gate report: invalid JSON" in capsys.readouterr().err
