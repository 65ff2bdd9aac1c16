"""The parity cases (model x variant), the fixture set they run on, and each case's recorded state.

One case per distinct preprocessing of the registry: reference/fast/ascend-modelzoo once per distinct
baseline spec (inception 342/299/0.5, imagenet 256/224, mindspore 299/299), vacc-vamp and vacc-vsx once
per distinct (spec, vdsp_params file), timm-eval once per distinct (spec, timm data config). The model
that stands for a group is the first documented implementation in registry order (inception_v4 for
the inception spec, iresnet50 for imagenet). Each case decodes the fixtures with its variant's declared
decoder (variants.DECODER_OF).

Recorded per case, on the fixture set:
- baselines/measured/preprocess_expected.json: the case's own outputs as digests (sha256, shape, dtype,
  per-channel stats); the exact gate (zoogate.gates.preprocessing.gate_expected) requires them bit for bit;
- baselines/measured/preprocess_variants.toml: each deployed variant's distance to the torchvision
  reference (max abs, mean abs, frac_off, crop shifts): information the exact gate reports, not a gate.

Both files are rewritten together by

    python -m zoogate.preprocess.measured --write

Run it only after an intended change to a variant (or to the fixtures, or to a library that decodes or
resamples), and only after checking the changed variant against the vendor's own tool on the fixtures
(the Ascend script, the card's vdsp/vamp, timm itself): the record defines the variant, and rewriting
it to match a fault makes the fault the standard. Say in the commit why the outputs moved.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from zoogate import baselines
from zoogate.baselines import ModelBaseline
from zoogate.errors import ZoogateError
from zoogate.gates.preprocessing import gate_expected
from zoogate.preprocess import expected as E
from zoogate.preprocess import variants as V
from zoogate.preprocess.decoders import decode
from zoogate.preprocess.parity import Distance, RecordedDistance, compare_image, summarise
from zoogate.record import GateRecord

FIXTURE_DIR = Path(os.environ.get("ZOOGATE_FIXTURES", Path(__file__).resolve().parents[2] / "fixtures"))
GOOD_IMAGES = FIXTURE_DIR / "images" / "good"
BAD_IMAGES = FIXTURE_DIR / "images" / "bad"
VDSP_DIR = FIXTURE_DIR / "vdsp_params"
MEASURED_FILE = baselines.BASELINE_DIR / "measured" / "preprocess_variants.toml"

# (model family, baseline preprocess name) -> the vdsp_params JSON the model zoo ships for it
VDSP_FIXTURES = {
    ("inception_v4", "inception"): "timm-inception_v4-vdsp_params.json",
    ("inception_v3", "inception"): "timm-inception_v3-vdsp_params.json",
    ("iresnet", "imagenet"): "iresnet-vdsp_params.json",
}


@dataclass(frozen=True)
class ParityCase:
    model: str
    variant: str
    vdsp_params: Path | None = None
    shared_with: tuple[str, ...] = ()      # other models with the same preprocessing for this variant

    @property
    def id(self) -> str:
        return f"{self.model}-{self.variant}"

    @property
    def decoder(self) -> str:
        return V.decoder_of(self.variant)

    def pipeline(self):
        return V.build(self.variant, self.model, vdsp_params=self.vdsp_params)


def spec_key(mb: ModelBaseline) -> tuple:
    p = mb.preprocess
    return (p.resize, p.crop, p.interpolation, p.mean, p.std, p.channel_order, p.layout)


def vdsp_fixture(mb: ModelBaseline) -> Path | None:
    name = VDSP_FIXTURES.get((mb.family, mb.preprocess.name))
    return VDSP_DIR / name if name else None


def _ordered_models() -> list[ModelBaseline]:
    models = list(baselines.load_all().values())
    return sorted(models, key=lambda mb: (not mb.documented_implementation, models.index(mb)))


def _group_key(variant: str, mb: ModelBaseline):
    if variant in ("reference", "fast", "ascend-modelzoo"):
        return spec_key(mb)
    if variant in V.VDSP_VARIANTS:
        path = vdsp_fixture(mb)
        return None if path is None else (spec_key(mb), path.read_text(encoding="utf-8"))
    if variant == "timm-eval":
        name = V.timm_name(mb)
        return None if name is None else (spec_key(mb), json.dumps(V.timm_data_config(name), sort_keys=True, default=str))
    raise ZoogateError(f"unknown variant {variant!r}")


def parity_cases(variants: tuple[str, ...] = V.VARIANTS) -> list[ParityCase]:
    """One case per distinct preprocessing of each variant over the registry."""
    cases = []
    for variant in variants:
        groups: dict = {}
        for mb in _ordered_models():
            key = _group_key(variant, mb)
            if key is not None:
                groups.setdefault(key, []).append(mb)
        for members in groups.values():
            first = members[0]
            cases.append(ParityCase(first.name, variant, vdsp_fixture(first) if variant in V.VDSP_VARIANTS else None,
                                    tuple(m.name for m in members[1:])))
    return cases


def fixture_images(folder: Path = GOOD_IMAGES, decoder: str = "pil",
                   overrides: dict[str, str] | None = None) -> list[tuple[str, Image.Image]]:
    """The decoded fixture set, sorted by file name, each decoded with `decoder` (or its override by name)."""
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if not files:
        raise ZoogateError("no fixture images (run `python fixtures/make_fixtures.py`)", folder)
    overrides = overrides or {}
    unknown = sorted(set(overrides) - {p.name for p in files})
    if unknown:
        raise ZoogateError(f"no fixture image named {', '.join(unknown)}", folder)
    return [(p.name, decode(p, overrides.get(p.name, decoder))) for p in files]


_DECODED: dict = {}


def shared_fixture_images(decoder: str = "pil", overrides: dict[str, str] | None = None) -> list[tuple[str, Image.Image]]:
    """fixture_images() of the committed set, decoded once per process (the fault matrix runs many rows)."""
    key = (decoder, tuple(sorted((overrides or {}).items())))
    if key not in _DECODED:
        _DECODED[key] = fixture_images(GOOD_IMAGES, decoder, overrides)
    return list(_DECODED[key])


def reference_tensors(model: str, images: list[tuple[str, Image.Image]]) -> dict[str, np.ndarray]:
    return case_outputs(ParityCase(model, "reference"), images)


def case_outputs(case: ParityCase, images: list[tuple[str, Image.Image]], pipeline=None) -> dict[str, np.ndarray]:
    """The case's variant (or a given pipeline standing in for it) on named images."""
    from zoogate.preprocess.reference import torch_threads

    pipe = pipeline or case.pipeline()
    with torch_threads(1):       # reference and timm-eval run torch ops; one thread is faster and the same bits
        return {name: pipe(img) for name, img in images}


