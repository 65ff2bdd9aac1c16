"""The reference pipeline: exactly the torchvision transforms a model's baseline entry documents."""

from __future__ import annotations

import numpy as np
from PIL import Image
from torchvision import transforms as T

from zoogate.baselines import Preprocess

_INTERP = {"nearest": T.InterpolationMode.NEAREST, "bilinear": T.InterpolationMode.BILINEAR,
           "bicubic": T.InterpolationMode.BICUBIC}


def reference_transform(spec: Preprocess) -> T.Compose:
    """Resize(short side) -> CenterCrop -> ToTensor -> Normalize, on a PIL RGB image."""
    return T.Compose([
        T.Resize(spec.resize, interpolation=_INTERP[spec.interpolation]),
        T.CenterCrop(spec.crop),
        T.ToTensor(),
        T.Normalize(mean=list(spec.mean), std=list(spec.std)),
    ])


def preprocess_reference(img: Image.Image, spec: Preprocess) -> np.ndarray:
    """float32 CHW for one image (converted to RGB first, as PIL.Image.open(f).convert('RGB'))."""
    chw = reference_transform(spec)(img.convert("RGB")).numpy()
    if spec.channel_order == "BGR":
        chw = chw[::-1]
    return np.ascontiguousarray(chw, dtype=np.float32)


def preprocess_batch(images: list[Image.Image], spec: Preprocess) -> np.ndarray:
    """float32 NCHW for a list of PIL images."""
    return np.stack([preprocess_reference(im, spec) for im in images])
