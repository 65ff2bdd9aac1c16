"""The runner interface every backend implements (the shape of accuracy_checker's Launcher.predict)."""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Timing:
    """Per-call timings. host_s is always measured; device_s only where the backend reports it."""

    host_s: list[float] = field(default_factory=list)
    device_s: list[float] = field(default_factory=list)

    def clear(self) -> None:
        self.host_s.clear()
        self.device_s.clear()


class Runner(abc.ABC):
    """Load a model artifact for a batch size and turn float32 NCHW batches into float32 (N, C) logits.

    Subclasses set ``name`` (test ids, reports) and ``marker`` (the pytest marker its tests carry:
    None for plain CPU runners, "gpu", "ascend", "vacc").
    """

    name: str = "runner"
    marker: str | None = None
    artifact_suffix: str = ""          # ".onnx", ".om", ... what load() expects
    static_batch: bool = False         # True: the artifact accepts exactly batch_size inputs

    def __init__(self) -> None:
        self.timing = Timing()
        self.batch_size: int | None = None

    @classmethod
    @abc.abstractmethod
    def available(cls) -> tuple[bool, str]:
        """(True, "") when the backend can run here, else (False, what is missing and how to provide it)."""

    @abc.abstractmethod
    def load(self, artifact, batch_size: int) -> "Runner":
        """Prepare the artifact (a path, or a torch module for the torch runner). Returns self."""

    @abc.abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch exactly as given; return raw outputs."""

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Logits float32 (N, C) for a float32 (N, 3, H, W) batch; N may be below batch_size (partial tail)."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4:
            raise ValueError(f"{self.name}: expected a 4-d NCHW batch, got shape {batch.shape}")
        t0 = time.perf_counter()
        out = self._infer(batch)
        self.timing.host_s.append(time.perf_counter() - t0)
        out = np.asarray(out, dtype=np.float32).reshape(batch.shape[0], -1)
        return out

    def close(self) -> None:
        """Release device resources; safe to call twice."""

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def pad_to_batch(batch: np.ndarray, batch_size: int) -> tuple[np.ndarray, int]:
    """Pad a partial batch with copies of its last image up to batch_size; return (padded, real count).

    Static-batch artifacts (Ascend .om, VACC builds) need exactly batch_size inputs; callers drop the
    padded rows from the outputs.
    """
    n = batch.shape[0]
    if n > batch_size:
        raise ValueError(f"batch of {n} is larger than the artifact's batch size {batch_size}")
    if n == batch_size:
        return batch, n
    pad = np.repeat(batch[-1:], batch_size - n, axis=0)
    return np.concatenate([batch, pad], axis=0), n
