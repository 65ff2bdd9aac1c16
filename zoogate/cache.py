"""On-disk cache for expensive products (calibrated weights, ONNX exports), keyed by what produced them.

Safe under pytest-xdist: one producer per key (file lock), atomic publish (write to a temp file in the
same folder, then os.replace), so a reader never sees a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

from filelock import FileLock

_override: Path | None = None


def set_root(path: str | os.PathLike | None) -> None:
    """--cache-dir; None restores the default."""
    global _override
    _override = None if path is None else Path(path)


def root() -> Path:
    base = _override or Path(os.environ.get("ZOOGATE_CACHE") or Path.home() / ".cache" / "zoogate")
    base.mkdir(parents=True, exist_ok=True)
    return base


def key(parts: dict) -> str:
    """A stable short hash of the parts that determine a product."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def versions() -> dict[str, str]:
    """Library versions that change what an export or a calibration produces."""
    import onnx
    import timm
    import torch
    import torchvision

    return {"torch": torch.__version__, "torchvision": torchvision.__version__, "timm": timm.__version__,
            "onnx": onnx.__version__}


def cached(kind: str, parts: dict, suffix: str, produce: Callable[[Path], None], *,
           label: str = "") -> tuple[Path, bool]:
    """Return (path, hit). On a miss, ``produce(tmp_path)`` writes the product, which is then published.

    The file is named ``<label>-<hash of parts><suffix>``; only ``parts`` decide identity.
    """
    folder = root() / kind
    folder.mkdir(parents=True, exist_ok=True)
    digest = key(parts)
    existing = lambda: sorted(folder.glob(f"*-{digest}{suffix}"))   # any label: parts decide identity
    if found := existing():
        return found[0], True
    safe_label = "".join(c if c.isalnum() or c in "._-" else "_" for c in label or kind)
    name = f"{safe_label}-{digest}{suffix}"
    final = folder / name
    with FileLock(str(folder / f"{digest}{suffix}.lock")):
        if found := existing():      # another worker produced it while we waited
            return found[0], True
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
        os.close(fd)
        try:
            produce(Path(tmp))
            (folder / f"{name}.json").write_text(json.dumps(parts, indent=1, sort_keys=True, default=str))
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return final, False


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
