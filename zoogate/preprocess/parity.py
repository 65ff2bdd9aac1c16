"""Parity: how far a preprocessing variant's tensors are from the reference's.

`fast` and the reference must be identical (zoogate.gates.preprocessing.gate_identical); the deployed variants are gated on their
own recorded outputs (zoogate.preprocess.expected), and this distance is only reported beside that gate.

Measures per image and over a set: max abs and mean abs difference (normalised units), the fraction
of pixels off by more than one 8-bit level in any channel, and the crop-window shift: the integer
(dx, dy) within +/-MAX_SHIFT that best aligns the variant with the reference, where a shift counts
only when it explains the difference: it leaves at most a quarter of the unshifted mean abs difference.
(On the fixture set a crop-offset shift leaves 0-8 %; a resampling difference such as timm's
Resize(341, bicubic) leaves >= 47 % at its best shift, which is no crop shift.)

Convention: shift (dx, dy) means ``variant[y, x] == reference[y + dy, x + dx]``; the Ascend script's
truncated offsets give dy = -1 (or dx = -1): its window sits one pixel above (left of) torchvision's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from zoogate.baselines import Preprocess

MAX_SHIFT = 2
# "off by more than 1/255": at least two 8-bit levels. Tensors from different pipelines sit on the
# 8-bit grid only up to float rounding (and float16-rounded means), so the cut is at 1.5 levels.
OFF_LEVELS = 1.5
SHIFT_EXPLAINS = 0.25       # a shift counts when it leaves at most this fraction of the unshifted mean abs


@dataclass(frozen=True)
class ImageDiff:
    name: str
    max_abs: float
    mean_abs: float
    frac_off: float
    shift: tuple[int, int]            # (dx, dy), (0, 0) when no shift explains the difference
    mean_abs_after_shift: float
    shape: tuple[int, ...]
    ref_shape: tuple[int, ...]

    @property
    def shape_ok(self) -> bool:
        return self.shape == self.ref_shape


@dataclass(frozen=True)
class Distance:
    """A variant's distance from the reference over an image set."""

    images: int
    max_abs: float
    mean_abs: float
    frac_off: float
    max_shift_px: int
    shifted_images: int
    shape_mismatches: int
    per_image: tuple[ImageDiff, ...] = field(default=(), repr=False)

    def summary(self) -> str:
        text = (f"{self.images} images: max abs {self.max_abs:.6g}, mean abs {self.mean_abs:.6g}, "
                f"{self.frac_off:.2%} of pixels off by > 1/255, crop shift {self.max_shift_px} px in "
                f"{self.shifted_images}/{self.images} images")
        if self.shape_mismatches:
            text += f", {self.shape_mismatches} output shape mismatches"
        return text

    def metrics(self) -> dict:
        """The recordable numbers (what baselines/measured/preprocess_variants.toml holds)."""
        d = asdict(self)
        d.pop("per_image")
        return d

    def worst(self, n: int = 3) -> list[ImageDiff]:
        return sorted(self.per_image, key=lambda d: -d.max_abs)[:n]


def _pixel_scale(spec: Preprocess | None, channels: int) -> np.ndarray:
    """Normalised units -> 8-bit levels per channel: |d| * std * 255 (std = 1 without a spec)."""
    std = np.asarray(spec.std if spec else (1.0,) * 3, dtype=np.float64)
    if spec is not None and spec.channel_order == "BGR":
        std = std[::-1]
    return (std * 255.0)[:channels, None, None]


def _best_shift(ref: np.ndarray, out: np.ndarray, unshifted: float) -> tuple[tuple[int, int], float]:
    _, h, w = ref.shape
    m = MAX_SHIFT
    if h <= 2 * m + 1 or w <= 2 * m + 1:
        return (0, 0), unshifted

    def err(dx: int, dy: int, step: int) -> float:
        core = out[:, m:h - m:step, m:w - m:step]
        return float(np.mean(np.abs(core - ref[:, m + dy:h - m + dy:step, m + dx:w - m + dx:step])))

    # search on every other row and column (4x cheaper), then measure the winner on all pixels
    candidates = [(dx, dy) for dy in range(-m, m + 1) for dx in range(-m, m + 1)]
    best = min(candidates, key=lambda s: (err(*s, 2), abs(s[0]) + abs(s[1])))
    if best == (0, 0):
        return (0, 0), unshifted
    best_err = err(*best, 1)
    if best_err <= SHIFT_EXPLAINS * unshifted:
        return best, best_err
    return (0, 0), unshifted


def compare_image(ref: np.ndarray, out: np.ndarray, spec: Preprocess | None = None, name: str = "") -> ImageDiff:
    """Distance of one variant tensor from the reference tensor (both float CHW)."""
    if ref.shape != out.shape:
        inf = float("inf")
        return ImageDiff(name, inf, inf, 1.0, (0, 0), inf, tuple(out.shape), tuple(ref.shape))
    diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
    max_abs = float(diff.max()) if diff.size else 0.0
    mean_abs = float(diff.mean()) if diff.size else 0.0
    off = (diff * _pixel_scale(spec, diff.shape[0]) > OFF_LEVELS).any(axis=0)
    frac_off = float(off.mean()) if off.size else 0.0
    if max_abs == 0.0:
        shift, after = (0, 0), 0.0
    else:
        shift, after = _best_shift(ref.astype(np.float32), out.astype(np.float32), mean_abs)
    return ImageDiff(name, max_abs, mean_abs, frac_off, shift, after, tuple(out.shape), tuple(ref.shape))


def summarise(diffs: Iterable[ImageDiff]) -> Distance:
    diffs = tuple(diffs)
    if not diffs:
        return Distance(0, 0.0, 0.0, 0.0, 0, 0, 0, ())
    return Distance(
        images=len(diffs),
        max_abs=max(d.max_abs for d in diffs),
        mean_abs=float(np.mean([d.mean_abs for d in diffs])),
        frac_off=float(np.mean([d.frac_off for d in diffs])),
        max_shift_px=max(max(abs(d.shift[0]), abs(d.shift[1])) for d in diffs),
        shifted_images=sum(d.shift != (0, 0) for d in diffs),
        shape_mismatches=sum(not d.shape_ok for d in diffs),
        per_image=diffs)


def measure(pipeline: Callable[[Image.Image], np.ndarray], images: Iterable[tuple[str, Image.Image]],
            reference: dict[str, np.ndarray] | Callable[[Image.Image], np.ndarray],
            spec: Preprocess | None = None) -> Distance:
    """Run `pipeline` on named images and compare with the reference tensors (a dict by name, or a callable)."""
    diffs = []
    for name, img in images:
        ref = reference[name] if isinstance(reference, dict) else reference(img)
        diffs.append(compare_image(ref, pipeline(img), spec, name))
    return summarise(diffs)


@dataclass(frozen=True)
class RecordedDistance:
    """A deployed variant's distance as recorded in baselines/measured/preprocess_variants.toml: information
    the exact gate (zoogate.gates.preprocessing.gate_expected) reports, never a gate of its own."""

    model: str
    variant: str
    max_abs: float
    mean_abs: float
    frac_off: float
    max_shift_px: int
    shifted_images: int
    images: int
    source: str
    note: str = ""
