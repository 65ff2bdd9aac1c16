"""Host baselines: this host's fingerprint and pytest-benchmark storage of its saved measurements."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence


from zoogate.errors import ZoogateError
from zoogate.throughput.measuring import Measurement
from zoogate.throughput.settings import bench_key



STORAGE_ENV = "ZOOGATE_HOST_BASELINES"
BENCH_GROUP = "zoogate-throughput"

log = logging.getLogger(__name__)



def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=None)
def package_version(module: str) -> str | None:
    """Installed version of the distribution providing ``module`` (onnxruntime may come as onnxruntime-gpu,
    onnxruntime-cann, ...), without importing it."""
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        pass
    dists = metadata.packages_distributions().get(module, [])
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def host_fingerprint() -> dict:
    """What makes fps on this host comparable with a saved run: CPU, cores, libraries, thread counts."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    fp = {"system": platform.system(), "machine": platform.machine(), "cpu": _cpu_model(),
          "cpu_count": os.cpu_count(), "usable_cpus": usable,
          "python": ".".join(platform.python_version_tuple()[:2]),
          "torch": package_version("torch"), "onnxruntime": package_version("onnxruntime"), "numpy": package_version("numpy")}
    try:
        threads = _torch_threads(usable)
    except (ImportError, OSError):        # a torch that cannot load: the host is named without its threads
        threads = None
    if threads is not None:
        fp["torch_threads"] = threads
    return fp


# what sets torch's default intra-op thread count
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_THREAD_LIMIT", "OMP_DYNAMIC", "MKL_DYNAMIC",
              "MKL_DOMAIN_NUM_THREADS")


def _torch_threads(usable: int | None) -> int | None:
    """torch's intra-op thread count. Asked of torch when this process has imported it (a test may have set
    it); otherwise it is the count torch starts with, which depends only on its version, the CPU and the thread
    environment, and is kept in the cache: a run that runs no torch code (a lab command that skips, a
    collection) then does not import torch, about a second, just to name its host."""
    import sys

    if "torch" in sys.modules:
        return sys.modules["torch"].get_num_threads()
    version = package_version("torch")
    if version is None:
        return None

    def ask() -> int:
        import torch

        return torch.get_num_threads()

    from zoogate import cache

    return cache.cached_json("torch-threads", torch_threads_key(version, usable), ask,
                             label=f"torch {version} default threads")


def torch_threads_key(version: str, usable: int | None) -> dict:
    """What torch's default thread count depends on: its version, the CPU and the thread environment."""
    return {"torch": version, "cpu": _cpu_model(), "cpu_count": os.cpu_count(), "usable_cpus": usable,
            **{name: os.environ.get(name) for name in THREAD_ENV}}


def host_id(fingerprint: dict | None = None) -> str:
    """A folder name for the fingerprint: readable prefix + hash of the whole fingerprint."""
    fp = fingerprint or host_fingerprint()
    digest = hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:10]
    return f"{fp['system']}-{fp['machine']}-{fp['usable_cpus']}cpu-{digest}"


def default_storage() -> Path:
    env = os.environ.get(STORAGE_ENV)
    if env:
        return Path(env)
    from zoogate import cache

    return cache.root() / "host-baselines"


