"""Throughput measurement settings (named tolerances, env overrides) and the batches a measurement rotates."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from zoogate import baselines
from zoogate.errors import ZoogateError





_SETTING_TOLERANCES = {            # field -> tolerance name; env override ZOOGATE_THROUGHPUT_<FIELD>
    "warmup_steps": "throughput_warmup_steps",
    "min_steps": "throughput_min_steps",
    "min_duration_s": "throughput_min_duration_s",
    "rotation": "throughput_rotation_batches",
    "pairs_min": "throughput_pairs_min",
    "pairs_max": "throughput_pairs_max",
    "pairs_max_duration_s": "throughput_pairs_max_duration_s",
    "confidence": "throughput_decision_confidence",
}
_INT_FIELDS = ("warmup_steps", "min_steps", "rotation", "pairs_min", "pairs_max")


@dataclass(frozen=True)
class MeasureSettings:
    """How long to measure. ``from_baselines()`` reads the named values (and their env overrides)."""

    warmup_steps: int
    min_steps: int
    min_duration_s: float
    rotation: int                 # distinct batches cycled in the fps measurement
    pairs_min: int                # interleaved pairs (anti-caching, harness overhead): at least ...
    pairs_max: int                # ... at most ...
    pairs_max_duration_s: float   # ... and no longer than this once pairs_min are done
    confidence: float             # stop adding pairs when the limit is outside this interval of the median

    def __post_init__(self) -> None:
        if (self.warmup_steps < 0 or self.min_steps < 1 or self.min_duration_s < 0 or self.rotation < 1
                or not 1 <= self.pairs_min <= self.pairs_max or self.pairs_max_duration_s < 0
                or not 0 < self.confidence < 1):
            raise ZoogateError(f"throughput settings out of range: {self}")

    @staticmethod
    def env_name(field_name: str) -> str:
        return f"ZOOGATE_THROUGHPUT_{field_name.upper()}"

    @classmethod
    def from_baselines(cls, **overrides: Any) -> "MeasureSettings":
        values: dict[str, Any] = {}
        for name, tol_name in _SETTING_TOLERANCES.items():
            env = cls.env_name(name)
            raw = os.environ.get(env)
            if raw is not None:
                try:
                    values[name] = float(raw)
                except ValueError:
                    raise ZoogateError(f"environment {env}={raw!r}: expected a number") from None
            else:
                values[name] = baselines.tolerance(tol_name).value
        values.update(overrides)
        return cls(**{k: int(v) if k in _INT_FIELDS else float(v) for k, v in values.items()})

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- batches

def split_batches(data: np.ndarray, bs: int) -> list[np.ndarray]:
    """Split N preprocessed images into N // bs contiguous batches (N must be a multiple of bs)."""
    if data.ndim != 4 or data.shape[0] < bs or data.shape[0] % bs:
        raise ValueError(f"need a multiple of bs={bs} images as NCHW, got shape {data.shape}")
    return [np.array(data[i:i + bs], dtype=np.float32, order="C") for i in range(0, data.shape[0], bs)]


def window_batches(pool: np.ndarray, bs: int) -> list[np.ndarray]:
    """Never-repeated batches from a pool of P images: windows pool[j : j + bs], j = 0 .. P - bs
    (P - bs + 1 batches, no two equal as long as the pool's images differ)."""
    if pool.ndim != 4 or pool.shape[0] < bs:
        raise ValueError(f"need at least bs={bs} images as NCHW, got shape {pool.shape}")
    return [np.array(pool[j:j + bs], dtype=np.float32, order="C") for j in range(pool.shape[0] - bs + 1)]


def check_batches(batches: Sequence[np.ndarray]) -> int:
    if not batches:
        raise ValueError("no batches to measure with")
    shapes = {b.shape for b in batches}
    if len(shapes) != 1:
        raise ValueError(f"batches of different shapes: {sorted(shapes)}")
    return int(batches[0].shape[0])


def bench_key(model: str, runner: str, bs: int) -> str:
    return f"{model}-{runner}-bs{bs}"
