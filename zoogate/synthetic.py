"""Deterministic generated images: the stand-in for ImageNet where none can be downloaded.

Images are smooth colour fields with shapes, edges and mild noise (not white noise), so resizing,
cropping and BatchNorm calibration see image-like statistics. Same seed -> same pixels, on any machine.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def image(seed: int, width: int = 500, height: int = 375) -> Image.Image:
    """One RGB image of the given size (default: a typical ImageNet val size)."""
    rng = np.random.default_rng(seed)
    # low-frequency colour field: bilinear upsampling of a coarse random grid
    coarse = rng.integers(0, 256, size=(4 + seed % 5, 4 + (seed // 5) % 5, 3), dtype=np.uint8)
    base = Image.fromarray(coarse, "RGB").resize((width, height), Image.BILINEAR)
    draw = ImageDraw.Draw(base)
    for _ in range(int(rng.integers(3, 9))):
        x0, x1 = sorted(rng.integers(0, width, size=2).tolist())
        y0, y1 = sorted(rng.integers(0, height, size=2).tolist())
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.ellipse([x0, y0, x1 + 1, y1 + 1], fill=colour)
        elif shape == 1:
            draw.rectangle([x0, y0, x1 + 1, y1 + 1], fill=colour)
        else:
            draw.line([x0, y0, x1, y1], fill=colour, width=int(rng.integers(1, 12)))
    arr = np.asarray(base, dtype=np.int16)
    arr = arr + rng.normal(0.0, 6.0, size=arr.shape).round().astype(np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def images(n: int, seed: int = 0, sizes: list[tuple[int, int]] | None = None) -> list[Image.Image]:
    """n images with seeds seed..seed+n-1; sizes cycle through `sizes` (default: varied ImageNet-like sizes)."""
    sizes = sizes or [(500, 375), (375, 500), (500, 333), (640, 480), (353, 500), (400, 400)]
    return [image(seed + i, *sizes[i % len(sizes)]) for i in range(n)]
