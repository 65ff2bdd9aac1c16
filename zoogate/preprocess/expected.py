"""Expected outputs: each variant's own recorded tensors, kept as digests, and the exact gate on them.

Every deployed variant is an exact emulation of a documented pipeline, so it is gated on ITS OWN outputs,
not on how far it sits from the torchvision reference: a fault that moves a variant's distance to the
reference by less than any drift tolerance (Std 0.501 for 0.5, an OpenCV decode of one CMYK JPEG) still
changes its bytes.

The record, baselines/measured/preprocess_expected.json, holds per parity case (``model-variant``, see
zoogate.preprocess.measured) per fixture image: the sha256 of the output tensor's C-contiguous bytes, its
shape and dtype, per-channel float64 mean/std/min/max (so a failure can say how far off it is without
storing arrays) and the image's distance to the reference (information); its meta block names the
library versions that produced it. Rewrite it with ``python -m zoogate.preprocess.measured --write``
only after checking the variant against the vendor's own tool.

Bit-exact, not "within float32 rounding": every variant resamples with integer arithmetic (PIL's
fixed-point filters, our numpy copy of OpenCV's) and then normalises with IEEE float32 elementwise
``/ 255``, ``- mean``, ``/ std``, which round the same way on any IEEE host whatever the vectorisation
or the thread count (measured: identical digests for every case with torch at 1, 2 and 16 threads).
The named tolerance is preprocess_expected_bits = 0. What may legitimately change the bytes is a new
decoder or resampler (Pillow's libjpeg, OpenCV, torchvision, timm): a failure names the libraries
whose versions differ from the record.

A changed image's per-channel stats bound its change from below: |d mean|, |d min| and |d max| of a
channel are each <= the largest absolute change of an element in that channel.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from zoogate import baselines
from zoogate.errors import ZoogateError
from zoogate.preprocess.parity import Distance, RecordedDistance
from zoogate.record import FAIL, PASS, SKIP, GateRecord

EXPECTED_FILE = baselines.BASELINE_DIR / "measured" / "preprocess_expected.json"
REGENERATE = "python -m zoogate.preprocess.measured --write"
VENDOR_WARNING = ("regenerating is only right after checking the variant against the vendor's own tool on "
                  "these fixtures (the Ascend script, the card's vdsp/vamp, timm itself): the record defines "
                  "the variant, and rewriting it to match a fault makes the fault the standard")
TOLERANCE = "preprocess_expected_bits"
CHECK = "expected_outputs"
STATS = ("mean", "std", "min", "max")
SHOWN = 3  # differing images spelled out in the one-line reason, most changed first (all in report_text)


@dataclass(frozen=True)
class ImageDigest:
    """One output tensor, recorded without its values."""

    sha256: str
    shape: tuple[int, ...]
    dtype: str
    mean: tuple[float, ...]        # per channel (axis 0), float64
    std: tuple[float, ...]
    min: tuple[float, ...]
    max: tuple[float, ...]
    vs_reference: tuple[float, float] | None = None    # (max abs, mean abs) vs the torchvision reference

    def same_output(self, other: "ImageDigest") -> bool:
        return (self.sha256, self.shape, self.dtype) == (other.sha256, other.shape, other.dtype)

    def to_json(self) -> dict:
        d = {"sha256": self.sha256, "shape": list(self.shape), "dtype": self.dtype,
             **{k: list(getattr(self, k)) for k in STATS}}
        if self.vs_reference is not None:
            d["vs_reference"] = {"max_abs": self.vs_reference[0], "mean_abs": self.vs_reference[1]}
        return d


def digest(array: np.ndarray, vs_reference: tuple[float, float] | None = None) -> ImageDigest:
    """sha256 of the C-contiguous bytes + shape + dtype + per-channel float64 stats."""
    a = np.ascontiguousarray(array)
    channels = a.reshape(a.shape[0], -1).astype(np.float64) if a.ndim >= 2 else a.reshape(1, -1).astype(np.float64)
    if channels.size:
        stats = {k: tuple(float(v) for v in getattr(np, k)(channels, axis=1)) for k in STATS}
    else:
        stats = {k: () for k in STATS}
    return ImageDigest(hashlib.sha256(a.tobytes()).hexdigest(), tuple(int(s) for s in a.shape), str(a.dtype),
                       vs_reference=vs_reference, **stats)


@dataclass(frozen=True)
class ExpectedCase:
    case_id: str
    model: str
    variant: str
    decoder: str
    pipeline: str                  # the variant's describe() when recorded
    images: dict[str, ImageDigest]


@dataclass(frozen=True)
class ExpectedRecord:
    path: Path
    written: str
    libraries: dict[str, str]
    cases: dict[str, ExpectedCase]


# ---- library versions ----

def library_versions() -> dict[str, str]:
    """The libraries whose code decides the bytes of some variant's output."""
    import PIL
    from PIL import features

    out = {"Pillow": PIL.__version__,
           "Pillow libjpeg": str(features.version_feature("libjpeg_turbo") or features.version_codec("jpg")),
           "Pillow libwebp": str(features.version_module("webp")),
           "numpy": np.__version__}
    for name, module in (("opencv", "cv2"), ("torch", "torch"), ("torchvision", "torchvision"), ("timm", "timm")):
        try:
            out[name] = __import__(module).__version__
        except ImportError:
            out[name] = "not installed"
    return out


