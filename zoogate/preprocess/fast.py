"""`fast`: the reference pipeline re-done with PIL + numpy, parallel over processes, bit-identical.

Why it is identical, not just close:
- resize: torchvision's PIL path *is* ``PIL.Image.resize(size, BILINEAR|BICUBIC|NEAREST)``; we make the
  same call with the same size rule (geometry.short_side_size) and skip it when torchvision does.
- crop: PIL's crop with torchvision's offsets (geometry.crop_offset, 'round'); outside the image PIL
  fills zeros, as torchvision's padding does.
- ToTensor + Normalize: torchvision computes, per element, float32 ``v / 255`` then ``(x - mean) / std``
  with float32 mean and std. numpy performs the same IEEE float32 operations in the same order, so
  every element rounds the same way (no fused multiply-add, no reciprocal multiplication).
The suite checks all three claims (suites/test_preprocess_parity.py, test_preprocess_properties.py).

Speed comes from skipping torch (ToTensor's copies and permutes) and from a process pool: workers
decode + resize + crop and send back uint8 crops (a quarter of float32's bytes); the parent
normalises (0.15 ms per 299x299 crop). Workers import only numpy and PIL.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from zoogate.baselines import Preprocess
from zoogate.errors import ZoogateError
from zoogate.images import open_image
from zoogate.preprocess import geometry

PIL_FILTERS = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
               "bicubic": Image.Resampling.BICUBIC}


def normalise(hwc: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...], channel_order: str = "RGB",
              out: np.ndarray | None = None) -> np.ndarray:
    """uint8 HWC RGB -> float32 CHW: ToTensor's ``/ 255`` then Normalize's ``(x - mean) / std``, in float32,
    in torchvision's order. BGR: output channel k is RGB channel 2-k normalised with its own mean/std,
    which is what the reference's flip after normalising gives. ``out``: a float32 (3, H, W) to fill
    (writing into a preallocated batch saves a fresh 1 MB allocation per image)."""
    chw = hwc.transpose(2, 0, 1)
    mean32 = np.asarray(mean, dtype=np.float32)
    std32 = np.asarray(std, dtype=np.float32)
    if channel_order == "BGR":
        chw, mean32, std32 = chw[::-1], mean32[::-1], std32[::-1]
    if out is None:
        out = np.empty(chw.shape, dtype=np.float32)
    np.copyto(out, chw, casting="unsafe")            # uint8 -> float32, exact
    out /= np.float32(255)
    out -= mean32[:, None, None]
    out /= std32[:, None, None]
    return out


@dataclass(frozen=True)
class FastPipeline:
    """Callable PIL image -> float32 CHW, equal bit for bit to preprocess_reference(img, spec)."""

    spec: Preprocess
    name: str = "fast"

    def __post_init__(self) -> None:
        if self.spec.interpolation not in PIL_FILTERS:
            raise ZoogateError(f"interpolation {self.spec.interpolation!r} is not one of {sorted(PIL_FILTERS)}")

    def describe(self) -> str:
        return f"fast (PIL resize + numpy normalise, bit-identical to the reference): {self.spec.describe()}"

    def crop_uint8(self, img: Image.Image) -> np.ndarray:
        """Decode-side half: RGB convert, resize, centre crop -> uint8 HWC."""
        return crop_uint8(img, self.spec)

    def __call__(self, img: Image.Image) -> np.ndarray:
        s = self.spec
        return normalise(crop_uint8(img, s), s.mean, s.std, s.channel_order)


def crop_uint8(img: Image.Image, spec: Preprocess) -> np.ndarray:
    if img.mode != "RGB":
        img = img.convert("RGB")
    w, h = img.size
    new_w, new_h = geometry.short_side_size(w, h, spec.resize)
    if (new_w, new_h) != (w, h):      # torchvision returns the image untouched at the target size
        img = img.resize((new_w, new_h), PIL_FILTERS[spec.interpolation])
    box = geometry.centre_crop_box(new_w, new_h, spec.crop, "round")
    return np.asarray(img.crop(box))


# ---- many files, in parallel ----

@dataclass
class FastBatch:
    """Result of preprocess_paths: the tensors of the files that decoded, and why the others did not."""

    array: np.ndarray                       # float32 (N_ok, 3, crop, crop)
    paths: list[Path]                       # the N_ok files, in input order
    failures: list[tuple[Path, str]]        # (file, ZoogateError text)


def decode_rgb(path: str | os.PathLike) -> Image.Image:
    """``PIL.Image.open(path).convert('RGB')`` without the copy when the file already is RGB; ZoogateError on failure."""
    img = open_image(path)
    if img.mode == "RGB":
        return img
    try:
        return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise ZoogateError(f"cannot convert mode {img.mode} to RGB ({exc})", path) from None


def _crop_file(task: tuple[str, Preprocess]) -> tuple[bytes | None, str | None]:
    path, spec = task
    try:
        return crop_uint8(decode_rgb(path), spec).tobytes(), None
    except ZoogateError as exc:
        return None, str(exc)


def make_executor(jobs: int | None = None) -> ProcessPoolExecutor:
    """A process pool for preprocess_paths; keep it to amortise worker start-up over many calls.

    forkserver: workers start from a clean interpreter (no torch threads inherited from the caller).
    Like every non-fork start method it re-imports the calling script, so a script that calls this
    (or preprocess_paths with jobs > 1) needs the usual ``if __name__ == "__main__":`` guard.
    """
    jobs = jobs or os.cpu_count() or 1
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    return ProcessPoolExecutor(max_workers=jobs, mp_context=ctx)


def preprocess_paths(paths: list[str | os.PathLike], spec: Preprocess, *, jobs: int | None = None,
                     executor: Executor | None = None, chunksize: int = 8) -> FastBatch:
    """Reference tensors for many files: decode/resize/crop in worker processes, normalise here.

    ``jobs=1`` (and no executor) runs in this process. Failing files are listed, never dropped silently.
    """
    paths = [Path(p) for p in paths]
    tasks = [(os.fspath(p), spec) for p in paths]
    own = None
    if executor is None and (jobs or os.cpu_count() or 1) > 1:
        executor = own = make_executor(jobs)
    try:
        results = executor.map(_crop_file, tasks, chunksize=chunksize) if executor else map(_crop_file, tasks)
        crop = spec.crop
        array = np.empty((len(paths), 3, crop, crop), dtype=np.float32)
        ok: list[Path] = []
        failures: list[tuple[Path, str]] = []
        for path, (raw, error) in zip(paths, results):
            if error is not None:
                failures.append((path, error))
                continue
            hwc = np.frombuffer(raw, dtype=np.uint8).reshape(crop, crop, 3)
            normalise(hwc, spec.mean, spec.std, spec.channel_order, out=array[len(ok)])
            ok.append(path)
    finally:
        if own is not None:
            own.shutdown()
    return FastBatch(array[:len(ok)], ok, failures)
