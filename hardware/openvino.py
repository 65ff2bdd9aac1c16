"""OpenVINO CPU runners on our ONNX export (or a user's --onnx file).

OpenVINO's CPU plugin picks its own inference precision: on a CPU that lists BF16 in
OPTIMIZATION_CAPABILITIES (AVX512-BF16 / AMX) it compiles float32 graphs to run in bfloat16 unless
``INFERENCE_PRECISION_HINT`` says otherwise. So there are two runners:

- ``openvino`` sets the hint to f32 and is gated as an fp32 build (tolerance fp32_cross_backend);
- ``openvino-bf16`` leaves OpenVINO's default and is gated with the ``bf16`` tolerance.

Both read back the precision the compiled model really uses (``INFERENCE_PRECISION_HINT`` of the
compiled model) and refuse to run when it is not what the runner is gated as, so an f32 number is never
a bf16 number. Options: ``--runner openvino:inference_num_threads=2,num_streams=1``.
"""

from __future__ import annotations

import os

import numpy as np

from hardware.base import Backend, Runner
from zoogate import int8
from zoogate.errors import ZoogateError
from zoogate.identity import file_digest

_OPTIONS = {
    "inference_num_threads": "INFERENCE_NUM_THREADS (default: OpenVINO's, every core)",
    "num_streams": "NUM_STREAMS (default: OpenVINO's for the LATENCY hint, 1)",
}


def _ov():
    import openvino

    return openvino


def _cpu() -> tuple[bool, str]:
    try:
        ov = _ov()
    except ImportError as exc:
        return False, f"openvino not importable ({exc}): pip install openvino"
    devices = ov.Core().available_devices
    if "CPU" not in devices:
        return False, f"OpenVINO lists no CPU device (devices: {devices})"
    return True, f"OpenVINO {ov.get_version()} CPU"


