"""`vacc-vdsp`: an emulation, on the host, of what a Vastai card's vdsp does to an image before the model.

Driven by the same vdsp_params JSON that `vamp --vdsp_params` and VastStreamX's
``vsx.Operator.load_ops_from_json_file`` read. The model zoo ships one per model
(``build_in/vdsp_params/<source>-<model>-vdsp_params.json``), with this key set::

    {"OpType": "FUSION_OP_RGB_RESIZE_CVTCOLOR_CROP_NORM_TENSOR",
     "OpConfig": {"IimageFormat": "RGB_PLANAR", "IimageWidth": 342, "IimageHeight": 342,
                  "OimageWidth": 299, "OimageHeight": 299, "CropX": 21, "CropY": 21,
                  "ResizeWidth": 342, "ResizeHeight": 342, "IimageWidthPitch": 342, "IimageHeightPitch": 342,
                  "Mean": [...], "Std": [...], "NormaType": "DIV255_MINUSMEAN_DIVSTD",
                  "ColorCvtCode": "NO_CHANGE", "ResizeType": "BILINEAR_CV"}}

parse_params reads it (the Iimage* keys are optional: older minimal documents lack them) and
VdspParams.to_json writes it back in that key order. A file holding a list of operators stands for
its first one, the one ``load_ops_from_json_file(path)[0]`` gives.

Iimage* describe the input image buffer the op is configured for. How the card maps an image of another
size onto them is not documented; the emulation resizes the image it is given, whatever its size.

Semantics emulated: the whole image is resized to ResizeWidth x ResizeHeight (a square for the
classifiers: the aspect ratio is NOT kept) with OpenCV-style bilinear (BILINEAR_CV), the window
(CropX, CropY, OimageWidth, OimageHeight) is cut out, then ``(x / 255 - Mean) / Std`` per channel.

The resize is cv2.resize(INTER_LINEAR) on uint8 re-done in numpy: half-pixel centres
``f = (d + 0.5) * src/dst - 0.5``, 11-bit fixed-point weights, and OpenCV's row/column border rules
and rounding (see cv_linear_resize). Checked against opencv-python-headless 5.0.0 (a dependency for
the OpenCV decoder, zoogate.preprocess.decoders; the emulation itself does not call it) on 2026-11-23: equal bit for bit on 160+ size pairs (edge cases from 1x1 and exact 2x
shrinks, and random sizes up to 900x900, up- and downscaling, square and not);
suites/test_preprocess_properties.py repeats the check whenever cv2 happens to be installed.
Not emulated: the card's float16 arithmetic (we normalise in float32) and its JPEG decoder (the
host decodes with PIL, as for the reference; EXIF orientation is not applied).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from zoogate.errors import ZoogateError

OP_TYPE = "FUSION_OP_RGB_RESIZE_CVTCOLOR_CROP_NORM_TENSOR"
NORM_TYPES = ("DIV255_MINUSMEAN_DIVSTD", "MINUSMEAN_DIVSTD")
COLOR_CODES = ("NO_CHANGE", "RGB2BGR", "BGR2RGB")   # RGB_PLANAR input: either swap gives BGR planes
RESIZE_TYPES = ("BILINEAR_CV",)
IMAGE_FORMATS = ("RGB_PLANAR",)
_INT_KEYS = ("ResizeWidth", "ResizeHeight", "OimageWidth", "OimageHeight", "CropX", "CropY")
_INPUT_KEYS = ("IimageWidth", "IimageHeight", "IimageWidthPitch", "IimageHeightPitch")    # optional
# OpConfig keys in the order the model zoo's files list them (to_json writes this order)
OP_CONFIG_KEYS = ("IimageFormat", "IimageWidth", "IimageHeight", "OimageWidth", "OimageHeight", "CropX", "CropY",
                  "ResizeWidth", "ResizeHeight", "IimageWidthPitch", "IimageHeightPitch", "Mean", "Std",
                  "NormaType", "ColorCvtCode", "ResizeType")

COEF_BITS = 11                      # OpenCV INTER_RESIZE_COEF_BITS
COEF_ONE = 1 << COEF_BITS


@dataclass(frozen=True)
class VdspParams:
    resize_width: int
    resize_height: int
    out_width: int
    out_height: int
    crop_x: int
    crop_y: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    norm_type: str = "DIV255_MINUSMEAN_DIVSTD"
    color_cvt: str = "NO_CHANGE"
    resize_type: str = "BILINEAR_CV"
    image_format: str = "RGB_PLANAR"
    # the input image buffer (Iimage*); None where the document does not say
    image_width: int | None = None
    image_height: int | None = None
    image_width_pitch: int | None = None
    image_height_pitch: int | None = None
    source: str = ""

    def to_json(self) -> dict:
        """The vdsp_params document for these values, keys in the model zoo's order (absent Iimage* left out)."""
        values = {"IimageFormat": self.image_format, "IimageWidth": self.image_width,
                  "IimageHeight": self.image_height, "OimageWidth": self.out_width, "OimageHeight": self.out_height,
                  "CropX": self.crop_x, "CropY": self.crop_y, "ResizeWidth": self.resize_width,
                  "ResizeHeight": self.resize_height, "IimageWidthPitch": self.image_width_pitch,
                  "IimageHeightPitch": self.image_height_pitch, "Mean": list(self.mean), "Std": list(self.std),
                  "NormaType": self.norm_type, "ColorCvtCode": self.color_cvt, "ResizeType": self.resize_type}
        return {"OpType": OP_TYPE, "OpConfig": {k: values[k] for k in OP_CONFIG_KEYS if values[k] is not None}}

    def describe(self) -> str:
        return (f"square resize {self.resize_width}x{self.resize_height} ({self.resize_type}) -> crop "
                f"({self.crop_x},{self.crop_y}) {self.out_width}x{self.out_height} -> {self.norm_type} "
                f"mean={list(self.mean)} std={list(self.std)} [{self.color_cvt}]")


