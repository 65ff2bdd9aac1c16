"""A lab's own preprocessed files (`zoogate check-inputs`): finding them, reading them, and pairing each with
the image it was made from.

Formats (what the device flows read; zoogate.preprocess.writers writes the same):
- ``.bin``  raw float32 CHW, no header (the Ascend script's ``tofile``). The shape is the model's input
  (3, S, S) when the size says so; a file of 3 x S' x S' float32 for another S' is read as that (a wrong
  crop is a finding, not a broken file); 3 x S x S float16 is read as float16. Any other size is refused.
- ``.npy``  (3, H, W) or (1, 3, H, W), any float dtype (``np.load`` without pickles).
- ``.npz``  image2npz.py's: key ``input_0``, uint8 (3, H, W), the decoded image at its original size.

Pairing: by the name ais_bench and the Ascend script use, everything before the first dot
(``ILSVRC2012_val_00000001.JPEG`` <-> ``ILSVRC2012_val_00000001.bin``); an .npz lies under its image's
parent folder name, which settles two images with one key in different folders.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoogate.errors import ZoogateError

SUFFIXES = (".bin", ".npy", ".npz")


def key(name: str) -> str:
    """ais_bench's and the Ascend script's key of a file name: everything before the first dot."""
    return name.split(".")[0]


@dataclass(frozen=True)
class Prepared:
    path: Path
    image: Path
    kind: str                 # bin / npy / npz

    @property
    def folder(self) -> Path:
        return self.path.parent


def _files(folder: Path) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
    return out


def find(prepared: Path, images: Path) -> tuple[list[Prepared], list[Path]]:
    """(prepared files paired with their images, images no prepared file names); ZoogateError on a file
    without an image or with two candidates."""
    for folder, what in ((prepared, "--prepared"), (images, "--images")):
        if not folder.is_dir():
            raise ZoogateError(f"{what}: not a folder" if folder.exists() else f"{what}: folder not found", folder)
    by_key: dict[str, list[Path]] = {}
    for image in _files(images):
        by_key.setdefault(key(image.name), []).append(image)
    found, used = [], set()
    for path in _files(prepared):
        kind = path.suffix.lower()
        if kind not in SUFFIXES:
            continue
        candidates = by_key.get(key(path.name), [])
        if len(candidates) > 1 and kind == ".npz":
            candidates = [c for c in candidates if c.parent.name == path.parent.name] or candidates
        if not candidates:
            raise ZoogateError(f"no image named {key(path.name)}.* under {images} (files pair with images by the name "
                               "before the first dot, as ais_bench names them)", path)
        if len(candidates) > 1:
            raise ZoogateError(f"two images could be its source: {candidates[0]} and {candidates[1]}", path)
        found.append(Prepared(path, candidates[0], kind[1:]))
        used.add(candidates[0])
    if not found:
        raise ZoogateError(f"no prepared files ({', '.join(SUFFIXES)}) in this folder or below", prepared)
    unused = [p for paths in by_key.values() for p in paths if p not in used]
    return found, sorted(unused)


def _bin_shape(path: Path, size: int, input_size: int) -> tuple[tuple[int, ...], type]:
    s = input_size
    if size == 3 * s * s * 4:
        return (3, s, s), np.float32
    if size == 3 * s * s * 2:
        return (3, s, s), np.float16
    side = math.isqrt(size // 12) if size % 12 == 0 else 0
    if side and side * side * 12 == size:
        return (3, side, side), np.float32
    raise ZoogateError(f"{size} bytes is no float32 (3, S, S) tensor (the model's input is 3x{s}x{s}: "
                       f"{3 * s * s * 4} bytes)", path)


def read(item: Prepared, input_size: int, *, header_only: bool = False) -> np.ndarray | None:
    """The file's array (CHW); ZoogateError naming the file on anything that is not one of the formats.
    ``header_only``: check the file without reading a tensor's values (None comes back for a .bin)."""
    path = item.path
    try:
        if item.kind == "bin":
            shape, dtype = _bin_shape(path, path.stat().st_size, input_size)
            return None if header_only else np.fromfile(path, dtype=dtype).reshape(shape)
        if item.kind == "npy":
            arr = np.load(path, allow_pickle=False, mmap_mode="r" if header_only else None)
            if arr.ndim == 4 and arr.shape[0] == 1:
                arr = arr[0]
            if arr.ndim != 3 or arr.shape[0] != 3 or arr.dtype.kind != "f":
                raise ZoogateError(f"expected a float (3, H, W) tensor, got {arr.dtype} {list(arr.shape)}", path)
            return arr
        with np.load(path, allow_pickle=False) as z:
            if "input_0" not in z.files:
                raise ZoogateError(f"no key 'input_0' (image2npz.py's key; keys: {z.files})", path)
            arr = z["input_0"]
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[0] != 3:
            raise ZoogateError(f"input_0 is {arr.dtype} {list(arr.shape)}; image2npz.py writes uint8 (3, H, W)", path)
        return arr
    except ZoogateError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ZoogateError(f"cannot read this .{item.kind} file ({exc})", path) from None
