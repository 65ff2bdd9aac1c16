"""The input pipeline of live evaluation: decode, resize and crop in worker processes, normalise per batch.

``InputPipeline.batches(start)`` yields float32 NCHW batches in dataset order, equal bit for bit to
``FastPipeline(spec)(open_rgb(path))`` per image (the reference preprocessing). Work is split where it is
cheapest to send: workers (``torch.utils.data.DataLoader`` worker processes) read each file, take its
content digest, and return the uint8 crop, from the crop cache (zoogate.crop_cache) when it holds the
image for this geometry, else decoded; the parent normalises each batch (about 0.3 ms per 299 px crop) and
publishes new crops to the cache. Prefetch is bounded: at most ``workers x PREFETCH_BATCHES`` batches wait.

A pipeline that is not split (any callable PIL image -> float32 CHW, e.g. a planted BGR preprocessing) runs
whole in the workers and is not cached. ``workers=0`` keeps everything in this process, with one
background thread one batch ahead.

Every run records who was the bottleneck (PipelineStats): the rate the input pipeline can deliver, the
rate the runner took images at, and the wall time; ``warning()`` names a host-bound run.
"""

from __future__ import annotations

import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np

from zoogate import baselines
from zoogate.baselines import Preprocess
from zoogate.crop_cache import DEFAULT_MAX_GB, CropCache, ShardReader, content_digest
from zoogate.errors import ZoogateError
from zoogate.images import open_rgb, read_bytes

PREFETCH_BATCHES = 2          # per worker: batches decoded ahead of the runner
# by default, smaller runs stay in-process: starting worker processes costs 60-150 ms (measured on 2 cores,
# more in a large process), the decode of 64 images at 299 px about 350 ms
MIN_IMAGES_FOR_WORKERS = 64


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_workers() -> int:
    """The usable cores minus one: that one runs the runner (and normalises)."""
    return max(0, usable_cores() - 1)


@dataclass(frozen=True)
class InputOptions:
    """--workers, --no-crop-cache, --crop-cache-max-gb (and the cache folder, zoogate.cache.root() by default)."""

    workers: int | None = None                  # None: default_workers()
    crop_cache: bool = True
    crop_cache_max_gb: float = DEFAULT_MAX_GB
    cache_root: Path | None = None

    def resolved_workers(self, images: int) -> int:
        """Explicit --workers is kept; the default is usable cores - 1, in-process for small runs."""
        if self.workers is not None:
            return self.workers
        return default_workers() if images >= MIN_IMAGES_FOR_WORKERS else 0


@dataclass
class PipelineStats:
    """Who was the bottleneck of one live evaluation."""

    images: int = 0
    workers: int = 0
    wall_s: float = 0.0
    runner_s: float = 0.0          # inside runner.infer
    wait_s: float = 0.0            # the runner's loop blocked on the next batch
    produce_s: float = 0.0         # summed over images: read + digest + crop (cache read or decode)
    normalise_s: float = 0.0       # in this process
    cache_hits: int = 0
    cache_misses: int = 0
    cache_written: int = 0
    cache: str = "off"

    @property
    def host_img_s(self) -> float:
        """What the input pipeline can deliver: its producers in parallel, or the normalising parent."""
        per_image = max(self.produce_s / max(self.workers, 1), self.normalise_s) / max(self.images, 1)
        return float("inf") if per_image == 0 else 1.0 / per_image

    @property
    def runner_img_s(self) -> float:
        return float("inf") if self.runner_s == 0 else self.images / self.runner_s

    @property
    def observed_img_s(self) -> float:
        return 0.0 if self.wall_s == 0 else self.images / self.wall_s

    @property
    def host_bound(self) -> bool:
        margin = baselines.tolerance("host_bound_margin").value
        return self.images > 0 and self.runner_img_s > self.host_img_s * (1 + margin)

    def warning(self) -> str | None:
        if not self.host_bound:
            return None
        return (f"host-bound: the input pipeline fed {self.host_img_s:.0f} img/s, the runner could take "
                f"{_rate(self.runner_img_s, '.0f')} "
                f"({self.workers} worker(s); raise --workers, or reuse crops with the crop cache)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(host_img_s=_finite(self.host_img_s), runner_img_s=_finite(self.runner_img_s),
                 observed_img_s=self.observed_img_s, host_bound=self.host_bound)
        return d

    def describe(self) -> str:
        cache = (f"crop cache {self.cache_hits} hit(s), {self.cache_misses} miss(es)" if self.cache != "off"
                 else "crop cache off")
        return (f"{self.images} images in {self.wall_s:.1f} s ({self.observed_img_s:.1f} img/s): input pipeline "
                f"{self.host_img_s:.1f} img/s with {self.workers} worker(s), runner {_rate(self.runner_img_s, '.1f')} "
                f"img/s; {cache}")


def _finite(x: float) -> float | None:
    return None if x == float("inf") else x


def _rate(x: float, spec: str) -> str:
    return "unbounded" if x == float("inf") else format(x, spec)


def split_pipeline(pipeline: Callable | None, spec: Preprocess):
    """(crop function, spec to normalise with) of a split pipeline, or (the callable, None) for a whole one."""
    from zoogate.preprocess.fast import FastPipeline, crop_uint8

    if pipeline is None:
        pipeline = FastPipeline(spec)
    if isinstance(pipeline, FastPipeline):
        return functools.partial(crop_uint8, spec=pipeline.spec), pipeline.spec
    return pipeline, None


class _Item(NamedTuple):
    index: int
    out: np.ndarray | None         # uint8 HWC crop (float32 CHW for a whole pipeline); None: a cache hit
    digest: bytes
    hit: bool
    error: tuple[str, str] | None  # (problem, file)
    spent_s: float