def _positive_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def first_op(doc: object, where: str | os.PathLike = "vdsp_params") -> object:
    """The operator a document stands for: itself, or the first of a list (``load_ops_from_json_file(path)[0]``)."""
    if isinstance(doc, list):
        if not doc:
            raise ZoogateError("an empty list of operators (expected an object with 'OpType' and 'OpConfig')", where)
        return doc[0]
    return doc


def parse_params(doc: object, where: str | os.PathLike = "vdsp_params") -> VdspParams:
    """Validate a vdsp_params document; every problem names the file and the key."""
    if not isinstance(doc, dict) or not isinstance(doc.get("OpConfig"), dict):
        raise ZoogateError("expected an object with 'OpType' and an 'OpConfig' object", where)
    if doc.get("OpType") != OP_TYPE:
        raise ZoogateError(f"OpType: {doc.get('OpType')!r} is not emulated (only {OP_TYPE})", where)
    cfg = doc["OpConfig"]
    missing = [k for k in (*_INT_KEYS, "Mean", "Std") if k not in cfg]
    if missing:
        raise ZoogateError(f"OpConfig: missing key(s) {missing}", where)
    for key in _INT_KEYS:
        v = cfg[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < 0 or (v == 0 and not key.startswith("Crop")):
            raise ZoogateError(f"OpConfig.{key}: expected a {'non-negative' if key.startswith('Crop') else 'positive'}"
                               f" integer, got {v!r}", where)
    for key in _INPUT_KEYS:
        if key in cfg and not _positive_int(cfg[key]):
            raise ZoogateError(f"OpConfig.{key}: expected a positive integer, got {cfg[key]!r}", where)
    for size, pitch in (("IimageWidth", "IimageWidthPitch"), ("IimageHeight", "IimageHeightPitch")):
        if size in cfg and pitch in cfg and cfg[pitch] < cfg[size]:
            raise ZoogateError(f"OpConfig.{pitch}: {cfg[pitch]} is smaller than {size} {cfg[size]} "
                               f"(a pitch is the buffer's row/plane stride)", where)
    for key in ("Mean", "Std"):
        v = cfg[key]
        if (not isinstance(v, list) or len(v) != 3
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)):
            raise ZoogateError(f"OpConfig.{key}: expected 3 numbers, got {v!r}", where)
    if not all(x > 0 for x in cfg["Std"]):
        raise ZoogateError(f"OpConfig.Std: every value must be > 0, got {cfg['Std']!r}", where)
    choices = {"NormaType": NORM_TYPES, "ColorCvtCode": COLOR_CODES, "ResizeType": RESIZE_TYPES,
               "IimageFormat": IMAGE_FORMATS}
    defaults = {"NormaType": NORM_TYPES[0], "ColorCvtCode": "NO_CHANGE", "ResizeType": "BILINEAR_CV",
                "IimageFormat": "RGB_PLANAR"}
    picked = {}
    for key, allowed in choices.items():
        v = cfg.get(key, defaults[key])
        if v not in allowed:
            raise ZoogateError(f"OpConfig.{key}: {v!r} is not emulated (supported: {', '.join(allowed)})", where)
        picked[key] = v
    if cfg["CropX"] + cfg["OimageWidth"] > cfg["ResizeWidth"] or cfg["CropY"] + cfg["OimageHeight"] > cfg["ResizeHeight"]:
        raise ZoogateError(f"OpConfig: crop window ({cfg['CropX']},{cfg['CropY']}) {cfg['OimageWidth']}x"
                           f"{cfg['OimageHeight']} does not fit in the {cfg['ResizeWidth']}x{cfg['ResizeHeight']} resize",
                           where)
    return VdspParams(resize_width=cfg["ResizeWidth"], resize_height=cfg["ResizeHeight"],
                      out_width=cfg["OimageWidth"], out_height=cfg["OimageHeight"], crop_x=cfg["CropX"],
                      crop_y=cfg["CropY"], mean=tuple(float(x) for x in cfg["Mean"]),
                      std=tuple(float(x) for x in cfg["Std"]), norm_type=picked["NormaType"],
                      color_cvt=picked["ColorCvtCode"], resize_type=picked["ResizeType"],
                      image_format=picked["IimageFormat"], image_width=cfg.get("IimageWidth"),
                      image_height=cfg.get("IimageHeight"), image_width_pitch=cfg.get("IimageWidthPitch"),
                      image_height_pitch=cfg.get("IimageHeightPitch"), source=os.fspath(where))