class _StorageLog:
    """The logger pytest-benchmark's FileStorage expects; keeps warnings so a bad file becomes an error."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def info(self, text: str, **_: Any) -> None:
        log.info(text)

    def warning(self, text: str, **_: Any) -> None:
        self.warnings.append(str(text))


def _storage(directory: str | os.PathLike | None, fingerprint: dict):
    from pytest_benchmark.storage.file import FileStorage

    logger = _StorageLog()
    return FileStorage(Path(directory) if directory else default_storage(), logger,
                       default_machine_id=host_id(fingerprint)), logger


def check_name(name: str) -> None:
    if not name or any(c in name for c in "/\\*?[]") or name.startswith("."):
        raise ZoogateError(f"baseline name {name!r}: use letters, digits, '-', '_' and '.'")


def _benchmark_entry(summary: dict) -> dict:
    """One pytest-benchmark "benchmarks" entry for a measurement summary."""
    key = bench_key(summary["model"], summary["runner"], summary["bs"])
    try:
        stats = dict(summary["stats"])
        float(stats["median"])
    except (KeyError, TypeError, ValueError):
        raise ZoogateError(f"measurement {key} carries no step statistics to save") from None
    settings = summary.get("settings", {})
    return {"group": BENCH_GROUP, "name": key, "fullname": key, "param": key,
            "params": {"model": summary["model"], "runner": summary["runner"], "bs": summary["bs"]},
            "options": {"timer": "time.perf_counter", "warmup": settings.get("warmup_steps"),
                        "min_rounds": settings.get("min_steps"), "min_time": settings.get("min_duration_s")},
            "stats": stats, "extra_info": {k: v for k, v in summary.items() if k != "stats"}}


def save_host_baseline(name: str, measurements: Sequence[Measurement | dict], *,
                       storage: str | os.PathLike | None = None, fingerprint: dict | None = None) -> Path:
    """Write measured fps per (model, runner, bs) as pytest-benchmark JSON under ``<storage>/<host id>/``."""
    import pytest_benchmark

    check_name(name)
    if not measurements:
        raise ZoogateError(f"host baseline {name!r}: nothing was measured, nothing to save")
    fp = fingerprint or host_fingerprint()
    store, _ = _storage(storage, fp)
    benches = {}
    for m in measurements:
        entry = _benchmark_entry(m.summary() if isinstance(m, Measurement) else m)
        benches[entry["fullname"]] = entry          # one entry per key; the last measured wins
    doc = {"machine_info": {**fp, "host_id": host_id(fp)}, "commit_info": {},
           "benchmarks": list(benches.values()),
           "datetime": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "version": pytest_benchmark.__version__, "zoogate_baseline": name}
    before = set(store.query("[0-9][0-9][0-9][0-9]_*"))
    store.save(doc, name)
    written = sorted(set(store.query("[0-9][0-9][0-9][0-9]_*")) - before)
    return written[-1] if written else store.get(name)


@dataclass
class HostBaseline:
    """One saved host baseline: the newest ``NNNN_<name>.json`` of this host."""

    name: str
    path: Path
    host_id: str
    saved: str
    benchmarks: dict[str, dict]

    def get(self, model: str, runner: str, bs: int) -> dict | None:
        return self.benchmarks.get(bench_key(model, runner, bs))

    @property
    def source(self) -> str:
        return f"host baseline {self.name!r} ({self.path}, saved {self.saved})"


def load_host_baseline(name: str, *, storage: str | os.PathLike | None = None,
                       fingerprint: dict | None = None) -> HostBaseline:
    """The newest save named ``name`` for this host; ZoogateError when there is none or it is malformed."""
    check_name(name)
    fp = fingerprint or host_fingerprint()
    store, logger = _storage(storage, fp)
    hid = host_id(fp)
    candidates = [p for p in store.query(f"[0-9][0-9][0-9][0-9]_{name}")
                  if p.stem.split("_", 1)[-1] == name]
    if not candidates:
        others = sorted({p.parent.name for p in store.path.glob(f"*/[0-9][0-9][0-9][0-9]_{name}.json")})
        hint = (f"; saved for other hosts: {', '.join(others)} (fps from another host are not comparable)"
                if others else "")
        raise ZoogateError(f"no host baseline named {name!r} for this host ({hid}): record one with "
                           f"--save-baseline {name}{hint}", store.path / hid)
    path = candidates[-1]
    loaded = list(store.load(str(path)))
    if not loaded:
        raise ZoogateError(f"not a readable host baseline ({'; '.join(logger.warnings) or 'no data'})", path)
    _, data = loaded[-1]
    try:
        benches = {b["fullname"]: b for b in data["benchmarks"]}
        for b in benches.values():
            float(b["stats"]["median"]), float(b["extra_info"]["fps"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ZoogateError(f"malformed host baseline: missing or bad field {exc}", path) from None
    return HostBaseline(name=name, path=path, host_id=hid, saved=str(data.get("datetime", "?")), benchmarks=benches)


