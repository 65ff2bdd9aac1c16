"""The preprocessing fixtures and the inputs users hand us: fixture coverage, broken images, vdsp_params
files, the recorded-distances file, output writers and crop geometry."""

from __future__ import annotations

import json
import runpy
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from zoogate.errors import ZoogateError
from zoogate.preprocess import geometry, measured, vdsp, writers
from zoogate.preprocess.fast import decode_rgb

MAKE_FIXTURES = measured.FIXTURE_DIR / "make_fixtures.py"
LOSSLESS = (".png", ".gif")


def _generator():
    return SimpleNamespace(**runpy.run_path(str(MAKE_FIXTURES)))     # no .pyc left in fixtures/


# ---- fixtures ----

def test_fixture_set_is_small_and_covers_modes_formats_and_geometry():
    ours = [p for sub in ("images", "vdsp_params") for p in (measured.FIXTURE_DIR / sub).rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in ours) < 1_000_000                 # commit-sized
    good = {p.name: Image.open(p) for p in measured.GOOD_IMAGES.iterdir()}
    assert {im.mode for im in good.values()} >= {"L", "LA", "P", "RGBA", "CMYK", "I;16", "RGB"}
    assert {im.format for im in good.values()} >= {"JPEG", "PNG", "WEBP"}
    sizes = [im.size for im in good.values()]
    assert any(w < 299 and h < 299 for w, h in sizes)                      # smaller than the crop
    assert any(max(w, h) >= 20 * min(w, h) for w, h in sizes)              # extreme aspect ratio
    assert any(im.getexif().get(0x0112) == 6 for im in good.values())      # EXIF-rotated JPEG
    margins = [geometry.short_side_size(w, h, 342) for w, h in sizes]
    rounding_differs = [geometry.crop_offset(max(m), 299, "round") != geometry.crop_offset(max(m), 299, "truncate")
                        for m in margins]
    assert any(rounding_differs) and not all(rounding_differs)             # odd long-side margins both ways
    assert sorted(p.name for p in measured.BAD_IMAGES.iterdir()) == sorted(_generator().BAD_NOTES)


REGENERATE = ("fixtures differ from what fixtures/make_fixtures.py writes: regenerate them "
              "(python fixtures/make_fixtures.py) and re-record the variant distances "
              "(python -m zoogate.preprocess.measured --write)")


def test_fixtures_are_what_the_generator_writes(tmp_path):
    gen = _generator()
    gen.generate(tmp_path)
    for sub in ("images/good", "images/bad", "vdsp_params"):
        committed = sorted(p.name for p in (measured.FIXTURE_DIR / sub).iterdir())
        assert committed == sorted(p.name for p in (tmp_path / sub).iterdir()), REGENERATE
    for p in (measured.FIXTURE_DIR / "images" / "good").iterdir():
        fresh = Image.open(tmp_path / "images" / "good" / p.name)
        mine = Image.open(p)
        assert (mine.mode, mine.size) == (fresh.mode, fresh.size), f"{p.name}: {REGENERATE}"
        if p.suffix in LOSSLESS:      # lossy encoders may differ by library version; lossless pixels may not
            assert np.array_equal(np.asarray(mine), np.asarray(fresh)), f"{p.name}: {REGENERATE}"
    for sub in ("images/bad", "vdsp_params"):
        for p in (measured.FIXTURE_DIR / sub).iterdir():
            if sub == "vdsp_params" or p.name != "truncated.jpg":
                assert p.read_bytes() == (tmp_path / sub / p.name).read_bytes(), f"{p.name}: {REGENERATE}"


@pytest.mark.parametrize("name,problem", [("truncated.jpg", "truncated"), ("zero_bytes.jpg", "empty file"),
                                          ("not_an_image.jpg", "not an image"), ("readme.txt", "not an image")])
