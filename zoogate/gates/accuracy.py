"""Accuracy gates (gate="accuracy"): top-1/top-5 of a run against what it claims, and the checks that keep a
score honest.

- ``documented_gate``   check top1/top5: measured vs the baseline row the run claims (tolerance
  top1_abs_pp / top5_abs_pp). On a subset the gate fails only when the documented value lies outside the
  measured Wilson interval (confidence wilson_confidence) widened by the tolerance, and is INCONCLUSIVE
  when that widened interval is wider than accuracy_interval_max_pp (too few images to tell). A row that
  documents no such number, or an informational row, is INCONCLUSIVE: there is nothing to pass against.
- ``reference_gate``    check top1_vs_reference: measured top-1 >= reference_agreement_top1 x the fp32
  reference run's top-1 on the same images (MLPerf's 99 % rule).
- ``label_offset_gate`` check label_offset: fails when shifting the labels by one class scores far better
  than the labels as scored (a 1000/1001 background mix-up can never pass silently).
- ``build_identity_gate`` / ``resume_gate`` check build_identity: saved partial results of another build
  fail the run; a resumed run of the same build must equal an uninterrupted one, image by image.

``diff_value``: a drop of top-1 / top-5 beyond top1_abs_pp / top5_abs_pp between two reports is a regression.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from zoogate import baselines
from zoogate.datasets import IMAGENET_VAL_SIZE
from zoogate.errors import ZoogateError
from zoogate.gates._diff import number, tolerance_named
from zoogate.identity import differences
from zoogate.metrics import AccuracySummary, wilson_interval
from zoogate.record import FAIL, INCONCLUSIVE, PASS, SKIP, GateRecord, at_least

if TYPE_CHECKING:
    from zoogate.accuracy import EvalResult

NO_IMAGENET = "no ImageNet: pass --imagenet DIR"
_ROUNDING_PP = 1e-9             # float rounding of hits / n * 100 at a boundary; not a tolerance


def _pp(fraction: float) -> float:
    return fraction * 100.0


def documented_gate(model: str, summary: AccuracySummary, check: str = "top1", row: str | None = None, *,
                    runner: str = "-", bs: int | None = None, full_size: int = IMAGENET_VAL_SIZE) -> GateRecord:
    """Measured top-1/top-5 against the documented row (reference row by default)."""
    if check not in ("top1", "top5"):
        raise ValueError(f"check must be top1 or top5, got {check!r}")
    k = 1 if check == "top1" else 5
    mb = baselines.model(model)
    r = mb.row(row)
    regression = mb.documented_regression(r)
    if regression:
        raise ZoogateError(f"{regression}, which can never be the passing baseline; claim the reference row or "
                           "another device row", mb.file)
    documented = r.top1 if k == 1 else r.top5
    tol = baselines.tolerance(f"{check}_abs_pp")
    confidence = baselines.tolerance("wilson_confidence").value
    measured = _pp(summary.accuracy(k))
    details = {"n": summary.n, "hits": summary.hits[k - 1], "row": r.id, "classes_assumed": summary.classes_assumed,
               "nonfinite_rows": summary.nonfinite_rows}
    if r.num_classes and r.num_classes != summary.num_classes:
        details["class_count_note"] = (f"row {r.id} documents {r.num_classes} classes, the outputs have "
                                       f"{summary.num_classes}")
    if r.informational:
        return GateRecord(gate="accuracy", check=check, model=model, status=INCONCLUSIVE, measured=measured,
                          baseline=documented, source=r.source, tolerance=str(tol),
                          reason=f"baseline row {r.id} is informational ({r.framework}): it documents no inference "
                                 f"{check} a run can be gated against; claim another row", runner=runner, bs=bs,
                          details=details)
    if documented is None:
        return GateRecord(gate="accuracy", check=check, model=model, status=INCONCLUSIVE, measured=measured,
                          baseline=None, source=r.source, tolerance=str(tol),
                          reason=f"baseline row {r.id} documents no {check}: the claim cannot be checked",
                          runner=runner, bs=bs, details=details)
    if summary.n == 0:
        return GateRecord(gate="accuracy", check=check, model=model, status=INCONCLUSIVE, measured=None,
                          baseline=documented, source=r.source, tolerance=str(tol), reason="no images were scored",
                          runner=runner, bs=bs, details=details)
    if summary.n >= full_size:
        diff = measured - documented
        ok = abs(diff) <= tol.value + _ROUNDING_PP
        reason = (f"{check} {measured:.3f} % on all {summary.n} images vs documented {documented:g} % "
                  f"(row {r.id}): diff {diff:+.3f} pp, allowed +/-{tol.value:g} pp")
        details.update(diff_pp=diff, allowed_pp=tol.value)
        return GateRecord(gate="accuracy", check=check, model=model, status=PASS if ok else FAIL, measured=measured,
                          baseline=documented, source=r.source, tolerance=str(tol), reason=reason, runner=runner,
                          bs=bs, details=details)
    lo, hi = (_pp(v) for v in wilson_interval(summary.hits[k - 1], summary.n, confidence))
    wide_lo, wide_hi = max(0.0, lo - tol.value), min(100.0, hi + tol.value)
    ok = wide_lo - _ROUNDING_PP <= documented <= wide_hi + _ROUNDING_PP
    max_width = baselines.tolerance("accuracy_interval_max_pp")
    reason = (f"{check} {measured:.3f} % on a subset of {summary.n} images: Wilson {confidence:.0%} interval "
              f"[{lo:.3f}, {hi:.3f}] %, widened by +/-{tol.value:g} pp to [{wide_lo:.3f}, {wide_hi:.3f}] %, "
              f"{'contains' if ok else 'excludes'} documented {documented:g} % (row {r.id})")
    details.update(interval_pp=[lo, hi], widened_pp=[wide_lo, wide_hi], confidence=confidence, subset=True)
    status = PASS if ok else FAIL
    if ok and wide_hi - wide_lo > max_width.value + _ROUNDING_PP:
        status = INCONCLUSIVE
        needed = images_to_decide(documented / 100.0, confidence, (max_width.value - 2 * tol.value) / 100.0)
        reason += (f"; but that interval spans {wide_hi - wide_lo:.1f} pp, wider than {max_width.value:g} pp "
                   f"({max_width.name}): too few images to tell"
                   + (f" (about {needed} would decide it)" if needed else ""))
        details.update(images_to_decide=needed)
    return GateRecord(gate="accuracy", check=check, model=model, status=status, measured=measured,
                      baseline=documented, source=r.source, tolerance=f"{tol}; Wilson {confidence:g}; {max_width}",
                      reason=reason, runner=runner, bs=bs, details=details)


def images_to_decide(p: float, confidence: float, width: float) -> int | None:
    """Images for a Wilson interval of about ``width`` (fraction) at accuracy ``p``: the normal
    approximation, enough to say how far a subset is from a verdict. None when no sample size would do."""
    from statistics import NormalDist

    if width <= 0:
        return None
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return int(math.ceil((2 * z) ** 2 * max(p * (1 - p), 1e-4) / width ** 2))


def reference_gate(model: str, measured: EvalResult | AccuracySummary, reference: EvalResult | AccuracySummary, *,
                   runner: str = "-", bs: int | None = None, reference_name: str = "PyTorch fp32") -> GateRecord:
    """MLPerf-style: measured top-1 >= reference_agreement_top1 x the fp32 reference's top-1, same images."""
    tol = baselines.tolerance("reference_agreement_top1")
    if not isinstance(measured, AccuracySummary) and not isinstance(reference, AccuracySummary) \
            and measured.fingerprint != reference.fingerprint:
        raise ZoogateError(f"reference run is over another image set ({reference.dataset}) than the measured one "
                           f"({measured.dataset})")
    m = measured.summary() if not isinstance(measured, AccuracySummary) else measured
    ref = reference.summary() if not isinstance(reference, AccuracySummary) else reference
    details = {"n": m.n, "reference_n": ref.n, "reference": reference_name,
               "reference_top1": _pp(ref.top1), "classes_assumed": m.classes_assumed}
    if m.n != ref.n:
        raise ZoogateError(f"measured run has {m.n} images, the reference run {ref.n}: not the same set")
    if not isinstance(measured, AccuracySummary) and not isinstance(reference, AccuracySummary):
        same = measured.predictions == reference.predictions
        details["per_image_top1_agreement"] = float(same.mean()) if len(same) else None
        details["disagreeing_images"] = int((~same).sum())
        details["reference_notes"] = list(reference.notes)
    if ref.hits[0] == 0:
        return GateRecord(gate="accuracy", check="top1_vs_reference", model=model, status=INCONCLUSIVE,
                          measured=_pp(m.top1), baseline=0.0, source=reference_name, tolerance=str(tol),
                          reason=f"the {reference_name} reference scores 0 top-1 hits: nothing to agree with",
                          runner=runner, bs=bs, details=details)
    floor = _pp(ref.top1) * tol.value
    rec = at_least("accuracy", "top1_vs_reference", model, _pp(m.top1), floor, tolerance_text=str(tol),
                   source=f"{reference_name} reference run, same {m.n} images", runner=runner, bs=bs, unit=" %",
                   baseline=_pp(ref.top1))
    rec.reason = (f"top-1 {_pp(m.top1):.3f} % vs {reference_name} reference {_pp(ref.top1):.3f} % on the same "
                  f"{m.n} images: {'>=' if rec.passed else '<'} floor {floor:.3f} % "
                  f"({tol.value:.0%} of the reference)")
    rec.details.update(details)
    return rec


