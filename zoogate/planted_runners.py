"""Planted runners: each wraps a real, loaded runner and plants one fault in how that same build is run.

Used by the fault matrix (zoogate.faults) and by the suites' self-tests; nothing here is used by a healthy run.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from hardware.base import Runner


class PlantedRunner(Runner):
    """A planted fault around a real, loaded runner (keeps its name, batch size, session and build identity:
    the fault is planted in how the same build is run)."""

    def __init__(self, inner: Runner) -> None:
        super().__init__()
        self.inner = inner
        self.name = inner.name
        self.batch_size = inner.batch_size
        self.static_batch = inner.static_batch
        self.session = getattr(inner, "session", None)
        self.precision = inner.precision
        self.artifact_id, self.artifact_path = inner.artifact_id, inner.artifact_path
        self.weights_identity = inner.weights_identity

    @property
    def build_options(self) -> dict:
        return self.inner.build_options

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, "planted fault"

    def load(self, artifact, batch_size: int) -> "Runner":
        return self

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return self.inner._infer(batch)


class SlowedRunner(PlantedRunner):
    """Sleeps ``extra`` x its own step time after every call."""

    def __init__(self, inner: Runner, extra: float) -> None:
        super().__init__(inner)
        self.extra = extra

    def _infer(self, batch):
        t0 = time.perf_counter()
        out = self.inner._infer(batch)
        time.sleep(self.extra * (time.perf_counter() - t0))
        return out


class CachingRunner(PlantedRunner):
    """Memoises outputs by input bytes: a repeated batch comes back at once (what MLPerf TEST04 hunts)."""

    def __init__(self, inner: Runner) -> None:
        super().__init__(inner)
        self.memo: dict[str, np.ndarray] = {}

    def _infer(self, batch):
        key = hashlib.sha1(batch.tobytes()).hexdigest()
        if key not in self.memo:
            self.memo[key] = self.inner._infer(batch)
        return self.memo[key]


class TailDroppingRunner(PlantedRunner):
    """A static-batch runner that silently returns no rows for the padded last partial batch."""

    def infer(self, batch):
        out = super().infer(batch)
        return out[:0] if len(batch) < self.batch_size else out


class BatchMateRunner(PlantedRunner):
    """Leaks batch statistics into each image (as a BatchNorm left in training mode does)."""

    def _infer(self, batch):
        return self.inner._infer(batch - batch.mean(axis=0, keepdims=True) * 0.5)


class NHWCAsNCHWRunner(PlantedRunner):
    """Hands the engine NHWC memory labelled as NCHW (a missing transpose before a device copy)."""

    def _infer(self, batch):
        n, c, h, w = batch.shape
        return self.inner._infer(np.ascontiguousarray(batch.transpose(0, 2, 3, 1)).reshape(n, c, h, w))


class InterruptedRunner(PlantedRunner):
    """The same build, stopped by Ctrl-C (KeyboardInterrupt) once ``batches`` batches have run."""

    def __init__(self, inner: Runner, batches: int) -> None:
        super().__init__(inner)
        self.left = batches

    def _infer(self, batch):
        if self.left <= 0:
            raise KeyboardInterrupt
        self.left -= 1
        return self.inner._infer(batch)
