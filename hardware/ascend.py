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

Detection (the `ascend` marker, also carried by onnxruntime's CANN runner): npu-smi on PATH or
/dev/davinci* nodes, and ASCEND_TOOLKIT_HOME set (CANN's set_env.sh); the runner also needs ais_bench
importable. Nothing is imported from a vendor SDK to find out; answers are cached per process.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import re
import shutil

import numpy as np

from hardware.artifacts import find_om
from hardware.base import Backend, Marker, Runner
from zoogate.errors import ZoogateError
from zoogate.identity import file_digest


@functools.lru_cache(maxsize=None)
def device() -> tuple[bool, str]:
    """Is an Ascend NPU with CANN's environment here?"""
    smi = shutil.which("npu-smi")
    nodes = glob.glob("/dev/davinci[0-9]*")
    home = os.environ.get("ASCEND_TOOLKIT_HOME")
    if not (smi or nodes):
        return False, ("no Ascend device: npu-smi not found and no /dev/davinci* nodes"
                       + ("" if home else "; ASCEND_TOOLKIT_HOME unset")
                       + " (install the driver and source /usr/local/Ascend/ascend-toolkit/set_env.sh)")
    if not home:
        return False, ("Ascend device present but ASCEND_TOOLKIT_HOME unset: "
                       "source /usr/local/Ascend/ascend-toolkit/set_env.sh")
    return True, f"Ascend: {smi or nodes[0]}"


@functools.lru_cache(maxsize=None)
def ais_bench() -> tuple[bool, str]:
    """The device, and ais_bench importable (without importing it)."""
    ok, why = device()
    if not ok:
        return ok, why
    if importlib.util.find_spec("ais_bench") is None:
        return False, "ais_bench not importable: install ais_bench and aclruntime from the Ascend tools repository"
    return True, "ais_bench"


def cards() -> list[int]:
    """Chip indices from the /dev/davinci<N> nodes (davinci_manager is not a chip)."""
    return sorted(int(m.group(1)) for p in glob.glob("/dev/davinci*") if (m := re.fullmatch(r".*davinci(\d+)", p)))


# detect through the module attribute, so a test that stands in for the device patches one name
ASCEND = Marker("ascend", "needs a Huawei Ascend NPU with CANN and ais_bench", detect=lambda: device(), npu=True,
                cards=lambda: cards())


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
    marker = ASCEND.name
    static_batch = True
    precision = "fp16"            # ATC's default precision mode computes convolutions in float16
    reports_device_time = True
    vendor_module = "ais_bench"
    options = {"precision": "the precision the .om was built with (fp16 by default; fp32 for an ATC "
                            "precision_mode that keeps float32): picks the agreement tolerance"}

    def __init__(self, device_id: int = 0, precision: str | None = None) -> None:
        super().__init__()
        self.device_id = device_id
        if precision:
            self.precision = precision
        self.session = None
        self.path: str | None = None

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return ais_bench()

    @classmethod
    def artifact(cls, request):
        """``--model-dir DIR/<model>_bs<N>.om`` (hardware.artifacts.find_om)."""
        return find_om(request.model_dir, request.model, request.bs, input_size=request.input_size)

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
        self.artifact_id, self.artifact_path = file_digest(path), path
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


BACKEND = Backend("ascend", runners=(AscendRunner,), markers=(ASCEND,))
