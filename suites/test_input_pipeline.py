"""The live-evaluation input pipeline (zoogate.input_pipeline) and its crop cache (zoogate.crop_cache).

Tensors and top-5 must be those of the single-process reference path whatever the workers and the cache
do; a changed file is never served an old crop; a bad image names its file; the bottleneck is named.
"""

from __future__ import annotations

import io
import os
import time

import numpy as np
import pytest
from PIL import Image

from hardware.base import Runner
from zoogate import accuracy, baselines, datasets, synthetic
from zoogate.crop_cache import SHARD_IMAGES, CropCache
from zoogate.errors import ZoogateError
from zoogate.images import open_rgb
from zoogate.input_pipeline import (MIN_IMAGES_FOR_WORKERS, InputOptions, InputPipeline, PipelineStats,
                                    default_workers, usable_cores)
from zoogate.preprocess.fast import FastPipeline
from zoogate.preprocess.reference import preprocess_reference

MODEL = "inception_v4"            # Resize(342) / CenterCrop(299), the geometry seven Inception rows share
N = 11                            # not a multiple of the batch size: the last batch is partial
BS = 4


class ProjectionRunner(Runner):
    """Logits = a fixed random projection of a strided sample of the input: any change of a tensor value
    moves them, so equal top-5 means equal tensors in practice."""

    name = "projection"

    def __init__(self, step_s: float = 0.0) -> None:
        super().__init__()
        self.step_s = step_s
        self.w = np.random.default_rng(0).standard_normal((512, 1000)).astype(np.float32)

    @classmethod
    def available(cls):
        return True, "always"

    def load(self, artifact, batch_size):
        self.batch_size = batch_size
        self.artifact_id = "projection seed 0"
        return self

    def _infer(self, batch):
        if self.step_s:
            time.sleep(self.step_s)
        flat = batch.reshape(len(batch), -1)
        return flat[:, ::flat.shape[1] // 512][:, :512] @ self.w


def _jpeg(arr: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture
def labelled(tmp_path):
    """N generated JPEGs of varied sizes in the ImageNet layout, one grayscale, one PNG with alpha."""
    pics = [np.asarray(im) for im in synthetic.images(N, seed=900)]
    files: list[bytes] = []
    for i, arr in enumerate(pics):
        if i == 3:
            arr = arr[: 300 + 7 * i, : 420]            # another size and aspect
        files.append(_jpeg(arr, 80 + i))
    gray = io.BytesIO()
    Image.fromarray(pics[5][..., 0]).save(gray, "JPEG")
    files[5] = gray.getvalue()
    rgba = io.BytesIO()
    Image.fromarray(np.dstack([pics[7], np.full(pics[7].shape[:2], 200, np.uint8)])).save(rgba, "PNG")
    files[7] = rgba.getvalue()
    return datasets.write_imagenet_layout(tmp_path / "set", files, list(range(N)))


def _spec():
    return baselines.model(MODEL).preprocess


def _reference_tensors(dataset) -> np.ndarray:
    return np.stack([preprocess_reference(open_rgb(it.path), _spec()) for it in dataset.items])


def _tensors(dataset, options: InputOptions, **kw) -> tuple[np.ndarray, PipelineStats]:
    source = InputPipeline([it.path for it in dataset.items], _spec(), BS, options=options, **kw)
    return np.concatenate(list(source.batches())), source.stats


def _options(tmp_path, workers: int, cache: bool = True, max_gb: float = 1.0) -> InputOptions:
    return InputOptions(workers=workers, crop_cache=cache, crop_cache_max_gb=max_gb, cache_root=tmp_path / "cache")


@pytest.mark.parametrize("workers", [0, 1, 2], ids=lambda w: f"workers{w}")
def test_tensors_are_bit_identical_to_the_reference_cold_and_cached(labelled, tmp_path, workers):
    reference = _reference_tensors(labelled)
    cold, cold_stats = _tensors(labelled, _options(tmp_path, workers))
    warm, warm_stats = _tensors(labelled, _options(tmp_path, workers))
    uncached, _ = _tensors(labelled, _options(tmp_path, workers, cache=False))
    for name, got in (("cold cache", cold), ("cached", warm), ("no cache", uncached)):
        assert got.dtype == np.float32 and got.shape == reference.shape
        assert got.tobytes() == reference.tobytes(), f"{name}, {workers} worker(s): tensors differ from the reference"
    assert (cold_stats.cache_misses, cold_stats.cache_hits, cold_stats.cache_written) == (N, 0, N)
    assert (warm_stats.cache_hits, warm_stats.cache_misses, warm_stats.cache_written) == (N, 0, 0)


def test_top5_identical_whatever_the_workers_and_cache(labelled, tmp_path):
    runner = ProjectionRunner().load(None, BS)

    def run(options):
        return accuracy.evaluate(runner, labelled, _spec(), BS, progress=False, model=MODEL, inputs=options).top5

    baseline = run(_options(tmp_path, 0, cache=False))
    for options in (_options(tmp_path, 2), _options(tmp_path, 2), _options(tmp_path, 1), _options(tmp_path, 0)):
        np.testing.assert_array_equal(run(options), baseline)


def test_a_changed_file_is_never_served_its_old_crop(labelled, tmp_path):
    options = _options(tmp_path, 1)
    _tensors(labelled, options)
    jpegs = sorted((it.path for it in labelled.items if it.path.read_bytes()[:2] == b"\xff\xd8"),
                   key=lambda p: p.stat().st_size)
    victim, other = jpegs[-1], jpegs[0].read_bytes()
    stat = victim.stat()
    victim.write_bytes(other.ljust(stat.st_size, b"\0"))        # another picture; bytes after EOI are ignored
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))    # same path, same size, same mtime
    assert victim.stat().st_size == stat.st_size
    got, stats = _tensors(labelled, options)
    assert got.tobytes() == _reference_tensors(labelled).tobytes()
    assert stats.cache_misses == 1 and stats.cache_hits == N - 1


