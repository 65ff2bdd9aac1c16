"""Offline accuracy of a device's result folder, the pytest form of `zoogate score`:

    pytest suites/test_accuracy_offline.py --results OUT/result_bs4 --labels val_label.txt \\
        --models inception_v4_1001 --baseline-row ascend-310p3

Both front ends call zoogate.accuracy.score_offline, so they cannot disagree. Without --results the gates
skip saying what to pass; the self-tests below run the pytest form on planted folders.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zoogate.datasets import write_label_file
from zoogate.plugin.accuracy import AccuracyOptions, OfflineScoring
from zoogate.results import write_ais_bench

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("check", ["top1", "top5", "label_offset"])
def test_result_folder(check, offline_scoring, gate_log):
    model, scored, records = offline_scoring.get()
    (record,) = [r for r in records if r.check == check]
    record.details.update(scored.provenance())
    gate_log(record)


def _folder(tmp_path: Path, correct: int, n: int = 200, label_shift: int = 0, fmt: str = "txt") -> tuple[Path, Path]:
    """A 1001-class ais_bench folder of n images, the first `correct` right at top-1 and top-5."""
    rng = np.random.default_rng(5)
    stems = [f"ILSVRC2012_val_{i:08d}" for i in range(1, n + 1)]
    labels = rng.integers(0, 999, n)       # room for a planted +1 shift inside 0..999
    logits = rng.standard_normal((n, 1001)).astype(np.float32)
    logits[np.arange(correct), labels[:correct] + 1] = 25.0
    extra = int(correct * 0.19)      # top-5 only: the label 2nd
    idx = np.arange(correct, correct + extra)
    logits[idx, (labels[idx] + 3) % 1001] = 30.0
    logits[idx, labels[idx] + 1] = 25.0
    folder = write_ais_bench(tmp_path / "out" / "result_bs4", stems, logits, fmt)
    labels_file = write_label_file(tmp_path / "val_label.txt",
                                   [(f"{s}.JPEG", int(l) + label_shift) for s, l in zip(stems, labels)])
    return folder, labels_file


def _pytest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", str(Path(__file__)), "-q", "-p", "no:cacheprovider",
                           "-p", "no:randomly", "-W", "ignore::DeprecationWarning", "-k", "test_result_folder",
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_pytest_form_fails_a_planted_offset(tmp_path):
    planted, labels = _folder(tmp_path, correct=160, label_shift=1)    # 1-based label file
    run = _pytest("--results", str(planted), "--labels", str(labels), "--models", "inception_v4_1001",
                  "--gate-report", str(tmp_path / "planted.json"))
    assert run.returncode == 1
    assert "3 failed" in run.stdout and "labels look off by -1" in run.stdout


def test_offline_scoring_glue_passes_a_good_folder(tmp_path):
    # 3000 images: enough for the widened interval to fit accuracy_interval_max_pp (200 would be INCONCLUSIVE)
    good, labels = _folder(tmp_path, correct=2400, n=3000, fmt="bin")
    options = AccuracyOptions(imagenet=None, limit=None, resume=False, results=str(good), labels=str(labels),
                              baseline_row="ascend-310p3", models=("inception_v4_1001",))
    model, scored, records = OfflineScoring(options).get()
    assert model == "inception_v4_1001" and scored.summary.n == 3000
    assert [(r.check, r.status) for r in records] == [("top1", "pass"), ("top5", "pass"), ("label_offset", "pass"),
                                                       ("num_classes", "pass")]
    assert records[0].baseline == 79.99 and records[0].details["row"] == "ascend-310p3"


@pytest.mark.parametrize("given, missing", [({}, "pass --results DIR --labels FILE --models M"),
                                            ({"results": "r"}, "missing --labels"),
                                            ({"results": "r", "labels": "l"}, "--models M")])
def test_offline_scoring_skips_saying_what_is_missing(given, missing):
    options = AccuracyOptions(**{"imagenet": None, "limit": None, "resume": False, "results": None, "labels": None,
                                 "baseline_row": None, "models": None, **given})
    with pytest.raises(pytest.skip.Exception, match=missing):
        OfflineScoring(options).get()


def test_offline_scoring_glue_passes_the_output_dtype(tmp_path):
    """--output-dtype reaches the reader: fp16 BIN files pinned as fp32 are refused, naming the sizes."""
    good, labels = _folder(tmp_path, correct=8, n=10, fmt="bin")          # written as fp32: 4004 bytes
    options = AccuracyOptions(imagenet=None, limit=None, resume=False, results=str(good), labels=str(labels),
                              baseline_row=None, models=("inception_v4_1001",), output_dtype="fp16")
    with pytest.raises(pytest.fail.Exception, match=r"4004 bytes is no output of fp16 .* expected 2000 or 2002"):
        OfflineScoring(options).get()


def test_a_documented_regression_row_can_never_pass(tmp_path, capsys):
    """VastModelZOO's int8 inception_v4 row (top-1 16.368, 20 % of the model's 80.162) is flagged in
    `zoogate models` and refused as the baseline a result folder claims, even by results that beat it."""
    import json

    from zoogate import baselines, cli

    mb = baselines.model("inception_v4")
    assert "documented regression" in mb.documented_regression(mb.row("vacc-int8"))
    assert mb.documented_regression(mb.row("vacc-fp16")) is None            # 79.998: 99.8 % of the reference
    assert cli.main(["models", "--json", "--no-measure"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert [d["row"] for d in listed["inception_v4"]["documented_regressions"]] == ["vacc-int8"]
    rng = np.random.default_rng(3)
    stems = [f"ILSVRC2012_val_{i:08d}" for i in range(1, 101)]
    labels = rng.integers(0, 1000, len(stems))
    logits = rng.standard_normal((len(stems), 1000)).astype(np.float32)
    logits[np.arange(30), labels[:30]] = 25.0                               # 30 % top-1: above 16.368
    folder = write_ais_bench(tmp_path / "result", stems, logits, "txt")
    label_file = write_label_file(tmp_path / "val_label.txt", [(f"{s}.JPEG", int(l)) for s, l in zip(stems, labels)])
    code = cli.main(["score", "--model", "inception_v4", "--results", str(folder), "--labels", str(label_file),
                     "--baseline-row", "vacc-int8"])
    err = capsys.readouterr().err
    assert code == 2 and "documented regression" in err and "never be the passing baseline" in err