class _Items:
    """What a worker does for one image; a torch Dataset by duck typing (__getitem__, __len__)."""

    def __init__(self, paths: Sequence[Path], make: Callable, cached: set[bytes] | None) -> None:
        self.paths = list(paths)
        self.make = make
        self.cached = cached             # digests the cache holds, or None: no cache

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        t0 = time.perf_counter()
        path = self.paths[i]
        try:
            data = read_bytes(path)
            digest = content_digest(data) if self.cached is not None else b""
            if digest and digest in self.cached:      # the parent reads the crop from its memory map: no copy here
                return _Item(i, None, digest, True, None, time.perf_counter() - t0)
            return _Item(i, self.make(open_rgb(path, data=data)), digest, False, None, time.perf_counter() - t0)
        except ZoogateError as exc:
            return _Item(i, None, b"", False, (exc.problem, exc.path or os.fspath(path)), time.perf_counter() - t0)


def _as_list(batch):
    return batch


def _keep_inherited_objects(collecting: bool, _worker_id: int) -> None:
    """A worker's first step (the DataLoader's worker_init_fn): everything it inherited from the parent goes to
    the permanent generation, so this worker's collector never finalises the parent's garbage, e.g. an ONNX
    Runtime session an earlier run dropped inside a reference cycle, whose destructor waits on a thread pool
    that exists only in the parent: the worker would hang. Then the worker collects its own garbage as the
    parent did."""
    import gc

    gc.freeze()
    if collecting:
        gc.enable()


def _forked(loader, collecting: bool):
    """``iter(loader)``, which forks the worker processes, with the collector off from before the forks until
    each worker's ``_keep_inherited_objects``. Collecting the parent's garbage instead would walk every object
    of a large process before each run (90 ms with torch imported, more in a test session); freezing in the
    parent would need an unfreeze afterwards, which thaws every frozen object, a caller's too."""
    import gc

    gc.disable()
    try:
        return iter(loader)
    finally:
        if collecting:
            gc.enable()


class InputPipeline:
    def __init__(self, paths: Sequence[Path], spec: Preprocess, batch_size: int, *,
                 pipeline: Callable | None = None, options: InputOptions | None = None) -> None:
        options = options or InputOptions()
        self.batch_size = batch_size
        self.make, self.norm_spec = split_pipeline(pipeline, spec)
        self.cache = None
        if options.crop_cache and self.norm_spec is not None:
            from zoogate import cache as disk_cache

            self.cache = CropCache(options.cache_root or disk_cache.root(), self.norm_spec, options.crop_cache_max_gb)
        self.items = _Items(paths, self.make, set(self.cache.index) if self.cache is not None else None)
        self.reader = ShardReader()
        self.stats = PipelineStats(workers=options.resolved_workers(len(paths)),
                                   cache=str(self.cache.dir) if self.cache is not None else "off")

    def batches(self, start: int = 0) -> Iterator[np.ndarray]:
        """Batches of images start, start+bs, ... in order; a file that cannot be read raises its ZoogateError."""
        n = len(self.items)
        if start >= n:
            return
        source = self._from_workers(start) if self.stats.workers > 0 else self._in_process(start)
        try:
            while True:
                t0 = time.perf_counter()
                got = next(source, None)
                self.stats.wait_s += time.perf_counter() - t0
                if got is None:
                    return
                yield self._assemble(got)
        finally:
            source.close()
            if self.cache is not None:
                self.cache.flush()
                self.stats.cache_written = self.cache.written

    def _from_workers(self, start: int):
        import gc

        from torch.utils.data import DataLoader

        collecting = gc.isenabled()
        loader = DataLoader(self.items, batch_size=self.batch_size, sampler=range(start, len(self.items)),
                            num_workers=self.stats.workers, collate_fn=_as_list, prefetch_factor=PREFETCH_BATCHES,
                            worker_init_fn=functools.partial(_keep_inherited_objects, collecting))
        batches = _forked(loader, collecting)
        try:
            yield from batches
        finally:
            del batches                  # shuts the worker processes down now, also on an error or Ctrl-C

    def _in_process(self, start: int):
        bs, n = self.batch_size, len(self.items)

        def load(lo: int):
            return [self.items[i] for i in range(lo, min(lo + bs, n))]

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoogate-decode")
        pending = pool.submit(load, start)
        try:
            for lo in range(start, n, bs):
                got = pending.result()
                pending = pool.submit(load, lo + bs) if lo + bs < n else None
                yield got
        finally:
            if pending is not None:
                pending.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    def _assemble(self, got: list) -> np.ndarray:
        from zoogate.preprocess.fast import normalise

        for k, item in enumerate(got):
            self.stats.produce_s += item.spent_s
            if item.error is not None:
                raise ZoogateError(*item.error)
            if item.hit:
                crop = self.reader.read(self.cache.index[item.digest])
                evicted = crop is None          # the shard was removed by another run meanwhile: decode again
                if evicted:
                    crop = self.make(open_rgb(self.items.paths[item.index]))
                    self.cache.index.pop(item.digest, None)          # so the crop is published again
                got[k] = item._replace(out=crop, hit=not evicted)
        t0 = time.perf_counter()
        if self.norm_spec is None:
            batch = np.stack([item.out for item in got])
        else:
            s = self.norm_spec
            batch = np.empty((len(got), 3, s.crop, s.crop), dtype=np.float32)
            for k, item in enumerate(got):
                normalise(item.out, s.mean, s.std, s.channel_order, out=batch[k])
        self.stats.normalise_s += time.perf_counter() - t0
        self.stats.images += len(got)
        if self.cache is not None:
            for item in got:
                self.stats.cache_hits += item.hit
                self.stats.cache_misses += not item.hit
                if not item.hit:
                    self.cache.add(item.digest, item.out)
        return batch