def load_params(path: str | os.PathLike) -> VdspParams:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ZoogateError("vdsp_params file not found", path) from None
    except IsADirectoryError:
        raise ZoogateError("vdsp_params is a directory, expected a JSON file", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ZoogateError(f"cannot read vdsp_params file ({exc})", path) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ZoogateError(f"not valid JSON ({exc})", path) from None
    return parse_params(first_op(doc, path), path)


# ---- OpenCV-style bilinear on uint8 ----

def _coefficients(frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV: float32 (1 - f, f) scaled by 2^11 and rounded to nearest (cvRound, half to even)."""
    c0 = np.rint((np.float32(1) - frac) * np.float32(COEF_ONE)).astype(np.int32)
    c1 = np.rint(frac * np.float32(COEF_ONE)).astype(np.int32)
    return c0, c1


def _source_positions(src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Half-pixel centres in float32 as OpenCV computes them: f = (d + 0.5) * (1 / (dst / src)) - 0.5."""
    scale = 1.0 / (dst / src)
    f = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    i0 = np.floor(f).astype(np.int64)
    return i0, (f - i0.astype(np.float32)).astype(np.float32)


def _column_taps(src: int, dst: int):
    # columns: a tap left of 0 or right of the last pixel takes the edge pixel with weight one
    i0, frac = _source_positions(src, dst)
    outside = (i0 < 0) | (i0 >= src - 1)
    frac = np.where(outside, np.float32(0), frac).astype(np.float32)
    i0 = np.clip(i0, 0, src - 1)
    return i0, np.minimum(i0 + 1, src - 1), *_coefficients(frac)


def _row_taps(src: int, dst: int):
    # rows: the fraction is kept and both taps are clamped to the image (OpenCV's row rule differs
    # from its column rule; with two separately rounded products this changes edge rows by one level)
    i0, frac = _source_positions(src, dst)
    return np.clip(i0, 0, src - 1), np.clip(i0 + 1, 0, src - 1), *_coefficients(frac)


def cv_linear_resize(hwc: np.ndarray, width: int, height: int) -> np.ndarray:
    """cv2.resize(hwc, (width, height), interpolation=INTER_LINEAR) for uint8 HxWxC, in numpy."""
    if hwc.dtype != np.uint8 or hwc.ndim != 3:
        raise ValueError(f"expected uint8 HxWxC, got {hwc.dtype} {hwc.shape}")
    src_h, src_w = hwc.shape[:2]
    if (src_w, src_h) == (width, height):
        return hwc.copy()
    pixels = hwc.astype(np.int32)      # largest intermediate: 32640 * 2048 < 2^31
    if (src_w, src_h) == (2 * width, 2 * height):
        # OpenCV hands an exact 2x downscale to its area averaging: mean of each 2x2 block, rounded
        block = pixels[0::2, 0::2] + pixels[0::2, 1::2] + pixels[1::2, 0::2] + pixels[1::2, 1::2]
        return ((block + 2) >> 2).astype(np.uint8)
    x0, x1, a0, a1 = _column_taps(src_w, width)
    y0, y1, b0, b1 = _row_taps(src_h, height)
    rows = pixels[:, x0] * a0[None, :, None] + pixels[:, x1] * a1[None, :, None]    # 2^11-scaled
    # the vectorised vertical pass: (((r >> 4) * b) >> 16) per tap, summed, then (+2) >> 2
    top = ((rows[y0] >> 4) * b0[:, None, None]) >> 16
    bottom = ((rows[y1] >> 4) * b1[:, None, None]) >> 16
    return np.clip((top + bottom + 2) >> 2, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class VdspPipeline:
    """Callable PIL image -> float32 CHW (OimageHeight x OimageWidth), the vdsp emulation."""

    params: VdspParams
    name: str = "vacc-vdsp"

    def describe(self) -> str:
        src = f" from {self.params.source}" if self.params.source else ""
        return f"vacc-vdsp emulation{src}: {self.params.describe()}"

    def __call__(self, img: Image.Image) -> np.ndarray:
        p = self.params
        rgb = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
        resized = cv_linear_resize(rgb, p.resize_width, p.resize_height)
        window = resized[p.crop_y:p.crop_y + p.out_height, p.crop_x:p.crop_x + p.out_width]
        chw = window.transpose(2, 0, 1)
        if p.color_cvt != "NO_CHANGE":       # the op converts colour before it normalises: Mean[0] meets B
            chw = chw[::-1]
        x = chw.astype(np.float32)
        if p.norm_type == "DIV255_MINUSMEAN_DIVSTD":
            x = x / np.float32(255)
        x = (x - np.asarray(p.mean, np.float32)[:, None, None]) / np.asarray(p.std, np.float32)[:, None, None]
        return np.ascontiguousarray(x, dtype=np.float32)
