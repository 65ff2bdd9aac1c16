"""Top-k counting (tie rule), Wilson intervals and the two accuracy JSON shapes (zoogate.metrics)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from zoogate.errors import ZoogateError
from zoogate.metrics import (AccuracySummary, TopkCounter, class_shift, label_ranks, modelzoo_metrics, rich_metrics,
                             topk_indices, wilson_interval, write_json_atomic)


def _brute_rank(row: list[float], target: int) -> int:
    """Position of target when classes are listed best first, equal scores by lower index."""
    order = sorted(range(len(row)), key=lambda j: (-row[j], j))
    return order.index(target)


# small integer-valued scores force many exact ties
_scores = hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 12)),
                     elements=st.integers(-3, 3).map(float))


@settings(max_examples=60, deadline=None)
@given(scores=_scores, data=st.data())
def test_label_ranks_follow_the_tie_rule(scores, data):
    targets = np.array([data.draw(st.integers(0, scores.shape[1] - 1)) for _ in range(scores.shape[0])])
    expected = [_brute_rank(scores[i].tolist(), int(targets[i])) for i in range(scores.shape[0])]
    assert label_ranks(scores, targets).tolist() == expected


@settings(max_examples=40, deadline=None)
@given(scores=_scores)
def test_topk_indices_is_the_stable_descending_order(scores):
    k = min(5, scores.shape[1])
    expected = [sorted(range(scores.shape[1]), key=lambda j: (-scores[i, j], j))[:k] for i in range(scores.shape[0])]
    assert topk_indices(scores).tolist() == expected


def test_ties_go_to_the_lower_class_index():
    scores = np.array([[1.0, 5.0, 5.0, 0.0]])
    assert label_ranks(scores, np.array([1])).tolist() == [0]
    assert label_ranks(scores, np.array([2])).tolist() == [1]
    assert topk_indices(scores).tolist() == [[1, 2, 0, 3]]


def test_counting_from_scores_and_from_top5_agree():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((64, 1001))
    labels = rng.integers(0, 1000, 64)
    scores[np.arange(40), labels[:40] + 1] += 10.0           # 1001 classes: label +1
    a, b = TopkCounter(1001), TopkCounter(1001)
    a.add_scores(scores, labels)
    b.add_topk(topk_indices(scores), labels)
    assert a.summary() == b.summary()
    assert a.summary().hits[0] >= 40


def test_class_count_other_than_1000_or_1001_is_an_error():
    assert class_shift(1000) == 0 and class_shift(1001) == 1
    with pytest.raises(ZoogateError, match="999 classes"):
        class_shift(999, "out/x_0.txt")


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(8, 10, 0.95)               # textbook example: (0.4902, 0.9433)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    assert wilson_interval(0, 50, 0.99)[0] == 0.0
    assert wilson_interval(50, 50, 0.99)[1] == 1.0


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 100_000), data=st.data())
def test_wilson_interval_contains_the_estimate_and_widens_with_confidence(n, data):
    k = data.draw(st.integers(0, n))
    lo95, hi95 = wilson_interval(k, n, 0.95)
    lo99, hi99 = wilson_interval(k, n, 0.99)
    assert lo99 <= lo95 <= k / n <= hi95 <= hi99
    assert 0.0 <= lo99 and hi99 <= 1.0


def test_modelzoo_metrics_shape():
    s = AccuracySummary(n=50_000, hits=(39_995, 44_000, 46_000, 47_000, 47_430), num_classes=1001)
    m = modelzoo_metrics(s)
    assert m["title"] == "Overall statistical evaluation"
    assert [v["key"] for v in m["value"]] == ["Number of images", "Number of classes", "Top1 accuracy",
                                              "Top2 accuracy", "Top3 accuracy", "Top4 accuracy", "Top5 accuracy"]
    assert m["value"][0]["value"] == "50000" and m["value"][1]["value"] == "1001"
    assert m["value"][2]["value"] == "79.99%" and m["value"][6]["value"] == "94.86%"
    assert all(isinstance(v["value"], str) for v in m["value"])


def test_rich_metrics_records_what_was_assumed(tmp_path):
    s = AccuracySummary(n=200, hits=(160, 170, 180, 185, 190), num_classes=1001, offset_top1={-1: 1, 1: 0})
    rich = rich_metrics(s, model="inception_v4_1001", row="ascend-310p3", confidence=0.99,
                        provenance={"results": "out/"}, skipped=["x_1.txt"])
    assert rich["top1"] == 80.0 and rich["top5"] == 95.0 and rich["n"] == 200
    assert rich["top1_interval"][0] < 80.0 < rich["top1_interval"][1]
    assert "background" in rich["classes_assumed"] and rich["files_skipped"] == ["x_1.txt"]
    path = write_json_atomic(tmp_path / "sub" / "rich.json", rich)
    assert json.loads(path.read_text())["baseline_row"] == "ascend-310p3"
    assert [p.name for p in path.parent.iterdir()] == ["rich.json"]        # no temp file left behind