def label_offset_gate(model: str, summary: AccuracySummary, *, runner: str = "-", bs: int | None = None) -> GateRecord:
    """Fail when labels shifted by one class give a much higher top-1 than the labels as scored."""
    tol = baselines.tolerance("label_offset_margin_pp")
    as_scored = _pp(summary.top1)
    shifted = {d: _pp(h / summary.n) if summary.n else 0.0 for d, h in summary.offset_top1.items()}
    details = {"offset_top1_pp": {f"{d:+d}": v for d, v in shifted.items()}, "classes_assumed": summary.classes_assumed,
               "n": summary.n}
    if not shifted or summary.n == 0:
        return GateRecord(gate="accuracy", check="label_offset", model=model, status=INCONCLUSIVE, measured=as_scored,
                          baseline=None, source="", tolerance=str(tol), reason="no offsets were counted",
                          runner=runner, bs=bs, details=details)
    d, best = max(shifted.items(), key=lambda kv: kv[1])
    if max(as_scored, best) < tol.value:
        return GateRecord(gate="accuracy", check="label_offset", model=model, status=INCONCLUSIVE, measured=as_scored,
                          baseline=best, source="label offsets -1/+1", tolerance=str(tol),
                          reason=f"top-1 is {as_scored:.3f} % as scored and at most {best:.3f} % with the labels "
                                 f"shifted: neither reaches {tol.value:g} pp, so these outputs cannot show whether the labels "
                                 "are offset", runner=runner, bs=bs, details=details)
    if best - as_scored >= tol.value:
        reason = (f"labels look off by {d:+d}: top-1 is {as_scored:.3f} % as scored ({summary.classes_assumed}) "
                  f"but {best:.3f} % with every label {d:+d}. A 1000- vs 1001-class (background at index 0) "
                  "mix-up, or 1-based labels?")
        status = FAIL
    else:
        reason = (f"top-1 {as_scored:.3f} % as scored ({summary.classes_assumed}); labels shifted by "
                  + ", ".join(f"{dd:+d}: {v:.3f} %" for dd, v in sorted(shifted.items()))
                  + f" (a shift would need to win by {tol.value:g} pp)")
        status = PASS
    return GateRecord(gate="accuracy", check="label_offset", model=model, status=status, measured=as_scored,
                      baseline=best, source="label offsets -1/+1", tolerance=str(tol), reason=reason, runner=runner,
                      bs=bs, details=details)