def test_a_bad_image_names_its_file_and_the_run_keeps_what_it_computed(labelled, tmp_path):
    bad = labelled.items[6].path
    bad.write_bytes(bad.read_bytes()[:200])                # truncated JPEG, in the second batch
    state = tmp_path / "state.npz"
    runner = ProjectionRunner().load(None, BS)
    with pytest.raises(ZoogateError) as err:
        accuracy.evaluate(runner, labelled, _spec(), BS, state_file=state, progress=False, model=MODEL,
                          inputs=_options(tmp_path, 2))
    assert str(bad) in str(err.value) and "decode" in str(err.value)
    with np.load(state) as z:
        assert len(z["top5"]) == BS                        # the first batch was saved


def test_no_crop_cache_writes_nothing_and_a_full_cache_evicts_the_oldest(labelled, tmp_path):
    _tensors(labelled, _options(tmp_path, 0, cache=False))
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.npy"))
    crop_bytes = 299 * 299 * 3
    small = _options(tmp_path, 0, max_gb=crop_bytes * (N + 2) / 1e9)          # room for one run's shard
    _tensors(labelled, small)
    first = sorted((tmp_path / "cache").rglob("*.crops.npy"))
    assert len(first) == 1
    other = datasets.write_imagenet_layout(tmp_path / "other", datasets.generated_jpegs(3, seed=77), [0, 1, 2])
    _tensors(other, small)
    now = sorted((tmp_path / "cache").rglob("*.crops.npy"))
    assert first[0] not in now and len(now) == 1, "the oldest shard should have made room for the new one"
    too_small = _options(tmp_path, 0, max_gb=crop_bytes / 2 / 1e9)
    _, stats = _tensors(labelled, too_small)
    assert stats.cache_written == 0


def test_a_half_written_shard_is_never_read(labelled, tmp_path):
    options = _options(tmp_path, 0)
    _tensors(labelled, options)
    folder = next((tmp_path / "cache" / "crops").iterdir())
    data = next(folder.glob("*.crops.npy"))
    (folder / "deadbeef.crops.npy").write_bytes(data.read_bytes()[:1000])        # a writer killed midway
    (folder / ".x.keys.npy.123.tmp").write_bytes(b"partial")
    cache = CropCache(tmp_path / "cache", _spec(), 1.0)
    assert len(cache) == N
    got, _ = _tensors(labelled, options)
    assert got.tobytes() == _reference_tensors(labelled).tobytes()


