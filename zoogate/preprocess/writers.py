"""Output files of `zoogate preprocess`, in the formats the deployment flows read.

bin: float32 CHW raw bytes (``ndarray.tofile``), what the Ascend flow's ais_bench reads: 3*299*299*4 =
     1,072,812 bytes for inception. No header: the reader must know the shape (read_bin).
npy: float32 CHW with ``np.save``.
npz: what the VACC model-zoo flow feeds `vamp`: key ``input_0``, uint8 CHW RGB at the ORIGINAL size
     (the card applies vdsp_params itself), plus a datalist file with one absolute .npz path per line.
Every file is written to a temporary name beside its target and renamed into place, so an
interrupted run never leaves a half-written output under the final name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from zoogate.errors import ZoogateError

FORMATS = ("bin", "npy", "npz")
DATALIST_NAME = "npz_datalist.txt"


def output_path(out_dir: Path, rel: Path, fmt: str) -> Path:
    """OUT/<same sub-folder>/<same stem>.<fmt>"""
    if fmt not in FORMATS:
        raise ZoogateError(f"unknown output format {fmt!r}; known: {', '.join(FORMATS)}")
    return out_dir / rel.parent / f"{rel.stem}.{fmt}"


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


def write_datalist(out_dir: Path, npz_paths: list[Path]) -> Path:
    """OUT/npz_datalist.txt: one absolute .npz path per line, sorted (vamp pairs outputs by sorted name)."""
    path = out_dir / DATALIST_NAME
    text = "".join(f"{p.resolve()}\n" for p in sorted(npz_paths))
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
