"""Preprocessing gates (gate="preprocessing"): a pipeline's tensors against what it promises.

- ``gate_identical``  a variant that promises the reference's tensors (``fast``): max abs <= the named
  tolerance (``preprocess_identical`` = 0);
- ``gate_expected``   a deployed variant against its own recorded outputs (zoogate.preprocess.expected),
  bit for bit; its distance to the torchvision reference is reported beside it, never gated;
- ``gate_max_abs``    a plain max-abs ceiling from a named tolerance (the CLI's files vs torchvision).

``diff_value``: a change of a preprocessing record's number between two reports is listed; whether it is a
regression is the status change (the gates are exact, so any new difference already fails).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from zoogate import baselines
from zoogate.gates._diff import number
from zoogate.preprocess.expected import (CHECK, REGENERATE, STATS, TOLERANCE, VENDOR_WARNING, ExpectedCase, ImageDigest,
                                         digest, library_changes)
from zoogate.preprocess.parity import Distance, RecordedDistance
from zoogate.record import FAIL, PASS, SKIP, GateRecord

SHOWN = 3  # differing images spelled out in the one-line reason, most changed first (all in report_text)


def gate_identical(model: str, runner: str, dist: Distance, *, tolerance: str = "preprocess_identical",
                   source: str = "torchvision reference") -> GateRecord:
    """A variant that promises the reference's tensors: max abs must be <= the named tolerance (0 for `fast`)."""
    tol = baselines.tolerance(tolerance)
    details = {"distance": dist.metrics(), "worst": [asdict(d) for d in dist.worst()]}
    if dist.images == 0:
        return GateRecord(gate="preprocessing", check="max_abs_vs_reference", model=model, status=SKIP, measured=None,
                          baseline=tol.value, source=source, tolerance=str(tol), reason="no images to compare",
                          runner=runner, bs=None, details=details)
    ok = dist.shape_mismatches == 0 and dist.max_abs <= tol.value
    worst = dist.worst(1)[0]
    reason = (f"{dist.summary()}; allowed max abs {tol.value:g}"
              + ("" if ok else f"; worst image {worst.name} (max abs {worst.max_abs:.6g}, shift {worst.shift})"))
    return GateRecord(gate="preprocessing", check="max_abs_vs_reference", model=model, status=PASS if ok else FAIL,
                      measured=dist.max_abs, baseline=tol.value, source=source, tolerance=str(tol), reason=reason,
                      runner=runner, bs=None, details=details)


def gate_max_abs(model: str, runner: str, max_abs: float, tolerance: str, *, check: str,
                 source: str) -> GateRecord:
    """A plain max-abs ceiling from a named tolerance (e.g. the CLI's files vs torchvision)."""
    tol = baselines.tolerance(tolerance)
    ok = max_abs <= tol.value
    return GateRecord(gate="preprocessing", check=check, model=model, status=PASS if ok else FAIL, measured=max_abs,
                      baseline=tol.value, source=source, tolerance=str(tol),
                      reason=f"max abs {max_abs:.3g} {'<=' if ok else '>'} {tol.value:g}", runner=runner)


def _signed(values: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{v:+.3g}" for v in values) + "]"