def test_broken_fixture_raises_zoogate_error_naming_the_file(name, problem):
    path = measured.BAD_IMAGES / name
    with pytest.raises(ZoogateError) as err:
        decode_rgb(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_exif_fixture_is_read_in_its_stored_layout():
    path = measured.GOOD_IMAGES / "exif_orientation6_400x300.jpg"
    assert decode_rgb(path).size == (400, 300)
    assert np.array_equal(np.asarray(decode_rgb(path)), np.asarray(Image.open(path).convert("RGB")))


# ---- vdsp_params ----

def test_vdsp_fixtures_parse_and_round_trip():
    for path in measured.VDSP_DIR.iterdir():
        params = vdsp.load_params(path)
        assert params.to_json() == json.loads(path.read_text())
        assert params.crop_x + params.out_width <= params.resize_width
    inc = vdsp.load_params(measured.VDSP_DIR / "timm-inception_v4-vdsp_params.json")
    assert (inc.resize_width, inc.out_width, inc.crop_x, inc.mean) == (342, 299, 21, (0.5, 0.5, 0.5))
    ires = vdsp.load_params(measured.VDSP_DIR / "iresnet-vdsp_params.json")
    assert (ires.resize_width, ires.out_width, ires.crop_x) == (256, 224, 16)
    for got, documented in zip(ires.mean + ires.std, (0.485, 0.456, 0.406, 0.229, 0.224, 0.225)):
        assert got == float(np.float16(documented)) and got != documented   # float16-rounded, as the card stores


def _doc(**config):
    base = json.loads((measured.VDSP_DIR / "timm-inception_v4-vdsp_params.json").read_text())
    base["OpConfig"].update(config)
    return base


@pytest.mark.parametrize("doc,key", [
    (_doc(ResizeType="BICUBIC"), "ResizeType"),
    (_doc(NormaType="DIV255"), "NormaType"),
    (_doc(CropX=50), "crop window"),
    (_doc(Std=[0.5, 0, 0.5]), "Std"),
    (_doc(Mean=[0.5, 0.5]), "Mean"),
    (_doc(ResizeWidth="342"), "ResizeWidth"),
    ({"OpType": "FUSION_OP_RGB_LETTERBOX_CVTCOLOR_NORM_TENSOR", "OpConfig": {}}, "OpType"),
    ({"OpConfig": {"ResizeWidth": 342}, "OpType": "FUSION_OP_RGB_RESIZE_CVTCOLOR_CROP_NORM_TENSOR"}, "missing"),
    ([1, 2], "OpConfig"),
], ids=["bicubic", "norm-type", "crop-too-big", "std-zero", "mean-2", "width-str", "other-op", "missing", "not-object"])
def test_bad_vdsp_params_name_the_file_and_key(doc, key, tmp_path):
    path = tmp_path / "params.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ZoogateError) as err:
        vdsp.load_params(path)
    assert str(path) in str(err.value) and key in str(err.value)


def test_vdsp_params_that_are_not_json(tmp_path):
    path = tmp_path / "params.json"
    path.write_text("{ResizeWidth: 342")
    with pytest.raises(ZoogateError, match="not valid JSON"):
        vdsp.load_params(path)


# ---- recorded distances ----

def test_recorded_distances_file_rejects_malformed_entries(tmp_path):
    path = tmp_path / "pv.toml"
    path.write_text("[inception_v4.ascend-modelzoo]\nmax_abs = 0.5\nmean_abs = 0.01\n")
    with pytest.raises(ZoogateError, match="inception_v4.ascend-modelzoo: missing"):
        measured.load_recorded(path)
    path.write_text("[inception_v4.ascend-modelzoo]\nmax_abs = -1\nmean_abs = 0.01\nfrac_off = 0.1\n"
                    "max_shift_px = 1\nshifted_images = 2\nimages = 3\n")
    with pytest.raises(ZoogateError, match="max_abs: expected a non-negative number"):
        measured.load_recorded(path)
    path.write_text("[inception_v4.no-such-variant]\nmax_abs = 1\n")
    with pytest.raises(ZoogateError, match="unknown variant"):
        measured.load_recorded(path)


# ---- writers and geometry ----

def test_writers_round_trip_and_leave_no_temporary_files(tmp_path):
    chw = np.random.default_rng(0).standard_normal((3, 5, 4)).astype(np.float32)
    writers.write_tensor(tmp_path / "a.bin", chw, "bin")
    writers.write_tensor(tmp_path / "a.npy", chw, "npy")
    writers.write_npz_image(tmp_path / "a.npz", np.zeros((3, 7, 9), np.uint8))
    assert np.array_equal(writers.read_bin(tmp_path / "a.bin", (3, 5, 4)), chw)
    assert np.array_equal(writers.read_npy(tmp_path / "a.npy"), chw)
    assert writers.read_npz_image(tmp_path / "a.npz").shape == (3, 7, 9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "a.npy", "a.npz"]
    with pytest.raises(ZoogateError, match="expected 75 for shape"):
        writers.read_bin(tmp_path / "a.bin", (3, 5, 5))
    with pytest.raises(ValueError):
        writers.write_npz_image(tmp_path / "b.npz", np.zeros((7, 9, 3), np.uint8))     # HWC is not the layout
    assert not (tmp_path / "b.npz").exists()


@pytest.mark.parametrize("size,crop,rounded,truncated", [
    (342, 299, 22, 21),      # margin 43: 21.5 -> 22 (round half to even) vs 21
    (344, 299, 22, 22),      # margin 45: 22.5 -> 22 (half to even) == truncation
    (456, 299, 78, 78),      # margin 157: 78.5 -> 78
    (256, 224, 16, 16),
    (256, 299, -21, -21),    # smaller than the crop: torchvision pads 21 left, PIL's crop starts at -21
    (255, 299, -22, -22),
])
def test_crop_offsets(size, crop, rounded, truncated):
    assert geometry.crop_offset(size, crop, "round") == rounded
    assert geometry.crop_offset(size, crop, "truncate") == truncated


def test_short_side_size_truncates_the_long_side():
    assert geometry.short_side_size(500, 375, 342) == (456, 342)
    assert geometry.short_side_size(375, 500, 342) == (342, 456)
    assert geometry.short_side_size(500, 333, 342) == (513, 342)      # 513.5 -> 513
    assert geometry.short_side_size(300, 300, 256) == (256, 256)
