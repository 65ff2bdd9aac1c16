"""Property tests of the preprocessing variants over generated images: any width/height (smaller than
the crop, extreme aspect ratios, odd margins), any mode (L, LA, P, RGBA, CMYK, I;16, RGB), EXIF
orientation, and JPEG/PNG/WebP encoding."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from zoogate import baselines
from zoogate.errors import ZoogateError
from zoogate.preprocess import geometry, measured, vdsp
from zoogate.preprocess import variants as V
from zoogate.preprocess.fast import decode_rgb
from zoogate.preprocess.reference import torch_threads

MODES_BY_FORMAT = {"PNG": ("RGB", "L", "LA", "P", "RGBA", "I;16"), "JPEG": ("RGB", "L", "CMYK"),
                   "WEBP": ("RGB", "RGBA")}
EXIF_ORIENTATION = 0x0112
SPECS = {measured.spec_key(mb): mb.preprocess for mb in baselines.load_all().values()}   # the distinct specs
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _content(seed: int, width: int, height: int, mode: str) -> Image.Image:
    """Cheap image-like pixels: a coarse random grid, bilinearly enlarged, plus noise."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8))
    arr = np.asarray(coarse.resize((width, height), Image.Resampling.BILINEAR)).astype(np.int16)
    arr = np.clip(arr + rng.integers(-12, 13, arr.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr)
    if mode == "I;16":
        return Image.fromarray((arr[..., 0].astype(np.uint16) * 3))      # 0..765: convert('RGB') clips at 255
    if mode == "RGBA":
        img.putalpha(Image.fromarray(arr[..., 1]))
        return img
    if mode == "LA":
        return img.convert("LA")
    if mode == "P":
        return img.convert("P", palette=Image.Palette.ADAPTIVE, colors=48)
    return img.convert(mode)


@st.composite
def encoded_images(draw, max_ratio: int = 20) -> tuple[bytes, str, int]:
    """(file bytes, format, EXIF orientation) for an image of a drawn size, mode and encoding."""
    short = draw(st.integers(1, 300))
    ratio = draw(st.sampled_from([1.0, 1.001, 4 / 3, 1.5, 2.0, 3.7, 9.0, float(max_ratio)]))
    long = max(short, min(int(short * ratio), 640))
    width, height = (long, short) if draw(st.booleans()) else (short, long)
    fmt = draw(st.sampled_from(sorted(MODES_BY_FORMAT)))
    mode = draw(st.sampled_from(MODES_BY_FORMAT[fmt]))
    orientation = draw(st.sampled_from([1, 3, 6, 8]))
    img = _content(draw(st.integers(0, 2**16)), width, height, mode)
    options = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    buf = io.BytesIO()
    img.save(buf, fmt, exif=exif.tobytes(), **options)
    return buf.getvalue(), fmt, orientation


def _as_file(data: bytes, suffix: str = ".img") -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix, prefix="zoogate-prop-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return Path(name)


@pytest.fixture(autouse=True, scope="module")
def _single_torch_thread():
    with torch_threads(1):
        yield


@SETTINGS
@given(encoded_images())
def test_fast_is_bit_identical_to_reference(case):
    data, _, _ = case
    img = Image.open(io.BytesIO(data)).convert("RGB")
    for spec in SPECS.values():
        ref = V.build("reference", spec=spec)(img)
        out = V.build("fast", spec=spec)(img)
        assert out.dtype == np.float32 and out.shape == (3, spec.crop, spec.crop)
        assert np.array_equal(out, ref), spec.describe()


@SETTINGS
@given(encoded_images())
def test_decoding_ignores_exif_orientation_like_the_reference(case):
    data, _, orientation = case
    path = _as_file(data)
    try:
        raw = Image.open(path)
        ours = decode_rgb(path)
        assert ours.size == raw.size                                  # stored layout, not the displayed one
        assert np.array_equal(np.asarray(ours), np.asarray(raw.convert("RGB")))
        if orientation in (6, 8) and raw.size[0] != raw.size[1] and raw.getexif().get(EXIF_ORIENTATION) == orientation:
            assert ImageOps.exif_transpose(raw).size == raw.size[::-1]   # the tag is there; we did not apply it
    finally:
        path.unlink()


@SETTINGS
@given(encoded_images())
def test_ascend_equals_reference_moved_by_the_offset_rounding(case):
    data, _, _ = case
    img = Image.open(io.BytesIO(data)).convert("RGB")
    for spec in SPECS.values():
        ref = V.build("fast", spec=spec)(img)          # bit-identical to the reference (test above)
        out = V.build("ascend-modelzoo", spec=spec)(img)
        w, h = geometry.short_side_size(*img.size, spec.resize)
        dx, dy = (geometry.crop_offset(s, spec.crop, "truncate") - geometry.crop_offset(s, spec.crop, "round")
                  for s in (w, h))
        assert dx in (-1, 0) and dy in (-1, 0)
        c = spec.crop
        # out[y, x] == ref[y + dy, x + dx] wherever both exist
        assert np.array_equal(out[:, -dy:, -dx:], ref[:, :c + dy, :c + dx])


@SETTINGS
@given(side=st.integers(1, 342), seed=st.integers(0, 2**16))
def test_vdsp_on_square_images_is_reference_shifted_within_one_level(side, seed):
    """A square image has no aspect ratio to lose: the vdsp op's 342x342 resize equals torchvision's up to
    the interpolation's rounding (<= 1 level) when upscaling, and its crop at 21 sits 1 px up-left of 22."""
    spec = baselines.model("inception_v4").preprocess
    params = vdsp.load_params(measured.VDSP_DIR / measured.VDSP_FIXTURES[("inception_v4", "inception")])
    img = _content(seed, side, side, "RGB")
    ref = V.build("fast", spec=spec)(img)
    out = vdsp.VampPipeline(params)(img)
    levels = np.abs(out[:, 1:, 1:] - ref[:, :-1, :-1]) * np.asarray(spec.std, np.float32)[:, None, None] * 255
    slack = baselines.tolerance("level_roundtrip_slack").value
    assert levels.max() <= baselines.tolerance("interpolation_rounding_levels").value + slack
    if side == spec.resize:                             # no resize at all: the crop is the only difference
        assert levels.max() <= slack


@SETTINGS
@given(st.binary(max_size=64) | encoded_images().map(lambda c: c[0]).flatmap(
    lambda d: st.integers(0, max(len(d) - 1, 0)).map(lambda n: d[:n])))
def test_broken_files_raise_zoogate_error_naming_the_file(data):
    """Random bytes and truncated encodings either decode or raise ZoogateError naming the file."""
    path = _as_file(data, ".jpg")
    try:
        try:
            img = decode_rgb(path)
        except ZoogateError as exc:
            assert str(path) in str(exc)
        else:
            assert img.mode == "RGB"
    finally:
        path.unlink()


@settings(max_examples=30, deadline=None)
@given(w=st.integers(1, 700), h=st.integers(1, 700), resize=st.integers(1, 400), seed=st.integers(0, 2**16))
def test_vdsp_op_on_interleaved_pixels_equals_the_planar_op(w, h, resize, seed):
    """The card's op reads RGB_PLANAR; we resize the interleaved image: the same bytes, because OpenCV's
    bilinear resamples each channel on its own (one plane at a time here, as the card holds them)."""
    import cv2

    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    crop = max(1, resize * 7 // 8)
    params = vdsp.VdspParams(resize, resize, crop, crop, (resize - crop) // 2, (resize - crop) // 2,
                             (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    planes = np.stack([cv2.resize(np.ascontiguousarray(rgb[..., c]), (resize, resize), interpolation=cv2.INTER_LINEAR)
                       for c in range(3)])
    o = params.crop_x
    window = planes[:, o:o + crop, o:o + crop].astype(np.float32)
    want = (window / np.float32(255) - np.asarray(params.mean, np.float32)[:, None, None]) \
        / np.asarray(params.std, np.float32)[:, None, None]
    assert np.array_equal(vdsp.fusion_op(rgb, params), want)


@settings(max_examples=30, deadline=None)
@given(w=st.integers(2, 400), h=st.integers(2, 400), seed=st.integers(0, 2**16))
def test_vsx_resamples_exactly_the_odd_sized_images(w, h, seed):
    """vsx classification.py resizes an image with an odd side to even sides before the op; an image with
    two even sides reaches the op untouched, so vsx and vamp agree on it bit for bit."""
    params = vdsp.load_params(measured.VDSP_DIR / measured.VDSP_FIXTURES[("inception_v4", "inception")])
    img = _content(seed, w, h, "RGB")
    even = vdsp.even_size(np.asarray(img))
    assert even.shape[:2] == (h // 2 * 2, w // 2 * 2)
    vsx, vamp = vdsp.VsxPipeline(params)(img), vdsp.VampPipeline(params)(img)
    assert vsx.shape == vamp.shape == (3, params.out_height, params.out_width)
    if w % 2 == 0 and h % 2 == 0:
        assert np.array_equal(vsx, vamp)
    else:
        assert np.array_equal(vsx, vdsp.fusion_op(even, params))


def test_vsx_refuses_a_one_pixel_side_with_a_reason():
    params = vdsp.load_params(measured.VDSP_DIR / measured.VDSP_FIXTURES[("inception_v4", "inception")])
    with pytest.raises(ValueError, match="side of 1 px"):
        vdsp.VsxPipeline(params)(Image.new("RGB", (1, 7)))
    assert vdsp.VampPipeline(params)(Image.new("RGB", (1, 7))).shape == (3, 299, 299)
