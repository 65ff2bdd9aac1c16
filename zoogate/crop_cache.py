"""A disk cache of uint8 centre crops: decode + resize + crop done once per image and geometry.

What it holds: the HWC uint8 RGB crop that ``zoogate.preprocess.fast.crop_uint8`` makes, before
normalisation, so every runner, batch size, precision and model with the same geometry reads it and
normalises per batch. Its key:

- the image's content: a BLAKE2b digest of the file's bytes, read by the worker that serves it. A changed
  file has another digest, so it is never served an old crop (a path, size or mtime can stay the same);
- the geometry: resize, crop, interpolation, and the decoder (Pillow and its libjpeg/zlib versions, the
  crop code's version). Each geometry has its own folder.

Layout: ``<cache>/crops/<geometry key>/geometry.json`` (what the key stands for) and shards
``<name>.crops.npy`` (N, crop, crop, 3) uint8, memory-mapped by readers, with ``<name>.keys.npy``
(N x 16 uint8: the digests). A shard is published atomically (temp file + os.replace, the keys last) under a name no
other process uses, so concurrent runs (pytest -n, two hosts on one share) never see half a shard; two
runs that crop the same image write it twice, harmlessly. The cache is bounded: publishing a shard first
removes the oldest shards of any geometry until the total stays under the limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from pathlib import Path

import numpy as np

from zoogate.baselines import Preprocess
from zoogate.files import write_atomic

CROP_CODE_VERSION = 1              # bump when crop_uint8 changes what it returns
DIGEST_BYTES = 16
SHARD_IMAGES = 256                 # crops per shard: 69 MB at 299 px, the most a run buffers before writing
DEFAULT_MAX_GB = 16.0              # 50,000 val crops: 13.4 GB at 299 px, 7.5 GB at 224 px


def content_digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()


def decoder_identity() -> dict[str, str]:
    import PIL
    from PIL import features

    return {"pillow": PIL.__version__, "libjpeg": str(features.version("jpg")), "zlib": str(features.version("zlib")),
            "crop_code": str(CROP_CODE_VERSION)}


def geometry(spec: Preprocess) -> dict:
    return {"resize": spec.resize, "crop": spec.crop, "interpolation": spec.interpolation,
            "decoder": decoder_identity()}


def _geometry_key(geo: dict) -> str:
    return hashlib.sha256(json.dumps(geo, sort_keys=True).encode()).hexdigest()[:16]


def _save(path: Path, array: np.ndarray) -> None:
    write_atomic(path, lambda fh: np.save(fh, array, allow_pickle=False))


def _keys_file(crops_file: Path) -> Path:
    return crops_file.with_name(crops_file.name.replace(".crops.npy", ".keys.npy"))


def _digests(keys: np.ndarray) -> list[bytes]:
    return [bytes(row) for row in keys]


class CropCache:
    """The shards of one geometry: ``index`` maps a content digest to (shard data file, row)."""

    def __init__(self, root: str | os.PathLike, spec: Preprocess, max_gb: float = DEFAULT_MAX_GB) -> None:
        self.top = Path(root) / "crops"
        self.geometry = geometry(spec)
        self.dir = self.top / _geometry_key(self.geometry)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.shape = (spec.crop, spec.crop, 3)
        self.max_bytes = int(max_gb * 1e9)
        about = self.dir / "geometry.json"
        if not about.is_file():
            write_atomic(about, lambda fh: json.dump(self.geometry, fh, indent=1), text=True)
        self.index: dict[bytes, tuple[str, int]] = {}
        self._pending: dict[bytes, np.ndarray] = {}      # digest -> crop, in the order added
        self.written = 0
        self.evicted = 0
        self._load_index()

    def _load_index(self) -> None:
        for data in sorted(self.dir.glob("*.crops.npy")):
            keys_file = _keys_file(data)
            try:
                keys = np.load(keys_file, allow_pickle=False)
                crops = np.load(data, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError):        # removed meanwhile by another run's eviction, or damaged
                continue
            if keys.dtype != np.uint8 or keys.shape[1:] != (DIGEST_BYTES,) or crops.shape[1:] != self.shape \
                    or len(crops) != len(keys):
                continue
            for row, key in enumerate(_digests(keys)):
                self.index.setdefault(key, (str(data), row))

    def __len__(self) -> int:
        return len(self.index)

    def add(self, digest: bytes, crop: np.ndarray) -> None:
        """Buffer a new crop; a full buffer is published as a shard."""
        if digest in self.index or digest in self._pending or crop.shape != self.shape:
            return
        self._pending[digest] = np.ascontiguousarray(crop, dtype=np.uint8)
        if len(self._pending) >= SHARD_IMAGES:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        crops = np.stack(list(self._pending.values()))
        # raw bytes as uint8 rows: numpy's fixed-width bytes dtype would drop a digest's trailing NUL bytes
        keys = np.frombuffer(b"".join(self._pending), dtype=np.uint8).reshape(-1, DIGEST_BYTES)
        self._pending = {}
        if crops.nbytes > self.max_bytes or not self._make_room(crops.nbytes):
            return
        name = uuid.uuid4().hex
        data = self.dir / f"{name}.crops.npy"
        _save(data, crops)
        _save(_keys_file(data), keys)       # last: a shard counts once its keys exist
        for row, key in enumerate(_digests(keys)):
            self.index.setdefault(key, (str(data), row))
        self.written += len(keys)

    def _make_room(self, need: int) -> bool:
        shards = []
        for data in self.top.glob("*/*.crops.npy"):
            with contextlib.suppress(FileNotFoundError):
                st = data.stat()
                shards.append((st.st_mtime, st.st_size, data))
        total = sum(size for _, size, _ in shards)
        for _, size, data in sorted(shards):
            if total + need <= self.max_bytes:
                break
            for f in (_keys_file(data), data):
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()
            total -= size
            self.evicted += 1
        return total + need <= self.max_bytes


class ShardReader:
    """Reads cached crops: opens each shard once, memory-mapped (a crop is a view, read when used); a shard
    evicted meanwhile is a miss."""

    def __init__(self) -> None:
        self._open: dict[str, np.ndarray | None] = {}

    def read(self, where: tuple[str, int]) -> np.ndarray | None:
        path, row = where
        if path not in self._open:
            try:
                self._open[path] = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError):
                self._open[path] = None
        shard = self._open[path]
        return None if shard is None else shard[row]
