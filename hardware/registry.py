"""Runner name -> class, each with the pytest marker its tests carry.

A runner spec is ``NAME`` or ``NAME:key=value,key=value`` (runner options, e.g.
``onnxruntime-cann:precision_mode=must_keep_origin_dtype,op_select_impl_mode=high_precision`` or
``vacc:precision=int8``). Classes are imported on first use so that nothing here pulls in torch,
onnxruntime or a vendor SDK at import time.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from zoogate.errors import ZoogateError

# name -> (module, class, marker). Order = order of test parameters.
_RUNNERS: dict[str, tuple[str, str, str | None]] = {
    "torch": ("hardware.torch_runner", "TorchRunner", None),
    "onnxruntime": ("hardware.onnxruntime_runner", "OnnxRuntimeRunner", None),
    "torch-cuda": ("hardware.torch_runner", "TorchCudaRunner", "gpu"),
    "torch-cuda-fp16": ("hardware.torch_runner", "TorchCudaFp16Runner", "gpu"),
    "onnxruntime-cuda": ("hardware.onnxruntime_runner", "OnnxRuntimeCudaRunner", "gpu"),
    "onnxruntime-cann": ("hardware.onnxruntime_runner", "OnnxRuntimeCannRunner", "ascend"),
    "ascend": ("hardware.ascend", "AscendRunner", "ascend"),
    "vacc": ("hardware.vacc", "VaccRunner", "vacc"),
}

# what load() needs: a torch module, an ONNX file, or a compiled artifact from --model-dir
ARTIFACT_KINDS = {"torch": "module", "torch-cuda": "module", "torch-cuda-fp16": "module",
                  "onnxruntime": "onnx", "onnxruntime-cuda": "onnx", "onnxruntime-cann": "onnx",
                  "ascend": "om", "vacc": "vacc"}


@dataclass(frozen=True)
class RunnerSpec:
    name: str
    options: dict = field(default_factory=dict, hash=False, compare=True)

    @property
    def marker(self) -> str | None:
        return marker(self.name)

    @property
    def key(self) -> tuple:
        return (self.name, tuple(sorted(self.options.items())))


def names() -> list[str]:
    return list(_RUNNERS)


def marker(name: str) -> str | None:
    _check(name)
    return _RUNNERS[name][2]


def artifact_kind(name: str) -> str:
    _check(name)
    return ARTIFACT_KINDS[name]


def get(name: str):
    """The Runner class for a registry name."""
    _check(name)
    module, cls, _ = _RUNNERS[name]
    return getattr(importlib.import_module(module), cls)


def create(name: str, *, device_id: int = 0, **options):
    """An unloaded runner instance; options go to the runner (CANN provider options, precision, ...)."""
    return get(name)(device_id=device_id, **options)


def available(name: str) -> tuple[bool, str]:
    return get(name).available()


def _check(name: str) -> None:
    if name not in _RUNNERS:
        raise ZoogateError(f"unknown runner {name!r}; known: {', '.join(_RUNNERS)}")


def _value(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def parse_spec(text: str) -> RunnerSpec:
    """'NAME' or 'NAME:key=value,key=value' -> RunnerSpec (ZoogateError on an unknown name or bad option)."""
    name, _, rest = text.strip().partition(":")
    _check(name)
    options = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ZoogateError(f"runner option {item!r} in {text!r}: expected key=value")
        options[key.strip()] = _value(value.strip())
    return RunnerSpec(name, options)