def distance_to_reference(case: ParityCase, outputs: dict[str, np.ndarray],
                          reference: dict[str, np.ndarray]) -> Distance:
    spec = baselines.model(case.model).preprocess
    return summarise(compare_image(reference[name], out, spec, name) for name, out in outputs.items())


def measure_case(case: ParityCase, images: list[tuple[str, Image.Image]],
                 reference: dict[str, np.ndarray] | None = None, pipeline=None) -> Distance:
    """The case's variant (or a given pipeline standing in for it) against the model's reference.

    ``images`` are what the variant decodes; without ``reference``, the reference runs on the fixtures
    decoded its own way."""
    if reference is None:
        reference = reference_tensors(case.model, fixture_images(decoder=V.decoder_of("reference")))
    return distance_to_reference(case, case_outputs(case, images, pipeline), reference)


# ---- the recorded distances file ----

def load_recorded(path: Path = MEASURED_FILE) -> dict[tuple[str, str], RecordedDistance]:
    """(model, variant) -> RecordedDistance; ZoogateError naming the file and key on any malformed entry."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ZoogateError("recorded preprocessing distances not found", path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ZoogateError(f"not valid TOML: {exc}", path) from None
    source = data.get("meta", {}).get("source", str(path))
    out = {}
    for model, table in data.items():
        if model == "meta":
            continue
        if not isinstance(table, dict):
            raise ZoogateError(f"{model}: expected a table of variants", path)
        for variant, raw in table.items():
            where = f"{model}.{variant}"
            if variant not in V.VARIANTS:
                raise ZoogateError(f"{where}: unknown variant (known: {', '.join(V.VARIANTS)})", path)
            try:
                rec = RecordedDistance(model=model, variant=variant, source=source, note=str(raw.get("note", "")),
                                       **{k: raw[k] for k in ("max_abs", "mean_abs", "frac_off", "max_shift_px",
                                                             "shifted_images", "images")})
            except (KeyError, TypeError, AttributeError) as exc:
                raise ZoogateError(f"{where}: missing or malformed key ({exc})", path) from None
            for key in ("max_abs", "mean_abs", "frac_off"):
                v = getattr(rec, key)
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0:
                    raise ZoogateError(f"{where}.{key}: expected a non-negative number, got {v!r}", path)
            for key in ("max_shift_px", "shifted_images", "images"):
                v = getattr(rec, key)
                if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                    raise ZoogateError(f"{where}.{key}: expected a non-negative integer, got {v!r}", path)
            out[(model, variant)] = rec
    return out


NOTES = {
    "fast": "bit-identical to the reference by design",
    "ascend-modelzoo": "same resize; crop offsets truncated where torchvision rounds: the window sits 1 px up/left "
                       "when a margin is odd and its half rounds up (43 -> 21 vs 22)",
    "vacc-vamp": "cv2.imread decode (EXIF orientation applied, its own CMYK and 16-bit conversion); square "
                 "cv2.resize INTER_LINEAR (aspect ratio not kept, no antialias when shrinking), crop at CropX/CropY",
    "vacc-vsx": "as vacc-vamp, and an image with an odd side is first resized to even sides (INTER_LINEAR)",
    "timm-eval": "timm's eval config: bicubic, crop_pct 0.875 (Resize 341 for 299), timm's mean/std",
}


def _versions() -> str:
    return ", ".join(f"{k} {v}" for k, v in E.library_versions().items())


def render(results: list[tuple[ParityCase, Distance]], images: int) -> str:
    lines = [
        "# Measured distance of each deployed preprocessing variant from the torchvision reference,",
        "# on fixtures/images/good (fixtures/make_fixtures.py). INFORMATION, not a gate: each variant is",
        "# gated bit for bit on its own outputs (preprocess_expected.json, zoogate/preprocess/expected.py);",
        "# the exact gate reports these numbers next to the distance it measures now.",
        f"# Written together with preprocess_expected.json by `{E.REGENERATE}`.",
        "# Units: max_abs, mean_abs in normalised tensor units; frac_off = fraction of pixels off by > 1/255",
        "# in any channel; shifts in pixels (see zoogate/preprocess/parity.py).",
        "",
        "[meta]",
        f'source = "baselines/measured/preprocess_variants.toml (measured {datetime.date.today().isoformat()}, '
        f'{_versions()})"',
        f"fixture_images = {images}",
        "",
    ]
    for case, dist in results:
        lines += [f"[{case.model}.{case.variant}]"]
        if case.shared_with:
            lines += [f"# also stands for: {', '.join(case.shared_with)}"]
        m = dist.metrics()
        lines += [f"max_abs = {m['max_abs']!r}", f"mean_abs = {m['mean_abs']!r}", f"frac_off = {m['frac_off']!r}",
                  f"max_shift_px = {m['max_shift_px']}", f"shifted_images = {m['shifted_images']}",
                  f"images = {m['images']}", f'note = "{NOTES.get(case.variant, "")}"', ""]
    return "\n".join(lines)


# ---- the exact gate of one case ----

_LOADED: dict = {}


def _record() -> E.ExpectedRecord:
    if "expected" not in _LOADED:
        _LOADED["expected"] = E.load()
    return _LOADED["expected"]


def _recorded_distances() -> dict[tuple[str, str], RecordedDistance]:
    if "distances" not in _LOADED:
        _LOADED["distances"] = load_recorded()
    return _LOADED["distances"]


def shared_reference(model: str) -> dict[str, np.ndarray]:
    """The reference's tensors on shared_fixture_images() of the reference's decoder, computed once per process."""
    key = ("reference", model)
    if key not in _LOADED:
        _LOADED[key] = reference_tensors(model, shared_fixture_images(V.decoder_of("reference")))
    return _LOADED[key]


def exact_gate(case: ParityCase, *, pipeline=None, overrides: dict[str, str] | None = None,
               images: list[tuple[str, Image.Image]] | None = None, reference: dict[str, np.ndarray] | None = None,
               record: E.ExpectedRecord | None = None,
               recorded_distances: dict[tuple[str, str], RecordedDistance] | None = None) -> GateRecord:
    """The case's variant (or a planted pipeline standing in for it) against the case's recorded outputs.

    ``overrides`` decode some fixtures with another decoder (the decoder fault). The distance to the
    reference is measured and reported as information (not for the reference itself)."""
    pipe = pipeline or case.pipeline()
    images = images if images is not None else shared_fixture_images(case.decoder, overrides)
    outputs = case_outputs(case, images, pipe)
    distance = None
    if case.variant != "reference":
        reference = reference if reference is not None else shared_reference(case.model)
        distance = distance_to_reference(case, outputs, reference)
    record = record or _record()
    recorded_distances = _recorded_distances() if recorded_distances is None else recorded_distances
    describe = getattr(pipe, "describe", None)
    gate = gate_expected(case.model, case.variant, outputs, record.cases.get(case.id),
                           recorded_libraries=record.libraries, distance=distance,
                           recorded_distance=recorded_distances.get((case.model, case.variant)),
                           pipeline=_portable(describe()) if describe else "")
    gate.details["stands_for"] = list(case.shared_with)
    return gate


def _portable(text: str) -> str:
    """A pipeline description without this checkout's location (vdsp names its params file)."""
    return text.replace(str(FIXTURE_DIR.parent) + os.sep, "")