def skip_no_imagenet(model: str, check: str, *, runner: str = "-", bs: int | None = None) -> GateRecord:
    return GateRecord(gate="accuracy", check=check, model=model, status=SKIP, reason=NO_IMAGENET, runner=runner, bs=bs)


def build_identity_gate(model: str, refusal: ZoogateError, *, runner: str = "-", bs: int | None = None) -> GateRecord:
    """FAIL: saved state of another build was offered (a --resume of another build's partial results)."""
    return GateRecord(gate="accuracy", check="build_identity", model=model, status=FAIL, reason=str(refusal),
                      runner=runner, bs=bs, details={"differences": list(getattr(refusal, "differences", []))})


def resume_gate(model: str, resumed: EvalResult, uninterrupted: EvalResult, *, runner: str = "-",
                bs: int | None = None) -> GateRecord:
    """A resumed run of the same build must have resumed something and equal an uninterrupted run, image by image."""
    same = resumed.top5.shape == uninterrupted.top5.shape and bool(np.array_equal(resumed.top5, uninterrupted.top5))
    builds = differences(resumed.identity, uninterrupted.identity) if uninterrupted.identity else ["unknown"]
    ok = same and resumed.resumed_from > 0 and not builds
    reason = (f"resumed {resumed.resumed_from} of {resumed.n} images from saved partial results of the same build; "
              f"top-5 of every image {'equals' if same else 'DIFFERS from'} an uninterrupted run's")
    return GateRecord(gate="accuracy", check="build_identity", model=model, status=PASS if ok else FAIL,
                      measured=resumed.resumed_from, baseline=resumed.n, reason=reason, runner=runner, bs=bs,
                      details={"identity": resumed.identity.to_dict() if resumed.identity else None})


def diff_value(old: GateRecord, new: GateRecord) -> tuple | None:
    """(old, new, regression?, note) for a top-1 / top-5 record; None for the checks that carry no score."""
    if old.check not in ("top1", "top5", "top1_vs_reference"):
        return None
    a, b = number(old.measured), number(new.measured)
    if a is None or b is None:
        return None
    tol = tolerance_named("", "top5_abs_pp" if old.check == "top5" else "top1_abs_pp")
    allowed = tol.value if tol else 0.0
    return a, b, b < a - allowed - 1e-12, (f"{b - a:+.3f} pp (a regression is a drop beyond {allowed:g} pp, "
                                           f"{tol.name if tol else '-'})")
