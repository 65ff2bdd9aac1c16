"""The reference pipeline: exactly the torchvision transforms a model's baseline entry documents.

Input is ``PIL.Image.open(f).convert("RGB")``: the EXIF Orientation tag is NOT applied (that call ignores
it). The PIL-decoding variants follow the reference in this; the VACC variants decode with OpenCV, as
their flows do (zoogate.preprocess.decoders).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
from PIL import Image

from zoogate.baselines import Preprocess


def reference_transform(spec: Preprocess):
    """Resize(short side) -> CenterCrop -> ToTensor -> Normalize, on a PIL RGB image (a torchvision Compose)."""
    from torchvision import transforms as T        # torch: imported when a reference is first computed

    interpolation = {"nearest": T.InterpolationMode.NEAREST, "bilinear": T.InterpolationMode.BILINEAR,
                     "bicubic": T.InterpolationMode.BICUBIC}[spec.interpolation]
    return T.Compose([
        T.Resize(spec.resize, interpolation=interpolation),
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
    """float32 NCHW for a list of PIL images (one torch thread: same values, much faster on a busy host)."""
    with torch_threads(1):
        return np.stack([preprocess_reference(im, spec) for im in images])


@contextlib.contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run torch with n intra-op threads, then restore. Preprocessing tensors are small: on a busy
    2-core host, torch's second thread only adds synchronisation (measured 10x slower under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
