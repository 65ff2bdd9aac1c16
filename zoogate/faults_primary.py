"""The primary model of the fault matrix, loaded once: calibrated weights, its ONNX export, runners, images,
and the fp32 agreement gate that backends' fault rows reuse."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from hardware.base import Runner
from zoogate import baselines
from zoogate.record import GateRecord

PRIMARY = "iresnet50"            # cheapest real network (224 px); inception_v4 for preprocessing (342/299)
PREPROCESS_MODEL = "inception_v4"


@functools.lru_cache(maxsize=1)
def _scratch_root():
    """The process's one scratch folder, removed when the process exits (TemporaryDirectory's finaliser)."""
    return tempfile.TemporaryDirectory(prefix="zoogate-faults-")


def scratch(prefix: str = "fault-") -> Path:
    """A new folder for a fault row's files (data sets, result folders, bisect profiles), under one temporary
    folder of this process that is removed when the process exits, so runs leave nothing in the temp folder."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=_scratch_root().name))


class PrimaryModel:
    """Lazily loaded real artifacts of the primary model (calibrated weights, ONNX export, runners)."""

    _cache: dict = {}

    @classmethod
    def get(cls, key: str, make: Callable):
        if key not in cls._cache:
            cls._cache[key] = make()
        return cls._cache[key]

    @classmethod
    def loaded(cls):
        from zoogate.weights import load_model

        return cls.get("loaded", lambda: load_model(PRIMARY))

    @classmethod
    def onnx(cls) -> Path:
        from zoogate.export import export_onnx

        return cls.get("onnx", lambda: export_onnx(cls.loaded()))

    @classmethod
    def images(cls, n: int = 8) -> np.ndarray:
        from zoogate import synthetic
        from zoogate.preprocess.reference import preprocess_batch

        return cls.get(f"images{n}", lambda: preprocess_batch(synthetic.images(n, seed=4242),
                                                             baselines.model(PRIMARY).preprocess))

    @classmethod
    def generated_set(cls):
        """The primary model's generated labelled set (the suite's own: same size, seed and cached labels)."""
        from zoogate.generated_set import GENERATED_IMAGES_DEFAULT, generated_set_for

        return cls.get("generated", lambda: generated_set_for(scratch() / PRIMARY, cls.loaded(), GENERATED_IMAGES_DEFAULT))

    @classmethod
    def eager(cls, batch: np.ndarray) -> np.ndarray:
        """PyTorch eager logits of ``batch``, computed once per batch content (most rows judge the same images)."""
        import hashlib

        batch = np.ascontiguousarray(batch)
        key = f"eager-{batch.dtype}-{batch.shape}-{hashlib.sha256(batch.view(np.uint8)).hexdigest()}"
        return cls.get(key, lambda: cls._forward(batch)).copy()

    @classmethod
    def _forward(cls, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return cls.loaded().module(torch.from_numpy(batch)).numpy()

    @classmethod
    def ort_runner(cls, bs: int, path: Path | None = None) -> Runner:
        from hardware.onnxruntime_runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner().load(path or cls.onnx(), bs)


def primary_onnx() -> Path:
    """Our ONNX export of the primary model (calibrated weights, cached)."""
    return PrimaryModel.onnx()


def fp32_agreement(runner: Runner, label: str, images: np.ndarray | None = None) -> GateRecord:
    """A loaded runner of the primary model against PyTorch eager, gated as an fp32 build
    (fp32_cross_backend)."""
    from hardware.base import infer_all
    from zoogate.gates.agreement import agreement_gate

    images = PrimaryModel.images() if images is None else images
    return agreement_gate(PRIMARY, label, runner.batch_size, PrimaryModel.eager(images), infer_all(runner, images),
                          "fp32_cross_backend", source="PyTorch eager, calibrated weights")
