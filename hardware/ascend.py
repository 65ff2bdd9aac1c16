"""Ascend NPU runner: ais_bench's InferSession on an ATC-built .om file (static batch).

API used (ais_bench.infer.interface, the same in the 2023 release and the 2025 one msit wraps):
``InferSession(device_id, model_path)`` (device_id an int: the 2025 release checks it); ``get_inputs()`` /
``get_outputs()`` descriptors with ``.name .datatype .shape .size``; ``infer(feeds, mode="static")`` with a
list of contiguous arrays of exactly the built batch ('static' is the only mode spelled alike in every
release and guide; no ``out_array``, which 2023 lacks); device time from ``summary().exec_time_list``
(2025) or ``sumary().exec_time_list`` (2023), milliseconds per execute; release with ``free_resource()``
(2025: this session's device resources) or, where that does not exist, ``finalize()`` (2023: this
session). The 2025 ``finalize()`` is a staticmethod releasing AscendCL for the whole process, so it is
never called when ``free_resource()`` exists.

The last partial batch is padded with copies of its last image (hardware.base.pad_to_batch, done by
Runner.infer for static runners) and the padded rows are dropped. 1001-class outputs (Cadene
InceptionV4, index 0 = background) are returned as-is with ``background_class = True``; the caller
decides whether to drop column 0.
"""

from __future__ import annotations

import os

import numpy as np

from hardware.base import Runner
from zoogate import detect
from zoogate.errors import ZoogateError


def _numpy_dtype(datatype, path: str):
    """aclruntime's dtype enum (str like 'dtype.float32') -> the numpy dtype to feed."""
    text = str(getattr(datatype, "name", datatype)).lower().rsplit(".", 1)[-1]
    if text in ("float16", "fp16", "half"):
        return np.float16
    if text in ("float32", "float", "fp32"):
        return np.float32
    raise ZoogateError(f"the OM input expects {text} data (AIPP or quantised input?); this runner feeds "
                       f"normalised float32/float16 NCHW tensors: rebuild without AIPP", path)


class AscendRunner(Runner):
    name = "ascend"
    marker = "ascend"
    artifact_suffix = ".om"
    static_batch = True
    precision = "fp16"            # ATC's default precision mode computes convolutions in float16
    reports_device_time = True

    def __init__(self, device_id: int = 0, precision: str | None = None) -> None:
        super().__init__()
        self.device_id = device_id
        if precision:
            self.precision = precision
        self.session = None
        self.path: str | None = None

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return detect.ais_bench()

    def load(self, artifact, batch_size: int) -> "AscendRunner":
        path = os.fspath(artifact)
        if not os.path.isfile(path):
            raise ZoogateError("OM file not found", path)
        from ais_bench.infer.interface import InferSession   # vendor SDK: imported only here

        session = InferSession(int(self.device_id), path)
        try:
            inputs, outputs = session.get_inputs(), session.get_outputs()
            if len(inputs) != 1:
                raise ZoogateError(f"expected one image input, the OM has {[d.name for d in inputs]}", path)
            shape = [int(v) for v in inputs[0].shape]
            if len(shape) != 4:
                raise ZoogateError(f"expected an NCHW input, the OM input {inputs[0].name} has shape {shape}", path)
            if shape[0] != batch_size:
                raise ZoogateError(f"the OM was built for batch {shape[0]}, asked for batch size {batch_size} "
                                   f"(OMs have a static batch: build one per batch size)", path)
            self.input_shape = tuple(shape)
            self.input_dtype = _numpy_dtype(inputs[0].datatype, path)
            self.num_classes = int(outputs[0].shape[-1])
        except Exception:
            _release(session)
            raise
        self.background_class = self.num_classes == 1001
        self.session, self.path, self.batch_size = session, path, batch_size
        return self

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        if self.session is None:
            raise RuntimeError(f"{self.name}: session closed or not loaded")
        if tuple(batch.shape) != self.input_shape:
            raise ValueError(f"{self.name}: {self.path} takes batches of shape {list(self.input_shape)} "
                             f"(images {list(self.input_shape[1:])}), got images {list(batch.shape[1:])} "
                             f"(wrong image size or channel layout?)")
        feed = np.ascontiguousarray(batch, dtype=self.input_dtype)
        outputs = self.session.infer([feed], mode="static")
        self._record_device_time()
        return np.asarray(outputs[0])

    def _record_device_time(self) -> None:
        summary = getattr(self.session, "summary", None) or getattr(self.session, "sumary", None)
        if summary is None:
            return
        times = summary().exec_time_list
        if len(times):
            self.timing.add_device(float(times[-1]) / 1000.0)     # exec_time_list holds milliseconds

    def close(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            _release(session)


def _release(session) -> None:
    free = getattr(session, "free_resource", None)
    if free is not None:
        free()
        return
    finalize = getattr(session, "finalize", None)
    if finalize is not None:
        finalize()