class OpenVinoRunner(Runner):
    name = "openvino"
    precision = "fp32"
    # the INFERENCE_PRECISION_HINT asked for (None: OpenVINO's default for this CPU)
    precision_hint: str | None = "f32"
    options = _OPTIONS

    def __init__(self, device_id: int = 0, inference_num_threads: int | None = None,
                 num_streams: int | None = None) -> None:
        super().__init__()
        self.config: dict[str, object] = {}
        if self.precision_hint:
            self.config["INFERENCE_PRECISION_HINT"] = self.precision_hint
        if inference_num_threads:
            self.config["INFERENCE_NUM_THREADS"] = int(inference_num_threads)
        if num_streams:
            self.config["NUM_STREAMS"] = int(num_streams)
        self.compiled = None
        self.request = None
        self.inference_precision: str | None = None

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return _cpu()

    @classmethod
    def artifact(cls, request):
        return request.onnx()

    def _check_precision(self, used: str, path: str) -> None:
        if self.precision_hint and used != self.precision_hint:
            raise RuntimeError(f"{self.name}: OpenVINO compiled {path} for {used}, asked for {self.precision_hint}")

    def load(self, artifact, batch_size: int) -> "OpenVinoRunner":
        ov = _ov()
        path = os.fspath(artifact)
        if not os.path.isfile(path):
            raise ZoogateError("ONNX file not found", path)
        core = ov.Core()
        try:
            model = core.read_model(path)
        except Exception as exc:       # OpenVINO raises RuntimeError subclasses of its own
            raise ZoogateError(f"OpenVINO cannot read it: {exc}", path) from None
        if len(model.inputs) != 1:
            raise ZoogateError(f"expected one image input, the graph has {len(model.inputs)}", path)
        shape = model.inputs[0].get_partial_shape()
        if shape.rank.is_static and shape[0].is_static:
            if shape[0].get_length() != batch_size:
                raise ZoogateError(f"graph has a fixed batch of {shape[0]}, asked for batch size {batch_size}", path)
            self.static_batch = True
        self.compiled = core.compile_model(model, "CPU", self.config)
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")   # an openvino.Type
        used = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
        self.inference_precision = used
        self._check_precision(used, path)
        self.request = self.compiled.create_infer_request()
        out_shape = model.outputs[0].get_partial_shape()
        self.background_class = out_shape.rank.is_static and out_shape[-1].is_static \
            and out_shape[-1].get_length() == 1001
        self.batch_size = batch_size
        self.path = self.artifact_path = path
        self.artifact_id = file_digest(path)
        return self

    @property
    def build_options(self) -> dict:
        # the compiled precision is part of what the build computes
        return {"inference_precision": self.inference_precision or self.precision_hint or "default"}

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        self.request.infer({0: batch})
        return self.request.get_output_tensor(0).data.copy()

    def intermediate_outputs(self, marked, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Every tensor of ``marked`` (an ONNX ModelProto with all of them as outputs) computed by OpenVINO with
        this runner's compile config, so a bisect sees the precision OpenVINO really uses."""
        import tempfile

        core = _ov().Core()
        with tempfile.TemporaryDirectory(prefix="zoogate-ov-bisect-") as tmp:
            path = os.path.join(tmp, "marked.onnx")
            with open(path, "wb") as fh:
                fh.write(marked.SerializeToString())
            compiled = core.compile_model(core.read_model(path), "CPU", self.config)
        request = compiled.create_infer_request()
        request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        tensors: dict[str, np.ndarray] = {}
        for i, port in enumerate(compiled.outputs):
            data = request.get_output_tensor(i).data.copy()
            for name in port.get_names():
                tensors[name] = data
        return tensors

    def close(self) -> None:
        self.request = None
        self.compiled = None


class OpenVinoDefaultPrecisionRunner(OpenVinoRunner):
    """OpenVINO's default precision: bf16 where the CPU has it, else f32 (both within tolerance bf16)."""

    name = "openvino-bf16"
    precision = "bf16"
    precision_hint = None
    agreement_tolerance = "bf16"

    def _check_precision(self, used: str, path: str) -> None:
        if used not in ("bf16", "f32"):
            raise RuntimeError(f"{self.name}: OpenVINO compiled {path} for {used}; expected bf16 (or f32 on a CPU "
                               f"without BF16)")


class OpenVinoInt8Runner(int8.Int8Build, OpenVinoRunner):
    """OpenVINO on the int8 QDQ build (zoogate.int8, the same build as onnxruntime-int8): OpenVINO runs the
    quantised ops in int8 (VNNI / AMX where the CPU has them) and the rest in f32 (the hint), as ONNX Runtime does."""

    name = "openvino-int8"
    options = {**_OPTIONS, **int8.RUNNER_OPTIONS}

    def __init__(self, device_id: int = 0, inference_num_threads: int | None = None,
                 num_streams: int | None = None, **options) -> None:
        super().__init__(device_id, inference_num_threads, num_streams)
        self.int8 = int8.Int8Options.of(options)


def _faults():
    from zoogate.faults import Fault, fp32_agreement, primary_onnx

    def gated_as(runner_cls):
        def run():
            from zoogate.bisect import attach_to_runner
            from zoogate.faults_primary import PrimaryModel, scratch

            runner = runner_cls().load(primary_onnx(), 4)
            try:   # gated as fp32: the bisect names the first tensor beyond the fp32 tolerance on OpenVINO
                return attach_to_runner(fp32_agreement(runner, runner_cls.name), runner, primary_onnx(),
                                        PrimaryModel.images(), precision="fp32", out_dir=scratch("bisect-"))
            finally:
                runner.close()
        return run

    return [Fault("openvino-bf16-gated-as-fp32", "OpenVINO's default (bf16 on this CPU) precision gated as an fp32 "
                  "build", "agreement", "logits", gated_as(OpenVinoDefaultPrecisionRunner), gated_as(OpenVinoRunner),
                  bisected=True)]


BACKEND = Backend("openvino", runners=(OpenVinoRunner, OpenVinoDefaultPrecisionRunner, OpenVinoInt8Runner),
                  faults=_faults)
