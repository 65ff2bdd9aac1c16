"""Preprocessing parity: every variant x every distinct preprocessing of the registry, on the fixture set.

`reference` is checked against torchvision transforms assembled here from the baseline entry, on
``PIL.Image.open(f).convert("RGB")``; `fast` must equal the reference bit for bit; every variant, the
reference included, must reproduce its own outputs recorded in baselines/measured/preprocess_expected.json
bit for bit (the exact gate; its distance to the reference is reported beside it as information).
Self-tests plant the classic preprocessing bugs into the variants and require the gates to report FAIL;
the fault matrix (zoogate/faults.py) plants Std 0.501, mean +0.001, Resize 343 and the other decoder on
the CMYK JPEG into every deployed variant (the VACC variants, which decode with OpenCV, get PIL's decode).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from zoogate import baselines, faults
from zoogate.gates import preprocessing
from zoogate.errors import ZoogateError
from zoogate.preprocess import decoders, expected, geometry, measured, parity, planted
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


@pytest.fixture(scope="session")
def expected_record():
    return expected.load()


@pytest.fixture(scope="session")
def decoded(fixture_set):
    """decoder name -> the fixture set decoded that way (the PIL one is fixture_set itself)."""
    cache = {"pil": fixture_set}

    def get(decoder: str) -> list[tuple[str, Image.Image]]:
        if decoder not in cache:
            cache[decoder] = measured.fixture_images(decoder=decoder)
        return cache[decoder]

    return get


def exact(case, decoded, reference_of, expected_record, recorded, **kw):
    return measured.exact_gate(case, images=kw.pop("images", None) or decoded(case.decoder),
                               reference=reference_of(case.model), record=expected_record,
                               recorded_distances=recorded, **kw)


def torchvision_oracle(spec: baselines.Preprocess):
    """The documented transform assembled directly from torchvision (not through zoogate.preprocess)."""
    from torchvision import transforms as T

    tf = T.Compose([T.Resize(spec.resize, interpolation=T.InterpolationMode(spec.interpolation)),
                    T.CenterCrop(spec.crop), T.ToTensor(), T.Normalize(spec.mean, spec.std)])

    def apply(path) -> np.ndarray:
        x = tf(Image.open(path).convert("RGB")).numpy()
        return x[::-1].copy() if spec.channel_order == "BGR" else x

    return apply


IDENTICAL_CASES = [c for c in CASES if c.variant in V.IDENTICAL]


@pytest.mark.parametrize("case", IDENTICAL_CASES, ids=[c.id for c in IDENTICAL_CASES])
def test_variant_parity(case, fixture_set, reference_of, gate_log):
    """reference == torchvision assembled here; fast == reference, bit for bit."""
    mb = baselines.model(case.model)
    if case.variant == "reference":
        oracle = torchvision_oracle(mb.preprocess)
        with torch_threads(1):
            truth = {name: oracle(measured.GOOD_IMAGES / name) for name, _ in fixture_set}
        dist = measured.measure_case(case, fixture_set, truth)
    else:
        dist = measured.measure_case(case, fixture_set, reference_of(case.model))
    record = preprocessing.gate_identical(case.model, case.variant, dist)
    record.details["stands_for"] = list(case.shared_with)
    gate_log(record)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_exact_outputs(case, decoded, reference_of, expected_record, recorded, gate_log):
    """Each variant reproduces its own recorded outputs bit for bit (the control of the fault matrix rows)."""
    gate_log(exact(case, decoded, reference_of, expected_record, recorded))


def test_parity_cases_cover_every_distinct_spec_and_variant():
    specs = {measured.spec_key(mb) for mb in baselines.load_all().values()}
    for variant in ("reference", "fast", "ascend-modelzoo"):
        covered = {measured.spec_key(baselines.model(c.model)) for c in CASES if c.variant == variant}
        assert covered == specs, variant
    assert {c.variant for c in CASES} == set(V.VARIANTS)
    timm_models = {c.model for c in CASES if c.variant == "timm-eval"}
    assert {"inception_v4", "gluon_inception_v3"} <= timm_models     # 0.5 vs ImageNet mean/std in timm's cfgs


def test_every_case_has_recorded_outputs_for_every_fixture(expected_record, fixture_set, recorded):
    names = {name for name, _ in fixture_set}
    for case in CASES:
        rec = expected_record.cases.get(case.id)
        assert rec is not None, f"record it: {expected.REGENERATE} ({case.id})"
        assert (rec.model, rec.variant, rec.decoder) == (case.model, case.variant, case.decoder), case.id
        assert set(rec.images) == names, f"{case.id}: fixtures changed; {expected.REGENERATE}"
    assert set(expected_record.cases) == {c.id for c in CASES}, "stale cases in the record"
    missing = [c.id for c in CASES if c.variant in V.DEPLOYED and (c.model, c.variant) not in recorded]
    assert not missing, f"record them: {expected.REGENERATE} ({missing})"


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
    if variant in V.VDSP_VARIANTS:
        pipe = measured.case_for("inception_v4", variant).pipeline()
        p = pipe.params
        bad = {"bgr": R(p, color_cvt="RGB2BGR"), "mean_std": R(p, **IMAGENET),
               # a 256 resize cannot hold the 299 crop: the emulated card then hands out 256x256 tensors
               "resize256": R(p, resize_width=256, resize_height=256, crop_x=0, crop_y=0, out_width=256, out_height=256),
               }[fault]
        return type(pipe)(bad)
    if variant == "timm-eval":
        cfg = V.timm_data_config("inception_v4")
        if fault == "bgr":
            return _flip_channels(V.TimmEvalPipeline("inception_v4", cfg))
        bad = {"mean_std": {**cfg, **IMAGENET}, "resize256": {**cfg, "crop_pct": 299 / 256},
               "interpolation": {**cfg, "interpolation": "bilinear"}}[fault]   # timm's own is bicubic
        return V.TimmEvalPipeline("inception_v4", bad)
    raise AssertionError(variant)


FAULTS = [(f, v) for v in ("fast", "ascend-modelzoo", *V.VDSP_VARIANTS, "timm-eval")
          for f in ("bgr", "mean_std", "resize256", "interpolation")
          if not (v in V.VDSP_VARIANTS and f == "interpolation")]   # vdsp_params has no bicubic to plant (BILINEAR_CV only)


@pytest.mark.parametrize("fault,variant", FAULTS, ids=[f"{f}-into-{v}" for f, v in FAULTS])
def test_planted_fault_fails_the_exact_gate(fault, variant, decoded, reference_of, expected_record, recorded):
    case = measured.case_for("inception_v4", variant)
    record = exact(case, decoded, reference_of, expected_record, recorded, pipeline=_planted(fault, variant))
    assert record.status == FAIL, record.explain()
    assert "inception_v4" in record.explain()
    if variant in V.IDENTICAL:          # fast also leaves the reference
        dist = measured.measure_case(case, decoded("pil"), reference_of("inception_v4"), pipeline=_planted(fault, variant))
        assert preprocessing.gate_identical("inception_v4", variant, dist).status == FAIL


def test_ascend_rounding_instead_of_truncation_fails_the_exact_gate(decoded, reference_of, expected_record, recorded):
    """If the Ascend variant silently started rounding like torchvision, every output moves by a pixel."""
    spec = baselines.model("inception_v4").preprocess
    record = exact(measured.case_for("inception_v4", "ascend-modelzoo"), decoded, reference_of, expected_record,
                   recorded, pipeline=V.build("fast", spec=spec))
    assert record.status == FAIL
    assert "21/21 images differ" in record.reason
    assert "crop shift 0 px in 0/21 images; recorded max abs" in record.reason   # the distance, as information


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
    assert preprocessing.gate_identical("m", "fast", dist).status == FAIL
    assert preprocessing.gate_identical("m", "fast", parity.summarise([])).status == SKIP
    same = parity.summarise([parity.compare_image(ref, ref.copy())])
    assert preprocessing.gate_identical("m", "fast", same).status == PASS


# ---- the exact gate on its own ----

def _outputs(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"img{i}.png": rng.standard_normal((3, 6, 5)).astype(np.float32) for i in range(3)}


def _case(outputs: dict[str, np.ndarray]) -> expected.ExpectedCase:
    return expected.ExpectedCase("m-vacc-vamp", "m", "vacc-vamp", "cv2", "vdsp std 0.5",
                                 {n: expected.digest(a, (0.5, 0.1)) for n, a in outputs.items()})


def test_exact_gate_passes_on_the_same_bytes_whatever_the_distance_to_the_reference():
    outputs = _outputs()
    far = parity.summarise([parity.compare_image(np.zeros((3, 6, 5)), a + 9, name=n) for n, a in outputs.items()])
    near = parity.RecordedDistance("m", "vacc-vamp", 0.5, 0.1, 0.1, 0, 0, 3, "test")
    record = preprocessing.gate_expected("m", "vacc-vamp", outputs, _case(outputs), recorded_libraries={},
                                    distance=far, recorded_distance=near)
    assert record.status == PASS, record.explain()          # the distance is information, never the verdict
    assert "3/3 images bit-identical" in record.reason
    assert "distance to the torchvision reference (information, not gated)" in record.reason
    assert record.details["distance_to_reference"]["gated"] is False


def test_exact_gate_failure_says_which_images_how_far_and_how_to_regenerate():
    outputs = _outputs()
    rec = _case(outputs)
    changed = dict(outputs)
    changed["img1.png"] = outputs["img1.png"] + np.float32(0.004)      # one image, every element
    del changed["img2.png"]
    changed["new.png"] = outputs["img0.png"]
    libs = {**expected.library_versions(), "Pillow": "0.0.1"}
    record = preprocessing.gate_expected("m", "vacc-vamp", changed, rec, recorded_libraries=libs, pipeline="vdsp std 0.501")
    assert record.status == FAIL
    text = record.explain()
    assert "1/3 images differ from the recorded outputs of m-vacc-vamp" in text
    assert "img1.png: channel mean" in text and "vs recorded" in text and "std" in text
    assert "at least 0.004 off" in text
    assert "recorded images not produced: img2.png" in text and "images without a recorded output: new.png" in text
    assert "pipeline now: 'vdsp std 0.501'; recorded: 'vdsp std 0.5'" in text
    assert "library versions differ from the record: Pillow" in text and "(recorded 0.0.1)" in text
    assert expected.REGENERATE in text and "vendor's own tool" in text
    shape = preprocessing.gate_expected("m", "vacc-vamp", {**outputs, "img0.png": outputs["img0.png"][:, :5]}, rec,
                                   recorded_libraries={})
    assert shape.status == FAIL and "float32 [3, 5, 5] vs recorded float32 [3, 6, 5]" in shape.reason
    dtype = preprocessing.gate_expected("m", "vacc-vamp", {**outputs, "img0.png": outputs["img0.png"].astype(np.float64)},
                                   rec, recorded_libraries={})
    assert dtype.status == FAIL and "float64" in dtype.reason


def test_one_ulp_fails_the_exact_gate():
    outputs = _outputs()
    nudged = dict(outputs)
    nudged["img0.png"] = outputs["img0.png"].copy()
    nudged["img0.png"][0, 0, 0] = np.nextafter(nudged["img0.png"][0, 0, 0], np.float32(np.inf))
    assert preprocessing.gate_expected("m", "vacc-vamp", nudged, _case(outputs)).status == FAIL


def test_exact_gate_without_a_record_skips_and_says_how_to_record():
    record = preprocessing.gate_expected("m", "vacc-vamp", _outputs(), None)
    assert record.status == SKIP
    assert expected.REGENERATE in record.reason and "vendor's own tool" in record.reason
    assert preprocessing.gate_expected("m", "vacc-vamp", {}, _case(_outputs())).status == SKIP


def test_stats_change_is_a_lower_bound_of_the_largest_change():
    rng = np.random.default_rng(3)
    for _ in range(20):
        a = rng.standard_normal((3, 7, 7)).astype(np.float32)
        b = a + rng.standard_normal(a.shape).astype(np.float32) * np.float32(rng.uniform(0, 0.01))
        change = preprocessing.ImageChange("x", expected.digest(b), expected.digest(a))
        assert change.at_least <= float(np.abs(b.astype(np.float64) - a).max()) + 1e-12


def test_record_renders_and_loads_back_exactly(tmp_path):
    case = _case(_outputs())
    path = tmp_path / "expected.json"
    path.write_text(expected.render([case], fixtures="fixtures/images/good", libraries={"Pillow": "1"}))
    back = expected.load(path)
    assert back.libraries == {"Pillow": "1"} and back.cases == {case.case_id: case}     # floats round-trip


def test_expected_file_rejects_malformed_entries(tmp_path):
    path = tmp_path / "expected.json"
    good_image = expected.digest(np.zeros((3, 2, 2), np.float32)).to_json()

    def doc(image=good_image, libraries=None):
        return {"meta": {"libraries": libraries or {"Pillow": "1"}}, "cases": {"m-fast": {
            "model": "m", "variant": "fast", "decoder": "pil", "pipeline": "p", "images": {"a.png": image}}}}

    import json
    path.write_text(json.dumps(doc()))
    assert expected.load(path).cases["m-fast"].images["a.png"].shape == (3, 2, 2)
    for bad, key in ((doc({**good_image, "sha256": "xyz"}), "cases.m-fast.images.a.png.sha256"),
                     (doc({k: v for k, v in good_image.items() if k != "std"}), "missing key(s) ['std']"),
                     (doc({**good_image, "mean": ["a"]}), "a.png.mean"),
                     (doc(libraries={"Pillow": 1}), "meta.libraries"),
                     ([1], "'meta' and 'cases'")):
        path.write_text(json.dumps(bad))
        with pytest.raises(ZoogateError) as err:
            expected.load(path)
        assert str(path) in str(err.value) and key in str(err.value)
    path.write_text("{not json")
    with pytest.raises(ZoogateError, match="not valid JSON"):
        expected.load(path)
    with pytest.raises(ZoogateError, match="not found"):
        expected.load(tmp_path / "absent.json")


# ---- decoders and planted faults ----

def test_decoders_differ_on_the_cmyk_jpeg_and_name_bad_files(tmp_path):
    path = measured.GOOD_IMAGES / planted.CMYK_FIXTURE
    pil, cv = (np.asarray(decoders.decode(path, d), dtype=np.int16) for d in ("pil", "cv2"))
    assert pil.shape == cv.shape and np.abs(pil - cv).max() >= 1        # the fault the decoder swap plants
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    for decoder in decoders.DECODERS:
        with pytest.raises(ZoogateError) as err:
            decoders.decode(bad, decoder)
        assert str(bad) in str(err.value)
    with pytest.raises(ZoogateError, match="unknown decoder"):
        decoders.decode(path, "nvjpeg")
    assert set(V.DECODER_OF) == set(V.VARIANTS) and set(V.DECODER_OF.values()) <= set(decoders.SWAPPED)


def test_planted_resize_reaches_every_deployed_pipeline():
    import timm.data

    for variant in V.DEPLOYED:
        pipe = planted.plant(measured.case_for("inception_v4", variant).pipeline(), planted.Change(resize=343))
        if variant in V.VDSP_VARIANTS:
            assert (pipe.params.resize_width, pipe.params.resize_height) == (343, 343)
        elif isinstance(pipe, V.TimmEvalPipeline):
            tf = timm.data.create_transform(**pipe.data_config, is_training=False)
            assert tf.transforms[0].size == 343, tf
        else:
            assert pipe.spec.resize == 343, variant


def test_vacc_variants_decode_with_opencv_and_their_decoder_fault_is_pil():
    cmyk = next(f for f in planted.EXACT_FAULTS if f.other_decoder)
    for variant in V.VDSP_VARIANTS:
        assert V.decoder_of(variant) == "cv2"
        _, overrides = cmyk.apply(measured.case_for("inception_v4", variant).pipeline(), "cv2")
        assert overrides == {planted.CMYK_FIXTURE: "pil"}
        assert "decoded with PIL" in cmyk.describe("cv2") and "documented OpenCV" in cmyk.describe("cv2")
    # the EXIF-rotated fixture reaches the VACC flows rotated: stored 400x300, OpenCV decodes it 300x400
    exif = measured.GOOD_IMAGES / "exif_orientation6_400x300.jpg"
    assert decoders.decode(exif, "cv2").size == (300, 400) and decoders.decode(exif, "pil").size == (400, 300)


def test_planted_changes_reach_each_setting_or_say_why_not():
    vamp = measured.case_for("inception_v4", "vacc-vamp").pipeline()
    fast = V.build("fast", "inception_v4")
    assert isinstance(planted.plant(fast, planted.Change(crop_rounding="truncate")), V.AscendModelzooPipeline)
    assert isinstance(planted.plant(V.build("ascend-modelzoo", "inception_v4"), planted.Change(crop_rounding="round")),
                      type(fast))
    rounded = planted.plant(vamp, planted.Change(crop_rounding="round")).params      # (342 - 299) / 2 = 21.5 -> 22
    assert (rounded.crop_x, rounded.crop_y) == (22, 22) and (vamp.params.crop_x, vamp.params.crop_y) == (21, 21)
    small = planted.plant(vamp, planted.Change(resize=256, crop=256)).params
    assert (small.resize_width, small.out_width, small.crop_x) == (256, 256, 0)
    assert planted.plant(fast, planted.Change(mean_std=planted.IMAGENET_MEAN_STD)).spec.mean == (0.485, 0.456, 0.406)
    with pytest.raises(planted.NotPlantable, match="BILINEAR_CV"):
        planted.plant(vamp, planted.Change(interpolation="bicubic"))
    img = Image.new("RGB", (40, 30), (10, 20, 30))
    assert np.array_equal(planted.plant(vamp, planted.Change(channels_reversed=True))(img), vamp(img)[::-1])
    assert planted.plant(fast, planted.Change()) == fast


def test_baseline_rows_name_library_variants():
    """A documented hardware row says which preprocessing flow produced it (the VACC rows: vacc-vsx, the
    model zoo's classification.py); that name must be a variant this library emulates."""
    named = {row.preprocess_variant for mb in baselines.load_all().values() for row in mb.rows if row.preprocess_variant}
    assert "vacc-vsx" in named and named <= set(V.VARIANTS)


def test_fault_matrix_plants_every_exact_fault_into_every_deployed_variant():
    ids = {f.id: f for f in faults.FAULTS}
    for fault in planted.EXACT_FAULTS:
        for variant in V.DEPLOYED:
            row = ids[f"{fault.id}-into-{variant}"]
            assert (row.gate, row.check, row.control is not None) == ("preprocessing", expected.CHECK, True)


def test_frac_off_counts_pixels_more_than_one_level_off():
    spec = baselines.model("iresnet50").preprocess
    ref = np.zeros((3, 2, 2), np.float32)
    out = ref.copy()
    out[0, 0, 0] = 1 / 255 / spec.std[0]          # one level: not off
    out[2, 1, 1] = 2 / 255 / spec.std[2]          # two levels in the blue channel: off
    d = parity.compare_image(ref, out, spec)
    assert d.frac_off == pytest.approx(0.25)