def library_changes(recorded: dict[str, str], now: dict[str, str] | None = None) -> list[str]:
    now = library_versions() if now is None else now
    return [f"{name} {now.get(name, 'not installed')} (recorded {was})"
            for name, was in recorded.items() if now.get(name, "not installed") != was]


# ---- the record file ----

def _numbers(raw: object, where: str, path: Path) -> tuple[float, ...]:
    if not isinstance(raw, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
        raise ZoogateError(f"{where}: expected a list of numbers, got {raw!r}", path)
    return tuple(float(v) for v in raw)


def _image(raw: object, where: str, path: Path) -> ImageDigest:
    if not isinstance(raw, dict):
        raise ZoogateError(f"{where}: expected an object", path)
    missing = [k for k in ("sha256", "shape", "dtype", *STATS) if k not in raw]
    if missing:
        raise ZoogateError(f"{where}: missing key(s) {missing}", path)
    sha = raw["sha256"]
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ZoogateError(f"{where}.sha256: expected 64 lower-case hex digits, got {sha!r}", path)
    shape = raw["shape"]
    if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise ZoogateError(f"{where}.shape: expected a list of non-negative integers, got {shape!r}", path)
    if not isinstance(raw["dtype"], str):
        raise ZoogateError(f"{where}.dtype: expected a string, got {raw['dtype']!r}", path)
    stats = {k: _numbers(raw[k], f"{where}.{k}", path) for k in STATS}
    vs_ref = raw.get("vs_reference")
    if vs_ref is not None:
        if not isinstance(vs_ref, dict) or not all(
            isinstance(vs_ref.get(k), (int, float)) for k in ("max_abs", "mean_abs")
        ):
            raise ZoogateError(f"{where}.vs_reference: expected {{max_abs, mean_abs}} numbers, got {vs_ref!r}", path)
        vs_ref = (float(vs_ref["max_abs"]), float(vs_ref["mean_abs"]))
    return ImageDigest(sha, tuple(shape), raw["dtype"], vs_reference=vs_ref, **stats)


def load(path: Path = EXPECTED_FILE) -> ExpectedRecord:
    """The record; ZoogateError naming the file and the key on anything malformed."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ZoogateError(f"expected preprocessing outputs not found; record them with `{REGENERATE}`", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ZoogateError(f"cannot read expected preprocessing outputs ({exc})", path) from None
    except json.JSONDecodeError as exc:
        raise ZoogateError(f"not valid JSON ({exc})", path) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("meta"), dict) or not isinstance(doc.get("cases"), dict):
        raise ZoogateError("expected an object with 'meta' and 'cases' objects", path)
    libraries = doc["meta"].get("libraries")
    if not isinstance(libraries, dict) or not all(isinstance(v, str) for v in libraries.values()):
        raise ZoogateError("meta.libraries: expected an object of version strings", path)
    cases = {}
    for case_id, raw in doc["cases"].items():
        where = f"cases.{case_id}"
        if not isinstance(raw, dict) or not isinstance(raw.get("images"), dict):
            raise ZoogateError(f"{where}: expected an object with an 'images' object", path)
        for key in ("model", "variant", "decoder", "pipeline"):
            if not isinstance(raw.get(key), str):
                raise ZoogateError(f"{where}.{key}: expected a string, got {raw.get(key)!r}", path)
        images = {name: _image(img, f"{where}.images.{name}", path) for name, img in raw["images"].items()}
        cases[case_id] = ExpectedCase(case_id, raw["model"], raw["variant"], raw["decoder"], raw["pipeline"], images)
    return ExpectedRecord(path, str(doc["meta"].get("written", "")), dict(libraries), cases)


def render(cases: list[ExpectedCase], *, fixtures: str, libraries: dict[str, str] | None = None) -> str:
    """The record as JSON text: one line per image, so a diff shows which outputs moved."""
    meta = {
        "about": "each preprocessing variant's own outputs on the fixture images, gated bit for bit by "
                 "suites/test_preprocess_parity.py (zoogate/preprocess/expected.py): sha256 of the output "
                 "tensor's C-contiguous bytes, shape, dtype; per-channel float64 mean/std/min/max; vs_reference "
                 "= (max abs, mean abs) against the torchvision reference, information only",
        "regenerate": f"{REGENERATE}  ({VENDOR_WARNING})",
        "written": datetime.date.today().isoformat(),
        "fixtures": fixtures,
        "libraries": libraries if libraries is not None else library_versions(),
    }
    lines = ["{", f'  "meta": {json.dumps(meta, ensure_ascii=False)},', '  "cases": {']
    for ci, case in enumerate(cases):
        head = {k: getattr(case, k) for k in ("model", "variant", "decoder", "pipeline")}
        lines.append(f"    {json.dumps(case.case_id)}: {json.dumps(head)[:-1]}, \"images\": {{")
        names = sorted(case.images)
        for ii, name in enumerate(names):
            comma = "," if ii < len(names) - 1 else ""
            lines.append(f"      {json.dumps(name)}: {json.dumps(case.images[name].to_json())}{comma}")
        lines.append("    }}" + ("," if ci < len(cases) - 1 else ""))
    lines += ["  }", "}", ""]
    return "\n".join(lines)


# ---- the gate ----

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
