"""Expected outputs: each variant's own recorded tensors, kept as digests (the exact gate on them is
zoogate.gates.preprocessing.gate_expected).

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoogate import baselines
from zoogate.errors import ZoogateError

EXPECTED_FILE = baselines.BASELINE_DIR / "measured" / "preprocess_expected.json"
REGENERATE = "python -m zoogate.preprocess.measured --write"
VENDOR_WARNING = ("regenerating is only right after checking the variant against the vendor's own tool on "
                  "these fixtures (the Ascend script, the card's vdsp/vamp, timm itself): the record defines "
                  "the variant, and rewriting it to match a fault makes the fault the standard")
TOLERANCE = "preprocess_expected_bits"
CHECK = "expected_outputs"
STATS = ("mean", "std", "min", "max")


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
