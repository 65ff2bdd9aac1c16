"""Output files of `zoogate preprocess`, in the formats and under the names the deployment flows read.

bin: float32 CHW raw bytes (``ndarray.tofile``), what the Ascend flow's ais_bench reads: 3*299*299*4 =
     1,072,812 bytes for inception. No header: the reader must know the shape (read_bin). All in one
     folder (ais_bench reads the top level of --input only), named as the Ascend preprocessing script
     names them: everything before the FIRST dot of the image's name, then ``.bin`` (bin_name).
npy: float32 CHW with ``np.save``, under the image's sub-folder and stem.
npz: what the VACC model zoo's image2npz.py writes for `vamp`: key ``input_0``, uint8 CHW RGB at the
     ORIGINAL size (the card applies vdsp_params itself), as ``OUT/<image's parent folder name>/<stem>.npz``
     (npz_name), plus a datalist file with one absolute .npz path per line, in the order the images
     were found.
Every file is written to a temporary name beside its target and renamed into place, so an
interrupted run never leaves a half-written output under the final name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from zoogate.errors import ZoogateError
from zoogate.files import write_atomic

FORMATS = ("bin", "npy", "npz")
DATALIST_NAME = "npz_datalist.txt"


def bin_name(image_name: str) -> str:
    """The Ascend script's name for an image's .bin (``file.split('.')[0] + '.bin'``); ais_bench keys its
    outputs the same way."""
    return image_name.split(".")[0] + ".bin"


def npz_name(image: Path) -> Path:
    """image2npz.py's place for an image's .npz, relative to the output folder: <parent folder name>/<stem>.npz"""
    return Path(image.parent.name) / f"{os.path.splitext(image.name)[0]}.npz"


def output_path(out_dir: Path, image: Path, src: Path, fmt: str) -> Path:
    """Where `image` (found under `src`) goes: bin OUT/bin_name; npy OUT/<same sub-folder>/<same stem>.npy;
    npz OUT/npz_name (an image right in `src` goes to the folder named as `src` is)."""
    if fmt == "bin":
        return out_dir / bin_name(image.name)
    if fmt == "npy":
        rel = image.relative_to(src)
        return out_dir / rel.parent / f"{rel.stem}.npy"
    if fmt == "npz":
        return out_dir / npz_name(image)
    raise ZoogateError(f"unknown output format {fmt!r}; known: {', '.join(FORMATS)}")


def _atomic_write(path: Path, write) -> None:
    write_atomic(path, write)


def write_tensor(path: Path, chw: np.ndarray, fmt: str) -> None:
    """float32 CHW as .bin (raw) or .npy."""
    data = np.ascontiguousarray(chw, dtype=np.float32)
    if fmt == "bin":
        _atomic_write(path, lambda fh: fh.write(data.tobytes()))
    elif fmt == "npy":
        _atomic_write(path, lambda fh: np.save(fh, data, allow_pickle=False))
    else:
        raise ZoogateError(f"write_tensor: format {fmt!r} is not a tensor format (bin, npy)")


def write_npz_image(path: Path, chw_uint8: np.ndarray) -> None:
    """uint8 CHW RGB at the original size under key input_0 (the VACC image2npz layout)."""
    if chw_uint8.dtype != np.uint8 or chw_uint8.ndim != 3 or chw_uint8.shape[0] != 3:
        raise ValueError(f"expected uint8 (3, H, W), got {chw_uint8.dtype} {chw_uint8.shape}")
    _atomic_write(path, lambda fh: np.savez(fh, input_0=np.ascontiguousarray(chw_uint8)))


def write_datalist(out_dir: Path, npz_paths: list[Path], name: str = DATALIST_NAME) -> Path:
    """OUT/<name>: one absolute .npz path per line (``os.path.abspath``, as image2npz.py writes them), in the
    given order: vamp numbers its outputs by datalist line, and the decoder pairs them back by that order."""
    path = out_dir / name
    text = "".join(f"{os.path.abspath(p)}\n" for p in npz_paths)
    _atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
    return path


def read_bin(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A .bin written by write_tensor, with the shape the reader must know; ZoogateError on a size mismatch."""
    data = np.fromfile(path, dtype=np.float32)
    if data.size != int(np.prod(shape)):
        raise ZoogateError(f"holds {data.size} float32 values, expected {int(np.prod(shape))} for shape {shape}", path)
    return data.reshape(shape)


def read_npy(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def read_npz_image(path: Path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as z:
        if "input_0" not in z.files:
            raise ZoogateError(f"no key 'input_0' (keys: {z.files})", path)
        return z["input_0"]