def case_for(model: str, variant: str) -> ParityCase:
    """The parity case that gates `variant` for `model`'s preprocessing (the model may stand in a group)."""
    for case in parity_cases((variant,)):
        if model == case.model or model in case.shared_with:
            return case
    raise ZoogateError(f"no {variant} parity case covers {model}")


# ---- measuring and writing the records ----

def measure_all(cases: list[ParityCase] | None = None):
    """(expected cases, [(case, distance) of the deployed variants], fixture count) on the fixture set."""
    cases = cases or parity_cases()
    by_decoder = {}
    refs: dict[str, dict[str, np.ndarray]] = {}
    expected, distances = [], []
    for case in cases:
        images = by_decoder.setdefault(case.decoder, fixture_images(decoder=case.decoder))
        if case.model not in refs:
            refs[case.model] = reference_tensors(case.model, by_decoder.setdefault(
                V.decoder_of("reference"), fixture_images(decoder=V.decoder_of("reference"))))
        pipe = case.pipeline()
        outputs = case_outputs(case, images, pipe)
        dist = None
        if case.variant in V.DEPLOYED:
            dist = distance_to_reference(case, outputs, refs[case.model])
            distances.append((case, dist))
        per_image = {d.name: (d.max_abs, d.mean_abs) for d in dist.per_image} if dist else {}
        expected.append(E.ExpectedCase(case.id, case.model, case.variant, case.decoder, _portable(pipe.describe()),
                                       {n: E.digest(a, per_image.get(n)) for n, a in outputs.items()}))
    n = len(next(iter(by_decoder.values()))) if by_decoder else 0
    return expected, distances, n


