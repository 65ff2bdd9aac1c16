"""The comparator against hand-computed examples (zoogate.compare)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from zoogate import baselines
from zoogate.baselines import Tolerance
from zoogate.compare import COSINE, ELEMENTWISE, INF, NAN, TOP1, compare
from zoogate.gates.agreement import agreement_gate
from zoogate.errors import ZoogateError
from zoogate.record import FAIL, PASS

# Hand-made tolerances for hand-computed examples (not gate tolerances: nothing here judges a model).
TOL = Tolerance(name="hand", why="unit-test example", atol=0.1, rtol=0.01, cosine_min=0.9, top1_agreement_min=1.0)


def test_identical_outputs_pass_with_zero_statistics():
    ref = np.array([[1.0, -2.0, 3.0], [0.5, 0.0, -0.5]], dtype=np.float32)
    c = compare(ref, ref.copy(), TOL)
    assert c.passed and c.failing_statistics == []
    assert (c.max_abs, c.mean_abs, c.p99_abs, c.rel_l2) == (0.0, 0.0, 0.0, 0.0)
    assert c.cosine == pytest.approx(1.0) and c.cosine_min == pytest.approx(1.0)
    assert c.top1_agreement == 1.0 and c.top5_agreement == 1.0
    assert c.min_atol_to_pass == 0.0 and c.min_rtol_to_pass == 0.0
    assert c.n_failing_elements == 0 and c.n_elements == 6


def test_hand_computed_statistics():
    ref = np.array([[3.0, 4.0], [0.0, 1.0]])
    cand = np.array([[3.0, 4.5], [0.2, 1.0]])
    # diffs: 0, 0.5, 0.2, 0  -> max 0.5, mean 0.175; ||d|| = sqrt(0.29), ||ref|| = sqrt(26)
    c = compare(ref, cand)
    assert c.max_abs == pytest.approx(0.5)
    assert c.mean_abs == pytest.approx(0.175)
    assert c.p99_abs == pytest.approx(np.percentile([0, 0.5, 0.2, 0], 99))
    assert c.rel_l2 == pytest.approx(math.sqrt(0.29) / math.sqrt(26))
    assert c.worst_index == (0, 1) and (c.worst_ref, c.worst_cand) == (4.0, 4.5)
    # image 0: (9 + 18) / (5 * sqrt(9 + 20.25)); image 1: 1 / sqrt(1.04)
    assert c.cosine_per_image[0] == pytest.approx(27 / (5 * math.sqrt(29.25)))
    assert c.cosine_per_image[1] == pytest.approx(1 / math.sqrt(1.04))
    assert c.cosine_min == pytest.approx(1 / math.sqrt(1.04))
    assert c.cosine == pytest.approx((9 + 18 + 1) / (math.sqrt(26) * math.sqrt(9 + 20.25 + 0.04 + 1)))
    # without a tolerance: min atol = max abs diff, min rtol = max relative diff (0.2/0 -> inf)
    assert c.min_atol_to_pass == pytest.approx(0.5)
    assert c.min_rtol_to_pass == math.inf
    assert c.passed  # statistics only


def test_element_fails_only_when_beyond_both_atol_and_rtol():
    ref = np.array([[100.0, 0.001, 10.0, 1.0]])
    # diffs:        0.5 (>atol, <=rtol*100=1) ; 0.05 (<=atol) ; 0.15 (>atol, >rtol*10=0.1) ; 0
    cand = ref + np.array([[0.5, 0.05, 0.15, 0.0]])
    c = compare(ref, cand, TOL)
    assert c.n_failing_elements == 1
    assert c.failing_statistics == [ELEMENTWISE]
    assert not c.passed
    # min atol with rtol 0.01 fixed: elements with d > 0.01|r| are 0.05 (r=0.001) and 0.15 (r=10) -> 0.15
    assert c.min_atol_to_pass == pytest.approx(0.15)
    # min rtol with atol 0.1 fixed: elements with d > 0.1 are 0.5/100 and 0.15/10 -> 0.015
    assert c.min_rtol_to_pass == pytest.approx(0.015)
    loose_atol = Tolerance("a", "t", atol=c.min_atol_to_pass, rtol=TOL.rtol, cosine_min=0.9, top1_agreement_min=1.0)
    loose_rtol = Tolerance("r", "t", atol=TOL.atol, rtol=c.min_rtol_to_pass, cosine_min=0.9, top1_agreement_min=1.0)
    assert compare(ref, cand, loose_atol).passed
    assert compare(ref, cand, loose_rtol).passed
    tighter = Tolerance("t", "t", atol=0.149, rtol=TOL.rtol, cosine_min=0.9, top1_agreement_min=1.0)
    assert not compare(ref, cand, tighter).passed


def test_near_zero_reference_is_judged_by_atol_not_rtol():
    ref = np.array([[1e-9, 2.0, -1e-12]])
    cand = np.array([[1e-3, 2.0, 2e-3]])        # relative error 1e6 and 2e9, absolute 1e-3 / 2e-3 < atol 0.1
    c = compare(ref, cand, TOL)
    assert c.passed and c.n_failing_elements == 0
    assert c.min_rtol_to_pass == 0.0            # no element exceeds atol, so no rtol is needed
    assert c.min_atol_to_pass == pytest.approx(2e-3)


def test_zero_reference_and_zero_candidate():
    z = np.zeros((2, 5))
    c = compare(z, z, TOL)
    assert c.passed and c.cosine_min == 1.0 and c.rel_l2 == 0.0
    c = compare(z, z + 1.0, TOL)                # an all-zero image against a non-zero one: orthogonal
    assert c.cosine_min == 0.0 and c.rel_l2 == math.inf
    assert c.min_rtol_to_pass == math.inf       # |d| > atol where ref == 0: no rtol can pass it
    assert {ELEMENTWISE, COSINE} <= set(c.failing_statistics)


def test_nan_in_candidate_always_fails_and_is_named():
    ref = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    cand = ref.copy()
    cand[1, 0] = np.nan
    generous = Tolerance("g", "t", atol=1e9, rtol=1e9, cosine_min=0.0, top1_agreement_min=0.0)
    c = compare(ref, cand, generous)
    assert not c.passed and NAN in c.failing_statistics and INF not in c.failing_statistics
    assert c.nan_count == 1 and c.inf_count == 0
    assert c.worst_index == (1, 0) and math.isnan(c.worst_cand)
    assert c.min_atol_to_pass == math.inf and c.min_rtol_to_pass == math.inf
    assert c.max_abs == 0.0                     # statistics over the finite elements
    assert list(c.top1_per_image) == [True, False]
    assert "NaN / Inf   : candidate 1 / 0" in c.report()
    # even with no tolerance at all
    assert not compare(ref, cand).passed


def test_inf_in_candidate_always_fails_and_is_named():
    ref = np.array([[1.0, 70000.0]])
    cand = np.array([[1.0, np.inf]])            # what an fp16 overflow looks like after the cast back
    c = compare(ref, cand, TOL)
    assert INF in c.failing_statistics and NAN not in c.failing_statistics
    assert c.inf_count == 1 and c.worst_index == (0, 1)
    assert "inf_count" in c.summary()


def test_non_finite_reference_fails():
    ref = np.array([[np.inf, 1.0]])
    c = compare(ref, np.array([[np.inf, 1.0]]), TOL)
    assert not c.passed and INF in c.failing_statistics and c.ref_inf_count == 1


def test_top1_and_top5_agreement_per_image():
    ref = np.array([[9.0, 8, 7, 6, 5, 4, 0], [9.0, 8, 7, 6, 5, 4, 0]])
    cand = ref.copy()
    cand[1, [0, 1]] = cand[1, [1, 0]]           # image 1: classes 0 and 1 swapped -> top-1 differs, top-5 set same
    cand[0, [4, 6]] = cand[0, [6, 4]]           # image 0: class 4 falls out of the top-5 -> 4/5 overlap
    c = compare(ref, cand, TOL)
    assert list(c.top1_per_image) == [True, False]
    assert c.top1_agreement == 0.5
    assert list(c.top5_per_image) == pytest.approx([0.8, 1.0])
    assert c.top5_agreement == pytest.approx(0.9)
    assert TOP1 in c.failing_statistics
    assert "top-1 agree : 1/2" in c.report()


def test_top1_threshold_is_a_fraction():
    ref = np.tile(np.arange(10.0), (4, 1))
    cand = ref.copy()
    cand[3, [9, 0]] = cand[3, [0, 9]]
    three_quarters = Tolerance("q", "t", atol=100, rtol=0, cosine_min=0.0, top1_agreement_min=0.75)
    assert compare(ref, cand, three_quarters).passed
    stricter = Tolerance("s", "t", atol=100, rtol=0, cosine_min=0.0, top1_agreement_min=0.76)
    assert compare(ref, cand, stricter).failing_statistics == [TOP1]


def test_fewer_than_five_classes_and_one_dimensional_input():
    c = compare(np.array([3.0, 1.0, 2.0]), np.array([3.0, 2.0, 1.0]), TOL)
    assert c.top5_agreement == 1.0 and c.top1_agreement == 1.0   # top-3 of 3 classes: same set
    assert len(c.cosine_per_image) == 1


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ZoogateError, match=r"shape mismatch: reference \(4, 1000\) vs candidate \(4, 1001\)"):
        compare(np.zeros((4, 1000)), np.zeros((4, 1001)))
    with pytest.raises(ZoogateError, match="shape mismatch"):
        compare(np.zeros((4, 1000)), np.zeros(4000))
    with pytest.raises(ZoogateError, match="nothing to compare"):
        compare(np.zeros((0, 10)), np.zeros((0, 10)))
    with pytest.raises(ZoogateError, match="expected real numbers"):
        compare(np.array([["a"]]), np.array([["b"]]))


def test_named_tolerance_and_non_comparator_tolerance():
    ref = np.ones((1, 4))
    assert compare(ref, ref, "fp32_cross_backend").tolerance.name == "fp32_cross_backend"
    with pytest.raises(ZoogateError, match="not a comparator tolerance"):
        compare(ref, ref, "top1_abs_pp")


def test_report_names_every_statistic_and_the_failing_one():
    ref = np.array([[1.0, 2.0, 3.0]])
    c = compare(ref, ref + [[0.0, 0.0, 0.5]], TOL, names=("pytorch", "onnxruntime"))
    text = c.report()
    for label in ("max abs", "mean abs", "p99 abs", "relative L2", "cosine", "top-1 agree", "top-5 agree",
                  "NaN / Inf", "to pass", "worst elem."):
        assert label in text
    assert "verdict     : FAIL on elementwise" in text
    assert "onnxruntime vs pytorch" in text
    assert "[0, 2]" in text


def test_agreement_gate_record():
    ref = np.array([[1.0, 2.0, 3.0]])
    ok = agreement_gate("m", "onnxruntime", 1, ref, ref, "fp32_cross_backend", source="eager")
    assert ok.status == PASS and ok.gate == "agreement" and ok.measured == 0.0 and ok.bs == 1
    assert ok.tolerance.startswith("fp32_cross_backend")
    bad = agreement_gate("m", "onnxruntime", 1, ref, ref + 1.0, "fp32_cross_backend", source="eager")
    assert bad.status == FAIL
    assert "elementwise" in bad.reason
    assert "verdict     : FAIL on elementwise" in bad.explain()   # the report is part of the failure text
    assert bad.details["failing_statistics"][0] == ELEMENTWISE
    d = bad.to_dict()
    assert "report_text" not in d["details"] and d["details"]["max_abs"] == 1.0


def test_fp32_cross_backend_tolerance_is_a_comparator_tolerance():
    tol = baselines.tolerance("fp32_cross_backend")
    assert None not in (tol.atol, tol.rtol, tol.cosine_min, tol.top1_agreement_min)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, (3, 7), elements=st.floats(-1e3, 1e3)),
       hnp.arrays(np.float64, (3, 7), elements=st.floats(-1.0, 1.0)))
def test_min_tolerances_are_tight(ref, noise):
    """With the reported min atol the comparison passes; any visibly smaller atol fails (when it was needed)."""
    cand = ref + noise
    c = compare(ref, cand, TOL)
    with_atol = Tolerance("x", "t", atol=c.min_atol_to_pass, rtol=TOL.rtol, cosine_min=-1.0, top1_agreement_min=0.0)
    assert ELEMENTWISE not in compare(ref, cand, with_atol).failing_statistics
    if c.min_atol_to_pass > 0:
        below = min(c.min_atol_to_pass * (1 - 1e-6), float(np.nextafter(c.min_atol_to_pass, 0.0)))   # subnormals
        smaller = Tolerance("y", "t", atol=below, rtol=TOL.rtol, cosine_min=-1.0,
                            top1_agreement_min=0.0)
        assert ELEMENTWISE in compare(ref, cand, smaller).failing_statistics
    assert c.max_abs >= c.p99_abs >= 0 and c.max_abs * (1 + 1e-12) >= c.mean_abs   # mean may round up by an ulp
    assert (c.n_failing_elements == 0) == (ELEMENTWISE not in c.failing_statistics)
