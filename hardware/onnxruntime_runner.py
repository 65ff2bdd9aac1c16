"""ONNX Runtime runners on our ONNX export (or a user's --onnx file): CPU EP; CUDA EP (the torch
backend's `gpu` marker) and CANN EP (the Ascend backend's `ascend` marker) where the installed
onnxruntime lists them in get_available_providers().

ONNX Runtime falls back to the CPU silently when an execution provider cannot be created; these
runners check the session's providers after loading and refuse to run on a fallback, so a "CUDA"
number is never a CPU number.

CANN EP options (onnxruntime-cann): device_id, npu_mem_limit, arena_extend_strategy,
enable_cann_graph, precision_mode (force_fp32, force_fp16, allow_fp32_to_fp16,
must_keep_origin_dtype, allow_mix_precision), op_select_impl_mode (high_precision,
high_performance). They are passed through unchanged; give them as runner options, e.g.
``--runner onnxruntime-cann:precision_mode=must_keep_origin_dtype``.
"""

from __future__ import annotations

import os

import numpy as np

from hardware import ascend, torch_runner
from hardware.base import Backend, Runner
from zoogate.errors import ZoogateError
from zoogate.identity import file_digest

# precision modes that keep float32 arithmetic; anything else may compute in float16
_CANN_FP32_MODES = ("force_fp32", "must_keep_origin_dtype")


def _ort():
    import onnxruntime

    return onnxruntime


def _provider_listed(provider: str) -> tuple[bool, str]:
    try:
        ort = _ort()
    except ImportError as exc:          # pragma: no cover - onnxruntime is a dependency
        return False, f"onnxruntime not importable: {exc}"
    listed = ort.get_available_providers()
    if provider not in listed:
        return False, (f"{provider} not in onnxruntime.get_available_providers() {listed} "
                       f"(onnxruntime {ort.__version__})")
    return True, provider


THREADS_OPTION = {"intra_op_threads": "SessionOptions.intra_op_num_threads (default: onnxruntime's)"}


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"
    provider = "CPUExecutionProvider"
    bare_session = True
    # option names this provider accepts as provider options (others are rejected early)
    provider_option_names: tuple[str, ...] = ()
    options = THREADS_OPTION

    def __init__(self, device_id: int = 0, intra_op_threads: int | None = None, **provider_options) -> None:
        super().__init__()
        unknown = sorted(set(provider_options) - set(self.provider_option_names))
        if unknown:
            raise TypeError(f"{self.name}: unknown option(s) {unknown}; "
                            f"known: {list(self.provider_option_names) or 'none'}")
        self.device_id = device_id
        self.intra_op_threads = intra_op_threads
        self.provider_options = dict(provider_options)
        self.session = None
        self.input_name: str | None = None

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return _provider_listed(cls.provider)

    @classmethod
    def artifact(cls, request):
        return request.onnx()

    def _providers(self) -> list:
        return [self.provider]

    def load(self, artifact, batch_size: int) -> "OnnxRuntimeRunner":
        ort = _ort()
        path = os.fspath(artifact)
        if not os.path.isfile(path):
            raise ZoogateError("ONNX file not found", path)
        opts = ort.SessionOptions()
        if self.intra_op_threads:
            opts.intra_op_num_threads = self.intra_op_threads
        try:
            session = ort.InferenceSession(path, sess_options=opts, providers=self._providers())
        except Exception as exc:   # onnxruntime raises its own Fail/InvalidGraph types
            raise ZoogateError(f"onnxruntime cannot load it: {exc}", path) from None
        used = session.get_providers()
        if not used or used[0] != self.provider:
            raise RuntimeError(f"{self.name}: onnxruntime fell back to {used} instead of {self.provider} "
                               f"for {path}; refusing to report fallback results as {self.name}")
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ZoogateError(f"expected one image input, the graph has {[i.name for i in inputs]}", path)
        first_dim = inputs[0].shape[0] if inputs[0].shape else None
        if isinstance(first_dim, int):       # exported with a fixed batch: behave like a static artifact
            if first_dim != batch_size:
                raise ZoogateError(f"graph has a fixed batch of {first_dim}, asked for batch size {batch_size}", path)
            self.static_batch = True
        out_shape = session.get_outputs()[0].shape
        self.background_class = bool(out_shape) and out_shape[-1] == 1001
        self.session, self.input_name, self.batch_size = session, inputs[0].name, batch_size
        self.path = self.artifact_path = path
        self.artifact_id = file_digest(path)
        return self

    @property
    def build_options(self) -> dict:
        return dict(self.provider_options)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]

    def close(self) -> None:
        self.session = None


class OnnxRuntimeCudaRunner(OnnxRuntimeRunner):
    name = "onnxruntime-cuda"
    marker = torch_runner.GPU.name
    provider = "CUDAExecutionProvider"
    provider_option_names = ("gpu_mem_limit", "cudnn_conv_algo_search", "arena_extend_strategy")
    options = {**THREADS_OPTION, **{n: "CUDA EP provider option" for n in provider_option_names}}

    @classmethod
    def available(cls) -> tuple[bool, str]:
        ok, why = _provider_listed(cls.provider)
        if not ok:
            return False, why + ": pip install onnxruntime-gpu"
        return torch_runner.cuda()

    def _providers(self) -> list:
        return [(self.provider, {"device_id": self.device_id, **self.provider_options}), "CPUExecutionProvider"]


class OnnxRuntimeCannRunner(OnnxRuntimeRunner):
    name = "onnxruntime-cann"
    marker = ascend.ASCEND.name
    provider = "CANNExecutionProvider"
    provider_option_names = ("npu_mem_limit", "arena_extend_strategy", "enable_cann_graph",
                             "precision_mode", "op_select_impl_mode", "optypelist_for_implmode")
    options = {**THREADS_OPTION, **{n: "CANN EP provider option" for n in provider_option_names},
               "precision_mode": f"CANN EP precision mode; {' / '.join(_CANN_FP32_MODES)} keep float32 (tolerance "
                                 f"fp32_cross_backend), any other is gated as fp16"}

    @property
    def precision(self) -> str:        # type: ignore[override]
        mode = self.provider_options.get("precision_mode")
        return "fp32" if mode in _CANN_FP32_MODES else "fp16"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        ok, why = ascend.device()
        if not ok:
            return ok, why
        ok, why = _provider_listed(cls.provider)
        if not ok:
            return False, why + ": pip install onnxruntime-cann and source CANN's set_env.sh"
        return True, cls.provider

    def _providers(self) -> list:
        return [(self.provider, {"device_id": self.device_id, **self.provider_options}), "CPUExecutionProvider"]


BACKEND = Backend("onnxruntime", runners=(OnnxRuntimeRunner, OnnxRuntimeCudaRunner, OnnxRuntimeCannRunner))
