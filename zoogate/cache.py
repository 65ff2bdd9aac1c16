"""On-disk cache for expensive products (calibrated weights, ONNX exports), keyed by what produced them.

Safe under pytest-xdist: one producer per key (file lock), atomic publish (write to a temp file in the
same folder, then os.replace), so a reader never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

from filelock import FileLock

from zoogate.errors import ZoogateError

_override: Path | None = None


def set_root(path: str | os.PathLike | None) -> None:
    """--cache-dir; None restores the default. A given folder is checked now (ZoogateError naming it)."""
    global _override
    previous, _override = _override, None if path is None else Path(path)
    if _override is not None:
        try:
            root()
        except ZoogateError:
            _override = previous
            raise


def _where() -> str:
    if _override is not None:
        return "--cache-dir"
    return "$ZOOGATE_CACHE" if os.environ.get("ZOOGATE_CACHE") else "the default cache folder"


def root() -> Path:
    """The cache folder (created); ZoogateError when it cannot be a writable folder."""
    base = _override or Path(os.environ.get("ZOOGATE_CACHE") or Path.home() / ".cache" / "zoogate")
    try:
        base.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ZoogateError(f"{_where()}: exists and is not a folder", base) from None
    except OSError as exc:
        raise ZoogateError(f"{_where()}: cannot create the cache folder: {exc.strerror or exc}", base) from None
    if not base.is_dir():
        raise ZoogateError(f"{_where()}: is not a folder", base)
    if not os.access(base, os.W_OK | os.X_OK):
        raise ZoogateError(f"{_where()}: the cache folder is not writable (give a writable --cache-dir or "
                           "$ZOOGATE_CACHE)", base)
    return base


def key(parts: dict) -> str:
    """A stable short hash of the parts that determine a product."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def versions() -> dict[str, str]:
    """Library versions that change what an export or a calibration produces."""
    return {name: module_version(name) for name in ("torch", "torchvision", "timm", "onnx")}


@functools.lru_cache(maxsize=None)
def module_version(name: str) -> str:
    """``name.__version__``, not its distribution's version (torch's distribution says "2.14.1" where the
    module says "2.14.1+cu130"). Read from the package's version.py where that file defines it (torch,
    torchvision, timm), so that a key can be made without importing them (seconds: timm imports torchvision,
    which imports torch._dynamo); otherwise the package is imported."""
    import importlib
    import importlib.util
    import re

    spec = importlib.util.find_spec(name)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            text = Path(folder, "version.py").read_text(encoding="utf-8")
        except OSError:
            continue
        if m := re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M):
            return m[1]
    return importlib.import_module(name).__version__


def _remove(path: str | os.PathLike) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def new_file_mode(folder: Path) -> int:
    """The mode a plain new file gets in `folder` (0o666 less the umask, as a lab sharing one cache expects).

    Read by creating a probe file, not with os.umask(): setting the umask to read it is not thread-safe.
    """
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".mode-probe.", suffix=".tmp")
    os.close(fd)
    try:
        _remove(probe)
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        os.close(fd)
        return os.stat(probe).st_mode & 0o777
    finally:
        _remove(probe)


def _publish(tmp: Path, final: Path, mode: int) -> None:
    os.chmod(tmp, mode)               # mkstemp made it 0600
    os.replace(tmp, final)


def cached(kind: str, parts: dict, suffix: str, produce: Callable[[Path], None], *,
           label: str = "") -> tuple[Path, bool]:
    """Return (path, hit). On a miss, ``produce(tmp_path)`` writes the product, which is then published.

    The file is named ``<label>-<hash of parts><suffix>``; only ``parts`` decide identity. The product is
    published first, then ``<name>.json`` (what it was made from), each with one os.replace; an exception or
    KeyboardInterrupt in ``produce`` leaves nothing behind but the lock file, and a producer killed outright
    leaves a temp file that the next producer of the same key removes (it holds the lock).
    """
    folder = root() / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZoogateError(f"cannot create a cache folder: {exc.strerror or exc}", folder) from None
    digest = key(parts)
    existing = lambda: sorted(folder.glob(f"*-{digest}{suffix}"))   # any label: parts decide identity
    if found := existing():
        return found[0], True
    safe_label = "".join(c if c.isalnum() or c in "._-" else "_" for c in label or kind)
    name = f"{safe_label}-{digest}{suffix}"
    final = folder / name
    lock = folder / f"{digest}{suffix}.lock"
    with FileLock(str(lock)):
        # once the product is published nobody needs the lock file: a late waiter re-checks and returns
        if found := existing():      # another worker produced it while we waited
            _remove(lock)
            return found[0], True
        for stale in folder.glob(f".*-{digest}{suffix}.*.tmp"):     # from a producer that was killed
            _remove(stale)
        mode = new_file_mode(folder)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
        os.close(fd)
        fd, side_tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.json.", suffix=".tmp")
        os.close(fd)
        try:
            produce(Path(tmp))
            _publish(Path(tmp), final, mode)
            Path(side_tmp).write_text(json.dumps(parts, indent=1, sort_keys=True, default=str))
            _publish(Path(side_tmp), folder / f"{name}.json", mode)
        finally:
            _remove(tmp)
            _remove(side_tmp)
        _remove(lock)
    return final, False


def cached_json(kind: str, parts: dict, compute: Callable[[], object], *, label: str = ""):
    """``compute()`` (a JSON value), kept in the cache under ``parts``: for facts a library computes slowly
    that depend only on its version. Without a usable cache folder it is computed each time."""
    failed = []

    def produce(tmp: Path) -> None:
        try:
            value = compute()
        except Exception:
            failed.append(True)
            raise
        tmp.write_text(json.dumps(value), encoding="utf-8")

    try:
        path, _ = cached(kind, parts, ".json", produce, label=label)
        return json.loads(path.read_text(encoding="utf-8"))
    except (ZoogateError, OSError, ValueError):
        if failed:              # compute()'s own error: raised once, not computed again
            raise
        return compute()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