def test_shards_are_bounded_in_size(tmp_path):
    cache = CropCache(tmp_path, _spec(), 10.0)
    crop = np.zeros((299, 299, 3), np.uint8)
    for i in range(SHARD_IMAGES + 3):
        cache.add(i.to_bytes(16, "little"), crop)
    assert cache.written == SHARD_IMAGES                   # one full shard published, 3 crops still buffered
    cache.flush()
    reopened = CropCache(tmp_path, _spec(), 10.0)
    assert cache.written == SHARD_IMAGES + 3 and len(reopened) == SHARD_IMAGES + 3
    assert (0).to_bytes(16, "little") in reopened.index          # digests ending in NUL bytes come back whole


def test_workers_default_to_the_usable_cores_minus_one():
    assert default_workers() == max(0, usable_cores() - 1)
    assert InputOptions().resolved_workers(MIN_IMAGES_FOR_WORKERS) == default_workers()
    assert InputOptions().resolved_workers(MIN_IMAGES_FOR_WORKERS - 1) == 0         # not worth starting processes
    assert InputOptions(workers=2).resolved_workers(1) == 2                          # an explicit count is kept


class _SlowCrop:
    """The reference preprocessing, 30 ms slower per image: a host that cannot keep up."""

    def __init__(self, spec) -> None:
        self.fast = FastPipeline(spec)

    def __call__(self, img):
        time.sleep(0.03)
        return self.fast(img)


def test_a_slow_input_pipeline_is_reported_host_bound(labelled, tmp_path):
    runner = ProjectionRunner().load(None, BS)
    slow = accuracy.evaluate(runner, labelled, _spec(), BS, progress=False, model=MODEL,
                             pipeline=_SlowCrop(_spec()), inputs=_options(tmp_path, 1, cache=False))
    stats = slow.pipeline
    assert stats.host_bound and stats.host_img_s < 34
    assert stats.warning().startswith(f"host-bound: the input pipeline fed {stats.host_img_s:.0f} img/s, the runner "
                                      "could take")
    d = stats.to_dict()
    assert d["host_bound"] and d["images"] == N and d["wall_s"] > 0 and d["runner_img_s"] > d["host_img_s"]


def test_a_slow_runner_is_not_host_bound(labelled, tmp_path):
    runner = ProjectionRunner(step_s=0.5).load(None, BS)
    result = accuracy.evaluate(runner, labelled, _spec(), BS, progress=False, model=MODEL,
                               inputs=_options(tmp_path, 1))
    assert not result.pipeline.host_bound and result.pipeline.warning() is None
    assert result.pipeline.runner_img_s < result.pipeline.host_img_s


class _Finalised:
    """Garbage held by a reference cycle; its finaliser names the process that ran it."""

    def __init__(self, log) -> None:
        self.log, self.me = log, self

    def __del__(self) -> None:
        with open(self.log, "a") as fh:
            fh.write(f"{os.getpid()}\n")


def test_a_worker_never_finalises_garbage_it_inherited(labelled, tmp_path):
    """A worker that collects garbage (here on purpose, per image) must not finalise the parent's: an ONNX
    Runtime session's destructor there waits forever on a thread pool that exists only in the parent."""
    import gc

    log = tmp_path / "finalised-by"
    spec = _spec()

    def collecting(img):
        gc.collect()
        return preprocess_reference(img, spec)

    enabled = gc.isenabled()
    gc.disable()                  # the cycle must still be garbage, uncollected, when the workers fork
    try:
        _Finalised(log)
        got, _ = _tensors(labelled, _options(tmp_path, 1, cache=False), pipeline=collecting)
    finally:
        if enabled:
            gc.enable()
    gc.collect()
    assert got.shape[0] == N
    assert log.read_text().split() == [str(os.getpid())], "a worker ran the finaliser of the parent's garbage"
