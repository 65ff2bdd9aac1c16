"""Preprocessing parity: every variant x every distinct preprocessing of the registry, on the fixture set.

`reference` is checked against torchvision transforms assembled here from the baseline entry, on
``PIL.Image.open(f).convert("RGB")``; `fast` must equal the reference bit for bit; the documented
variants (ascend-modelzoo, vacc-vdsp, timm-eval) must keep the distance recorded in
baselines/measured/preprocess_variants.toml. Self-tests plant the classic preprocessing bugs into the
variants and require the gate to report FAIL.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image
from torchvision import transforms as T

from zoogate import baselines
from zoogate.preprocess import geometry, measured, parity, vdsp
from zoogate.preprocess.fast import normalise
from zoogate.preprocess import variants as V
from zoogate.preprocess.reference import torch_threads
from zoogate.record import FAIL, PASS, SKIP

CASES = measured.parity_cases()
IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


@pytest.fixture(scope="session")
def fixture_set() -> list[tuple[str, Image.Image]]:
    return measured.fixture_images()


@pytest.fixture(scope="session")
def reference_of(fixture_set):
    """model -> {image name: reference tensor}, computed once per model."""
    cache: dict[str, dict[str, np.ndarray]] = {}

    def get(model: str) -> dict[str, np.ndarray]:
        if model not in cache:
            cache[model] = measured.reference_tensors(model, fixture_set)
        return cache[model]

    return get


@pytest.fixture(scope="session")
def recorded():
    return measured.load_recorded()


def torchvision_oracle(spec: baselines.Preprocess):
    """The documented transform assembled directly from torchvision (not through zoogate.preprocess)."""
    tf = T.Compose([T.Resize(spec.resize, interpolation=T.InterpolationMode(spec.interpolation)),
                    T.CenterCrop(spec.crop), T.ToTensor(), T.Normalize(spec.mean, spec.std)])

    def apply(path) -> np.ndarray:
        x = tf(Image.open(path).convert("RGB")).numpy()
        return x[::-1].copy() if spec.channel_order == "BGR" else x

    return apply


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_variant_parity(case, fixture_set, reference_of, recorded, gate_log):
    mb = baselines.model(case.model)
    if case.variant == "reference":
        oracle = torchvision_oracle(mb.preprocess)
        with torch_threads(1):
            truth = {name: oracle(measured.GOOD_IMAGES / name) for name, _ in fixture_set}
        dist = measured.measure_case(case, fixture_set, truth)
    else:
        dist = measured.measure_case(case, fixture_set, reference_of(case.model))
    if case.variant in V.IDENTICAL:
        record = parity.gate_identical(case.model, case.variant, dist)
    else:
        record = parity.gate_recorded(case.model, case.variant, dist, recorded.get((case.model, case.variant)))
    record.details["stands_for"] = list(case.shared_with)
    gate_log(record)


def test_parity_cases_cover_every_distinct_spec_and_variant():
    specs = {measured.spec_key(mb) for mb in baselines.load_all().values()}
    for variant in ("reference", "fast", "ascend-modelzoo"):
        covered = {measured.spec_key(baselines.model(c.model)) for c in CASES if c.variant == variant}
        assert covered == specs, variant
    assert {c.variant for c in CASES} == set(V.VARIANTS)
    timm_models = {c.model for c in CASES if c.variant == "timm-eval"}
    assert {"inception_v4", "gluon_inception_v3"} <= timm_models     # 0.5 vs ImageNet mean/std in timm's cfgs


def test_every_documented_case_has_a_recorded_distance(recorded):
    missing = [c.id for c in CASES if c.variant in V.DOCUMENTED and (c.model, c.variant) not in recorded]
    assert not missing, f"record them: python -m zoogate.preprocess.measured --write ({missing})"


def test_ascend_shift_is_exactly_the_truncated_crop_offset(fixture_set, reference_of):
    """The Ascend script differs from the reference by its crop offsets only: each image's measured
    shift is (trunc - round) of its two margins, and after that shift the tensors are identical."""
    spec = baselines.model("inception_v4").preprocess
    ref = reference_of("inception_v4")
    pipe = V.build("ascend-modelzoo", "inception_v4")
    shifted = 0
    for name, img in fixture_set:
        d = parity.compare_image(ref[name], pipe(img), spec, name)
        w, h = geometry.short_side_size(*img.size, spec.resize)
        expected = tuple(geometry.crop_offset(s, spec.crop, "truncate") - geometry.crop_offset(s, spec.crop, "round")
                         for s in (w, h))
        assert d.shift == expected, name
        assert d.mean_abs_after_shift == 0.0, name
        shifted += expected != (0, 0)
    assert shifted == len(fixture_set)     # Resize(342) -> margin 43 on the short side: always a 1-px shift


# ---- self-tests: planted faults must make the gates FAIL ----

def _flip_channels(pipe):
    return lambda img: np.ascontiguousarray(pipe(img)[::-1])


def _planted(fault: str, variant: str):
    """A variant pipeline for inception_v4 with one classic bug planted."""
    spec = baselines.model("inception_v4").preprocess
    R = dataclasses.replace
    if variant in ("fast", "ascend-modelzoo"):
        bad_spec = {"bgr": R(spec, channel_order="BGR"), "mean_std": R(spec, **IMAGENET),
                    "resize256": R(spec, resize=256), "interpolation": R(spec, interpolation="bicubic")}[fault]
        return V.build(variant, spec=bad_spec)
    if variant == "vacc-vdsp":
        case = next(c for c in CASES if c.variant == variant and c.model == "inception_v4")
        p = vdsp.load_params(case.vdsp_params)
        bad = {"bgr": R(p, color_cvt="RGB2BGR"), "mean_std": R(p, **IMAGENET),
               # a 256 resize cannot hold the 299 crop: the emulated card then hands out 256x256 tensors
               "resize256": R(p, resize_width=256, resize_height=256, crop_x=0, crop_y=0, out_width=256, out_height=256),
               }[fault]
        return vdsp.VdspPipeline(bad)
    if variant == "timm-eval":
        cfg = V.timm_data_config("inception_v4")
        if fault == "bgr":
            return _flip_channels(V.TimmEvalPipeline("inception_v4", cfg))
        bad = {"mean_std": {**cfg, **IMAGENET}, "resize256": {**cfg, "crop_pct": 299 / 256},
               "interpolation": {**cfg, "interpolation": "bilinear"}}[fault]   # timm's own is bicubic
        return V.TimmEvalPipeline("inception_v4", bad)
    raise AssertionError(variant)


FAULTS = [(f, v) for v in ("fast", "ascend-modelzoo", "vacc-vdsp", "timm-eval")
          for f in ("bgr", "mean_std", "resize256", "interpolation")
          if not (v == "vacc-vdsp" and f == "interpolation")]     # vdsp_params has no bicubic to plant (BILINEAR_CV only)


@pytest.mark.parametrize("fault,variant", FAULTS, ids=[f"{f}-into-{v}" for f, v in FAULTS])
def test_planted_fault_fails_the_parity_gate(fault, variant, fixture_set, reference_of, recorded):
    case = next(c for c in CASES if c.variant == variant and c.model == "inception_v4")
    dist = measured.measure_case(case, fixture_set, reference_of("inception_v4"), pipeline=_planted(fault, variant))
    if variant in V.IDENTICAL:
        record = parity.gate_identical("inception_v4", variant, dist)
    else:
        record = parity.gate_recorded("inception_v4", variant, dist, recorded[("inception_v4", variant)])
    assert record.status == FAIL, record.explain()
    assert "inception_v4" in record.explain()


def test_ascend_rounding_instead_of_truncation_fails_the_gate(fixture_set, reference_of, recorded):
    """If the Ascend variant silently started rounding like torchvision, its recorded 1-px shift vanishes."""
    spec = baselines.model("inception_v4").preprocess
    dist = measured.measure_case(next(c for c in CASES if c.id == "inception_v4-ascend-modelzoo"), fixture_set,
                                 reference_of("inception_v4"), pipeline=V.build("fast", spec=spec))
    record = parity.gate_recorded("inception_v4", "ascend-modelzoo", dist,
                                  recorded[("inception_v4", "ascend-modelzoo")])
    assert record.status == FAIL
    assert "shifted_images 0 vs recorded 21" in record.reason


def test_shift_detection_finds_a_planted_window_shift(fixture_set, reference_of):
    spec = baselines.model("inception_v4").preprocess
    ref = reference_of("inception_v4")
    name, img = next((n, i) for n, i in fixture_set if n.startswith("rgb_landscape"))
    # crop the same resized image one pixel right and two down of torchvision's window
    w, h = geometry.short_side_size(*img.size, spec.resize)
    left, top, _, _ = geometry.centre_crop_box(w, h, spec.crop)
    resized = img.resize((w, h), Image.Resampling.BILINEAR)
    window = np.asarray(resized.crop((left + 1, top + 2, left + 1 + spec.crop, top + 2 + spec.crop)))
    d = parity.compare_image(ref[name], normalise(window, spec.mean, spec.std), spec, name)
    assert d.shift == (1, 2)
    assert d.mean_abs_after_shift == 0.0


def test_gate_identical_fails_on_shape_mismatch_and_skips_on_nothing():
    ref = np.zeros((3, 4, 4), np.float32)
    dist = parity.summarise([parity.compare_image(ref, np.zeros((3, 5, 5), np.float32))])
    assert parity.gate_identical("m", "fast", dist).status == FAIL
    assert parity.gate_identical("m", "fast", parity.summarise([])).status == SKIP
    same = parity.summarise([parity.compare_image(ref, ref.copy())])
    assert parity.gate_identical("m", "fast", same).status == PASS


def test_gate_recorded_without_a_record_skips_and_says_how_to_record():
    dist = parity.summarise([parity.compare_image(np.zeros((3, 8, 8)), np.ones((3, 8, 8)))])
    record = parity.gate_recorded("m", "vacc-vdsp", dist, None)
    assert record.status == SKIP
    assert "python -m zoogate.preprocess.measured --write" in record.reason


def test_frac_off_counts_pixels_more_than_one_level_off():
    spec = baselines.model("iresnet50").preprocess
    ref = np.zeros((3, 2, 2), np.float32)
    out = ref.copy()
    out[0, 0, 0] = 1 / 255 / spec.std[0]          # one level: not off
    out[2, 1, 1] = 2 / 255 / spec.std[2]          # two levels in the blue channel: off
    d = parity.compare_image(ref, out, spec)
    assert d.frac_off == pytest.approx(0.25)