def _plain(values: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


@dataclass(frozen=True)
class ImageChange:
    name: str
    now: ImageDigest
    recorded: ImageDigest

    @property
    def shape_changed(self) -> bool:
        return (self.now.shape, self.now.dtype) != (self.recorded.shape, self.recorded.dtype)

    def delta(self, stat: str) -> tuple[float, ...]:
        a, b = getattr(self.now, stat), getattr(self.recorded, stat)
        return tuple(x - y for x, y in zip(a, b)) if len(a) == len(b) else ()

    @property
    def at_least(self) -> float:
        """A lower bound on the largest element change (inf when the shape changed)."""
        if self.shape_changed:
            return math.inf
        return max((abs(v) for s in ("mean", "min", "max") for v in self.delta(s)), default=0.0)

    def text(self) -> str:
        if self.shape_changed:
            return (f"{self.name}: {self.now.dtype} {list(self.now.shape)} vs recorded "
                    f"{self.recorded.dtype} {list(self.recorded.shape)}")
        out = (f"{self.name}: channel mean {_plain(self.now.mean)} vs recorded {_plain(self.recorded.mean)} "
               f"(d {_signed(self.delta('mean'))}), std {_plain(self.now.std)} vs {_plain(self.recorded.std)} "
               f"(d {_signed(self.delta('std'))}), at least {self.at_least:.3g} off")
        if self.now.vs_reference and self.recorded.vs_reference:
            out += (f", vs reference max abs {self.now.vs_reference[0]:.6g} now, "
                    f"{self.recorded.vs_reference[0]:.6g} recorded")
        return out

    def to_dict(self) -> dict:
        return {"image": self.name, "now": self.now.to_json(), "recorded": self.recorded.to_json(),
                "at_least_off": self.at_least, **{f"d_{s}": list(self.delta(s)) for s in STATS}}


def _recorded_distance_text(r: RecordedDistance) -> str:
    return (f"max abs {r.max_abs:.6g}, mean abs {r.mean_abs:.6g}, {r.frac_off:.2%} of pixels off by > 1/255, "
            f"crop shift {r.max_shift_px} px in {r.shifted_images}/{r.images} images")


def gate_expected(model: str, runner: str, outputs: dict[str, np.ndarray], expected: ExpectedCase | None, *,
                  recorded_libraries: dict[str, str] | None = None, distance: Distance | None = None,
                  recorded_distance: RecordedDistance | None = None, pipeline: str = "") -> GateRecord:
    """A variant's outputs must equal its recorded outputs bit for bit (sha256, shape, dtype) on every image.

    ``distance`` (now) and ``recorded_distance`` (the variant's distance to the torchvision reference)
    are information: they go into the reason and the details, they never decide the status.
    """
    tol = baselines.tolerance(TOLERANCE)
    case_id = expected.case_id if expected else f"{model}-{runner}"
    where = "baselines/measured/preprocess_expected.json"
    now = {name: digest(arr, _vs_reference(distance, name)) for name, arr in outputs.items()}
    details: dict = {"case": case_id, "pipeline_now": pipeline, "regenerate": REGENERATE,
                     "distance_to_reference": {
                         "gated": False,
                         "now": distance.metrics() if distance else None,
                         "recorded": asdict(recorded_distance) if recorded_distance else None}}
    info = _distance_info(distance, recorded_distance)
    if expected is None:
        return GateRecord(gate="preprocessing", check=CHECK, model=model, status=SKIP, measured=None, baseline=None,
                          source=where, tolerance=str(tol),
                          reason=f"no recorded outputs for {case_id} in {where}; record them with `{REGENERATE}` "
                                 f"({VENDOR_WARNING}){info}", runner=runner, bs=None, details=details)
    if not now:
        return GateRecord(gate="preprocessing", check=CHECK, model=model, status=SKIP, measured=None, baseline=0,
                          source=where, tolerance=str(tol), reason=f"no images to compare for {case_id}",
                          runner=runner, bs=None, details=details)
    changed = sorted((ImageChange(n, now[n], expected.images[n]) for n in now
                      if n in expected.images and not now[n].same_output(expected.images[n])),
                     key=lambda c: (-c.at_least, c.name))        # the most changed first
    missing = sorted(set(expected.images) - set(now))
    unrecorded = sorted(set(now) - set(expected.images))
    lib_changes = library_changes(recorded_libraries) if recorded_libraries else []
    details.update(pipeline_recorded=expected.pipeline, changed=[c.to_dict() for c in changed], missing=missing,
                   unrecorded=unrecorded, library_changes=lib_changes, images=len(now))
    if not (changed or missing or unrecorded):
        reason = (f"{len(now)}/{len(now)} images bit-identical to the recorded outputs of {case_id} "
                  f"(sha256 of the float32 tensor, shape, dtype){info}")
        return GateRecord(gate="preprocessing", check=CHECK, model=model, status=PASS, measured=0, baseline=0,
                          source=where, tolerance=str(tol), reason=reason, runner=runner, bs=None, details=details)
    parts = []
    if changed:
        worst = max(c.at_least for c in changed)
        parts.append(f"{len(changed)}/{len(now)} images differ from the recorded outputs of {case_id}, "
                     f"at least {worst:.3g} off: " + "; ".join(c.text() for c in changed[:SHOWN])
                     + (f"; and {len(changed) - SHOWN} more" if len(changed) > SHOWN else ""))
    if missing:
        parts.append(f"recorded images not produced: {', '.join(missing)}")
    if unrecorded:
        parts.append(f"images without a recorded output: {', '.join(unrecorded)}")
    if pipeline and pipeline != expected.pipeline:
        parts.append(f"pipeline now: {pipeline!r}; recorded: {expected.pipeline!r}")
    parts.append("library versions differ from the record: " + ", ".join(lib_changes) if lib_changes
                 else "library versions as recorded")
    reason = "; ".join(parts) + info + f". If the change is intended, regenerate with `{REGENERATE}`: {VENDOR_WARNING}"
    details["report_text"] = "\n".join(["images that differ from the record:", *(f"  {c.text()}" for c in changed)]
                                       if changed else [])
    return GateRecord(gate="preprocessing", check=CHECK, model=model, status=FAIL,
                      measured=len(changed) + len(missing) + len(unrecorded), baseline=0, source=where,
                      tolerance=str(tol), reason=reason, runner=runner, bs=None, details=details)


def _vs_reference(distance: Distance | None, name: str) -> tuple[float, float] | None:
    if distance is None:
        return None
    for d in distance.per_image:
        if d.name == name:
            return (d.max_abs, d.mean_abs)
    return None


def _distance_info(distance: Distance | None, recorded: RecordedDistance | None) -> str:
    if distance is None:
        return ""
    text = f"; distance to the torchvision reference (information, not gated): now {distance.summary()}"
    return text + (f"; recorded {_recorded_distance_text(recorded)}" if recorded else "; none recorded")


def diff_value(old: GateRecord, new: GateRecord) -> tuple | None:
    """(old, new, False, note) when the measured number moved; the status change carries any regression."""
    a, b = number(old.measured), number(new.measured)
    if a is None or b is None:
        return None
    return a, b, False, f"{old.check} {a:.6g} -> {b:.6g} (information: the gate's status decides)"
