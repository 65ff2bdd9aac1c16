"""Image decoders: how a variant turns a file into the RGB image its pipeline sees.

A variant declares its decoder (zoogate.preprocess.variants.DECODER_OF); `zoogate preprocess`, the
exact gate and its recorded outputs all decode with it, and the decoder fault swaps it for the other one
(SWAPPED), so a variant that documents an OpenCV decode joins by naming "cv2".

pil  ``PIL.Image.open(f).convert("RGB")``: the reference's decode; the EXIF Orientation tag is NOT applied.
cv2  ``cv2.imread(f, cv2.IMREAD_COLOR)`` then BGR -> RGB: what the OpenCV-based vendor tools do; OpenCV
     applies the EXIF Orientation tag by default, converts CMYK JPEGs with its own formula (one level off
     PIL's on the fixture) and reduces 16-bit images to 8 bits by scaling, where PIL clips.

Every decoder returns a PIL RGB image (pipelines take PIL images) and raises ZoogateError naming the file.
"""

from __future__ import annotations

import os
from typing import Callable

from PIL import Image

from zoogate.errors import ZoogateError
from zoogate.preprocess.fast import decode_rgb


def decode_cv2(path: str | os.PathLike) -> Image.Image:
    """cv2.imread(IMREAD_COLOR) -> RGB, as a PIL image; ZoogateError on anything OpenCV cannot read."""
    import cv2

    if not os.path.isfile(path):
        raise ZoogateError("file not found", path)
    bgr = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ZoogateError("OpenCV cannot decode this file (cv2.imread returned nothing)", path)
    return Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


DECODERS: dict[str, Callable[[str | os.PathLike], Image.Image]] = {"pil": decode_rgb, "cv2": decode_cv2}
SWAPPED = {"pil": "cv2", "cv2": "pil"}       # the decoder fault: the other library's decode
TEXT = {"pil": "PIL (Image.open().convert('RGB'))", "cv2": "OpenCV (cv2.imread, BGR->RGB)"}


def decode(path: str | os.PathLike, decoder: str = "pil") -> Image.Image:
    if decoder not in DECODERS:
        raise ZoogateError(f"unknown decoder {decoder!r}; known: {', '.join(DECODERS)}")
    return DECODERS[decoder](path)
