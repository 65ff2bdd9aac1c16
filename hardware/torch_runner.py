"""PyTorch eager runners: CPU fp32, and CUDA fp32 / fp16 where a GPU is present (the `gpu` marker,
declared here with its CUDA detection; onnxruntime's CUDA runner carries it too).

The artifact is a torch.nn.Module (or anything with a ``.module``, e.g. zoogate.weights.LoadedModel).
CPU runs use the module as given (eval mode, never modified); CUDA runs work on a deep copy so the
caller's CPU module stays float32 on the CPU.
"""

from __future__ import annotations

import copy
import functools
import os
import sys

import numpy as np

from hardware.base import Backend, Marker, Runner
from zoogate.identity import state_dict_digest


# On Linux a GPU torch can use shows one of these: NVIDIA's driver (its /proc entry exists before the first CUDA
# call creates the /dev nodes on hosts without udev), Jetson's GPU, WSL2's GPU paravirtualisation, ROCm
GPU_DEVICE_NODES = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0", "/dev/nvhost-ctrl-gpu",
                    "/etc/nv_tegra_release", "/dev/dxg", "/dev/kfd")


def gpu_device_node() -> str | None:
    """The first GPU device node present; None where there is none. Elsewhere than Linux: not known, so ""."""
    if not sys.platform.startswith("linux"):
        return ""
    return next((node for node in GPU_DEVICE_NODES if os.path.exists(node)), None)


@functools.lru_cache(maxsize=None)
def cuda() -> tuple[bool, str]:
    """Is a CUDA GPU usable by torch here? On a Linux host without a GPU device node the answer is no, and
    torch (about a second to import) is not asked; otherwise torch is imported on the first call."""
    if gpu_device_node() is None:
        return False, f"no CUDA GPU: no GPU device node on this machine ({', '.join(GPU_DEVICE_NODES)})"
    import torch

    if not torch.cuda.is_available():
        return False, f"no CUDA GPU: torch.cuda.is_available() is False (torch {torch.__version__})"
    return True, f"CUDA: {torch.cuda.get_device_name(0)}"


def cuda_cards() -> list[int]:
    if not cuda()[0]:
        return []
    import torch

    return list(range(torch.cuda.device_count()))


GPU = Marker("gpu", "needs a CUDA GPU", detect=lambda: cuda(), device="cuda", cards=lambda: cuda_cards())


def _module_of(artifact):
    module = getattr(artifact, "module", artifact)
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"torch runner: expected a torch.nn.Module or a LoadedModel, got {type(artifact).__name__}")
    return module


def _tensor(batch: np.ndarray):
    import torch

    # zoo batches are read-only; torch.from_numpy warns on (and must not write to) those
    return torch.from_numpy(batch if batch.flags.writeable else batch.copy())


def _first_output(out):
    """Classifiers may return a tuple (logits, aux) or a namedtuple; the logits come first."""
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


class TorchRunner(Runner):
    name = "torch"
    device = "cpu"
    precision = "fp32"

    def __init__(self, device_id: int = 0, **options) -> None:
        super().__init__()
        if options:
            raise TypeError(f"{self.name}: unknown option(s) {sorted(options)}")
        self.device_id = device_id
        self.module = None

    @property
    def agreement_tolerance(self) -> str:
        # eager fp32 on the CPU against eager fp32 on the CPU: the same kernels
        if self.device == "cpu" and self.precision == "fp32":
            return "fp32_same_backend"
        return super().agreement_tolerance

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, "PyTorch CPU"

    @classmethod
    def artifact(cls, request):
        return request.module()

    def _torch_device(self):
        import torch

        return torch.device("cpu") if self.device == "cpu" else torch.device(f"cuda:{self.device_id}")

    def load(self, artifact, batch_size: int) -> "TorchRunner":
        module = _module_of(artifact)
        # a LoadedModel names its weights; a bare module is identified by its parameters' bytes
        weights = getattr(artifact, "weights_identity", None)
        if not weights:
            weights = state_dict_digest(module)
        self.artifact_id = self.weights_identity = weights
        if self.device != "cpu" or self.precision != "fp32":
            module = copy.deepcopy(module).to(self._torch_device())
            if self.precision == "fp16":
                module = module.half()
        self.module = module.eval()
        self.batch_size = batch_size
        return self

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        x = _tensor(batch).to(self._torch_device())
        if self.precision == "fp16":
            x = x.half()
        with torch.inference_mode():
            out = _first_output(self.module(x))
        return out.float().cpu().numpy()

    def close(self) -> None:
        self.module = None


class TorchCudaRunner(TorchRunner):
    """CUDA fp32; device time from CUDA events around the forward pass."""

    name = "torch-cuda"
    marker = GPU.name
    device = "cuda"
    precision = "fp32"
    reports_device_time = True

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return cuda()

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        dev = self._torch_device()
        x = _tensor(batch).to(dev)
        if self.precision == "fp16":
            x = x.half()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.inference_mode():
            start.record()
            out = _first_output(self.module(x))
            end.record()
        result = out.float().cpu().numpy()     # synchronises the stream
        self.timing.add_device(start.elapsed_time(end) / 1000.0)
        return result


class TorchCudaFp16Runner(TorchCudaRunner):
    """CUDA with the module and inputs in float16 (outputs returned as float32)."""

    name = "torch-cuda-fp16"
    precision = "fp16"


BACKEND = Backend("torch", runners=(TorchRunner, TorchCudaRunner, TorchCudaFp16Runner), markers=(GPU,))
