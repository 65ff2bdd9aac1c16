"""The vdsp_params JSON of a Vastai VACC card and an emulation, on the host, of what its vdsp op does to an image.

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

The emulation (fusion_op) calls OpenCV itself: ``cv2.resize(rgb, (ResizeWidth, ResizeHeight),
interpolation=cv2.INTER_LINEAR)`` on the uint8 RGB image (BILINEAR_CV; each channel is resampled on
its own, so interleaved and planar give the same bytes), the window cut out of it, the planes
swapped when ColorCvtCode asks, then float32 ``x / 255``, ``- Mean``, ``/ Std``. Two host flows feed it
(zoogate.preprocess.variants):

vacc-vamp  the model zoo's image2npz.py writes ``cv2.imread`` (EXIF orientation applied) -> RGB ->
           CHW uint8 at the original size (npz key input_0); vamp hands that image to the op.
vacc-vsx   the model zoo's vsx classification.py: ``cv2.imread(IMREAD_COLOR)``; when a side is odd,
           ``cv2.resize`` to (W//2*2, H//2*2) with the default INTER_LINEAR (a real resample of the
           whole image, not a crop); RGB planar; then the op.

Not emulated: the card's float16 arithmetic (we normalise in float32), and how it maps an image of
another size onto Iimage*: the op resizes whatever image it is given.
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


# ---- the emulation ----

def _rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))


def fusion_op(rgb: np.ndarray, params: VdspParams) -> np.ndarray:
    """FUSION_OP_RGB_RESIZE_CVTCOLOR_CROP_NORM_TENSOR on a uint8 HxWx3 RGB image -> float32 CHW."""
    import cv2

    p = params
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"the vdsp op takes a uint8 HxWx3 image, got {rgb.dtype} {rgb.shape}")
    resized = cv2.resize(rgb, (p.resize_width, p.resize_height), interpolation=cv2.INTER_LINEAR)
    chw = resized[p.crop_y:p.crop_y + p.out_height, p.crop_x:p.crop_x + p.out_width].transpose(2, 0, 1)
    if p.color_cvt != "NO_CHANGE":       # the op converts colour before it normalises: Mean[0] meets B
        chw = chw[::-1]
    x = chw.astype(np.float32, order="C")
    if p.norm_type == "DIV255_MINUSMEAN_DIVSTD":
        x /= np.float32(255)
    x -= np.asarray(p.mean, np.float32)[:, None, None]
    x /= np.asarray(p.std, np.float32)[:, None, None]
    return x


def even_size(rgb: np.ndarray) -> np.ndarray:
    """vsx classification.py's host step: an image with an odd side is resized to (W//2*2, H//2*2)."""
    import cv2

    h, w = rgb.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return rgb
    if h < 2 or w < 2:
        raise ValueError(f"a {w}x{h} image has a side of 1 px: the vsx flow's resize to even sides "
                         f"(W//2*2 x H//2*2 = {w // 2 * 2}x{h // 2 * 2}) cannot take it")
    return cv2.resize(rgb, (w // 2 * 2, h // 2 * 2))      # no interpolation given: INTER_LINEAR


@dataclass(frozen=True)
class VampInput:
    """What image2npz.py stores for vamp (npz key input_0): the decoded RGB image as uint8 CHW, original size."""

    name: str = "vacc-vamp"

    def describe(self) -> str:
        return "vacc-vamp input (image2npz.py): decoded RGB, uint8 CHW at the original size"

    def __call__(self, img: Image.Image) -> np.ndarray:
        return np.ascontiguousarray(_rgb(img).transpose(2, 0, 1))


@dataclass(frozen=True)
class VsxInput:
    """What vsx classification.py hands the card: the decoded RGB image, odd sides resized to even, planar uint8."""

    name: str = "vacc-vsx"

    def describe(self) -> str:
        return "vacc-vsx input (classification.py): decoded RGB, odd sides resized to even, uint8 planar"

    def __call__(self, img: Image.Image) -> np.ndarray:
        return np.ascontiguousarray(even_size(_rgb(img)).transpose(2, 0, 1))


@dataclass(frozen=True)
class VampPipeline:
    """`vacc-vamp`: PIL image (decoded by cv2.imread, see DECODER_OF) -> the vdsp op, as vamp runs it on an npz."""

    params: VdspParams
    name: str = "vacc-vamp"

    def describe(self) -> str:
        src = f" from {self.params.source}" if self.params.source else ""
        return f"vacc-vamp (image2npz.py npz -> vdsp op){src}: {self.params.describe()}"

    def __call__(self, img: Image.Image) -> np.ndarray:
        return fusion_op(_rgb(img), self.params)


@dataclass(frozen=True)
class VsxPipeline:
    """`vacc-vsx`: PIL image (decoded by cv2.imread) -> odd sides resized to even -> the vdsp op."""

    params: VdspParams
    name: str = "vacc-vsx"

    def describe(self) -> str:
        src = f" from {self.params.source}" if self.params.source else ""
        return f"vacc-vsx (classification.py: odd sides resized to even -> vdsp op){src}: {self.params.describe()}"

    def __call__(self, img: Image.Image) -> np.ndarray:
        return fusion_op(even_size(_rgb(img)), self.params)
