"""The parity cases (model x variant), the fixture set they run on, and their recorded distances.

One case per distinct preprocessing of the registry: reference/fast/ascend-modelzoo once per distinct
baseline spec (inception 342/299/0.5, imagenet 256/224, mindspore 299/299), vacc-vdsp once per
distinct (spec, vdsp_params file), timm-eval once per distinct (spec, timm data config). The model
that stands for a group is the first documented implementation in registry order (inception_v4 for
the inception spec, iresnet50 for imagenet).

Recorded distances live in baselines/measured/preprocess_variants.toml. After an intended change to
a documented variant (or to the fixtures), re-measure and rewrite that file with

    python -m zoogate.preprocess.measured --write

and say in the commit why the distance moved.
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
from zoogate.preprocess import variants as V
from zoogate.preprocess.fast import decode_rgb
from zoogate.preprocess.parity import Distance, RecordedDistance, measure

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
    if variant == "vacc-vdsp":
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
            cases.append(ParityCase(first.name, variant, vdsp_fixture(first) if variant == "vacc-vdsp" else None,
                                    tuple(m.name for m in members[1:])))
    return cases


def fixture_images(folder: Path = GOOD_IMAGES) -> list[tuple[str, Image.Image]]:
    """The decoded fixture set, sorted by file name (decoded as the reference does: no EXIF rotation)."""
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if not files:
        raise ZoogateError("no fixture images (run `python fixtures/make_fixtures.py`)", folder)
    return [(p.name, decode_rgb(p)) for p in files]


def reference_tensors(model: str, images: list[tuple[str, Image.Image]]) -> dict[str, np.ndarray]:
    from zoogate.preprocess.reference import torch_threads

    ref = V.build("reference", model)
    with torch_threads(1):
        return {name: ref(img) for name, img in images}


def measure_case(case: ParityCase, images: list[tuple[str, Image.Image]],
                 reference: dict[str, np.ndarray] | None = None, pipeline=None) -> Distance:
    """The case's variant (or a given pipeline standing in for it) against the model's reference."""
    from zoogate.preprocess.reference import torch_threads

    mb = baselines.model(case.model)
    reference = reference if reference is not None else reference_tensors(case.model, images)
    with torch_threads(1):       # timm-eval runs torchvision transforms too
        return measure(pipeline or case.pipeline(), images, reference, mb.preprocess)


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
    "ascend-modelzoo": "same resize; crop offsets truncated where torchvision rounds: the window sits 1 px up/left "
                       "when a margin is odd and its half rounds up (43 -> 21 vs 22)",
    "vacc-vdsp": "square resize (aspect ratio not kept) with OpenCV bilinear (no antialias when shrinking), "
                 "crop at CropX/CropY",
    "timm-eval": "timm's eval config: bicubic, crop_pct 0.875 (Resize 341 for 299), timm's mean/std",
}


def _versions() -> str:
    import PIL
    import timm
    import torchvision
    return f"torchvision {torchvision.__version__}, Pillow {PIL.__version__}, numpy {np.__version__}, timm {timm.__version__}"


def render(results: list[tuple[ParityCase, Distance]], images: int) -> str:
    lines = [
        "# Measured distance of each documented preprocessing variant from the torchvision reference,",
        "# on fixtures/images/good (fixtures/make_fixtures.py). Written by",
        "# `python -m zoogate.preprocess.measured --write`; gated by suites/test_preprocess_parity.py:",
        "# max_abs/mean_abs/frac_off within preprocess_variant_drift_rel (floor preprocess_variant_drift_abs),",
        "# images/max_shift_px/shifted_images exactly (baselines/tolerances_preprocess.toml).",
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


def measure_all(cases: list[ParityCase] | None = None) -> tuple[list[tuple[ParityCase, Distance]], int]:
    images = fixture_images()
    cases = [c for c in (cases or parity_cases()) if c.variant in V.DOCUMENTED]
    refs: dict[str, dict[str, np.ndarray]] = {}
    results = []
    for case in cases:
        ref = refs.setdefault(case.model, reference_tensors(case.model, images))
        results.append((case, measure_case(case, images, ref)))
    return results, len(images)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoogate.preprocess.measured",
                                     description="Measure the documented preprocessing variants on the fixture set.")
    parser.add_argument("--write", action="store_true", help=f"rewrite {MEASURED_FILE}")
    args = parser.parse_args(argv)
    results, n = measure_all()
    for case, dist in results:
        print(f"{case.id:40s} {dist.summary()}")
    if args.write:
        MEASURED_FILE.parent.mkdir(parents=True, exist_ok=True)
        MEASURED_FILE.write_text(render(results, n), encoding="utf-8")
        print(f"wrote {MEASURED_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