def _print_against_record(cases: list[E.ExpectedCase]) -> None:
    """Without --write: how the outputs measured now compare with the record (nothing is written)."""
    try:
        record = E.load()
    except ZoogateError as exc:
        print(exc)
        return
    for case in cases:
        old = record.cases.get(case.case_id)
        if old is None:
            print(f"{case.case_id:40s} not recorded")
            continue
        moved = [n for n, img in case.images.items() if n not in old.images or not img.same_output(old.images[n])]
        print(f"{case.case_id:40s} {len(moved)}/{len(case.images)} outputs differ from the record"
              + (f": {', '.join(moved)}" if moved else ""))
    changes = E.library_changes(record.libraries)
    if changes:
        print("library versions differ from the record: " + ", ".join(changes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zoogate.preprocess.measured",
        description="Measure every preprocessing parity case on the fixture set: its outputs' digests and the "
                    "deployed variants' distances to the torchvision reference.")
    parser.add_argument("--write", action="store_true",
                        help=f"rewrite {E.EXPECTED_FILE.name} and {MEASURED_FILE.name} (only after checking a "
                             "changed variant against the vendor's own tool)")
    args = parser.parse_args(argv)
    expected, distances, n = measure_all()
    for case, dist in distances:
        print(f"{case.id:40s} {dist.summary()}")
    if not args.write:
        _print_against_record(expected)
        return 0
    MEASURED_FILE.parent.mkdir(parents=True, exist_ok=True)
    MEASURED_FILE.write_text(render(distances, n), encoding="utf-8")
    E.EXPECTED_FILE.write_text(E.render(expected, fixtures=_portable(str(GOOD_IMAGES))), encoding="utf-8")
    print(f"wrote {MEASURED_FILE} and {E.EXPECTED_FILE}")
    print(f"warning: {E.VENDOR_WARNING}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
