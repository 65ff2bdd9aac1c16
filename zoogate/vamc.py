"""vamc build configs (the model zoo's ``build_in/build/*.yaml``), read and checked against a model's
documented pipeline.

A build config names the build (``name:`` -> ``deploy_weights/<name>/mod.*``), the ONNX frontend and its
input shape, the backend precision and quantisation, extra graph ops (``softmax``) and, for int8, the
calibration set and the preprocessing applied to it (``dataset.process_ops``). The keys read here are the
ones the VastModelZOO build yamls carry::

    name: timm_inceptionv4_int8
    frontend: {shape: {input: [1, 3, 299, 299]}, type: onnx, checkpoint: ..., dtype: fp32}
    backend: {type: tvm_vacc, dtype: int8, quantize: {calibrate_mode: percentile, quantize_per_channel: true}}
    graph: {extra_ops: {type: softmax}}
    dataset: {path: ..., sampler: {suffix: JPEG, get_data_num: 50},
              process_ops: [DecodeImage, Resize {size: [342, 342]}, CenterCrop {crop_size: [299, 299]},
                            Normalize {mean, std}, ToTensor]}

``Resize size`` as two numbers is an exact (height, width) resize; one number (``size: 342``) resizes the
short side, keeping the aspect ratio, as torchvision's ``Resize(342)`` does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoogate.errors import ZoogateError
from zoogate.files import read_text

# model zoo build names (without the _fp16 / _int8 suffix) -> registry model
BUILD_MODELS = {
    "timm_inceptionv4": "inception_v4",
    "ppcls_inceptionv4": "inception_v4_ppcls",
    "timm_inceptionv3": "inception_v3",
    "torchvision_inceptionv3": "inception_v3_tv",
    "ppcls_inceptionv3": "inception_v3_ppcls",
    "official_iresnet": "iresnet50",
}
PRECISION_SUFFIXES = ("_int8", "_fp16", "_fp32", "_bf16")


@dataclass(frozen=True)
class ResizeOp:
    height: int
    width: int
    short_side: bool             # True: one size given, the short side is resized, aspect ratio kept


@dataclass(frozen=True)
class BuildConfig:
    path: Path
    name: str
    input_shape: tuple[int, ...]
    frontend_dtype: str
    precision: str                          # backend.dtype: fp16 / int8 / ...
    calibrate_mode: str | None
    per_channel: bool | None
    extra_ops: tuple[str, ...]
    calibration_images: int | None           # dataset.sampler.get_data_num
    calibration_path: str | None
    process_ops: tuple[dict, ...] = field(default=())

    @property
    def base_name(self) -> str:
        for suffix in PRECISION_SUFFIXES:
            if self.name.endswith(suffix):
                return self.name[: -len(suffix)]
        return self.name

    @property
    def softmax(self) -> bool:
        return "softmax" in self.extra_ops

    def op(self, kind: str) -> dict | None:
        return next((o for o in self.process_ops if o.get("type") == kind), None)

    def resize(self) -> ResizeOp | None:
        op = self.op("Resize")
        if op is None:
            return None
        size = op.get("size")
        if isinstance(size, int) and not isinstance(size, bool):
            return ResizeOp(size, size, short_side=True)
        if isinstance(size, list) and len(size) == 1 and _is_int(size[0]):
            return ResizeOp(size[0], size[0], short_side=True)
        if isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size):
            return ResizeOp(size[0], size[1], short_side=False)
        raise ZoogateError(f"dataset.process_ops Resize.size: expected a number or [height, width], got {size!r}",
                           self.path)

    def crop(self) -> tuple[int, int] | None:
        op = self.op("CenterCrop")
        if op is None:
            return None
        size = op.get("crop_size", op.get("size"))
        if _is_int(size):
            return size, size
        if isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size):
            return size[0], size[1]
        raise ZoogateError(f"dataset.process_ops CenterCrop.crop_size: expected a number or [height, width], "
                           f"got {size!r}", self.path)

    def normalize(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        op = self.op("Normalize")
        if op is None:
            return None
        mean, std = op.get("mean"), op.get("std")
        for key, value in (("mean", mean), ("std", std)):
            if not (isinstance(value, list) and len(value) == 3 and all(_is_number(v) for v in value)):
                raise ZoogateError(f"dataset.process_ops Normalize.{key}: expected three numbers, got {value!r}",
                                   self.path)
        return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _get(doc: dict, dotted: str, path: Path, kind: type | tuple, required: bool = True):
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if required:
                raise ZoogateError(f"{dotted}: missing", path)
            return None
        node = node[part]
    if node is not None and not isinstance(node, kind):
        raise ZoogateError(f"{dotted}: expected {getattr(kind, '__name__', kind)}, got {node!r}", path)
    return node


def load_build_config(path: str | os.PathLike) -> BuildConfig:
    """Parse a vamc build yaml; ZoogateError naming the file and key on anything malformed."""
    import yaml

    path = Path(path)
    text = read_text(path, "build config")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ZoogateError(f"not valid YAML{where}: {getattr(exc, 'problem', exc)}", path) from None
    if not isinstance(doc, dict):
        raise ZoogateError("not a vamc build config: expected a mapping at the top level", path)
    shape = _get(doc, "frontend.shape.input", path, list)
    if not all(_is_int(v) and v > 0 for v in shape):
        raise ZoogateError(f"frontend.shape.input: expected positive integers, got {shape!r}", path)
    extra = _get(doc, "graph.extra_ops", path, (dict, list), required=False)
    extra_list = extra if isinstance(extra, list) else [extra] if extra else []
    if not all(isinstance(e, dict) and isinstance(e.get("type"), str) for e in extra_list):
        raise ZoogateError(f"graph.extra_ops: expected ops with a type, got {extra!r}", path)
    ops = _get(doc, "dataset.process_ops", path, list, required=False) or []
    ops = [{"type": o} if isinstance(o, str) else o for o in ops]
    if not all(isinstance(o, dict) and isinstance(o.get("type"), str) for o in ops):
        raise ZoogateError("dataset.process_ops: every op needs a type", path)
    count = _get(doc, "dataset.sampler.get_data_num", path, int, required=False)
    return BuildConfig(
        path=path, name=_get(doc, "name", path, str), input_shape=tuple(shape),
        frontend_dtype=_get(doc, "frontend.dtype", path, str, required=False) or "fp32",
        precision=_get(doc, "backend.dtype", path, str),
        calibrate_mode=_get(doc, "backend.quantize.calibrate_mode", path, str, required=False),
        per_channel=_get(doc, "backend.quantize.quantize_per_channel", path, bool, required=False),
        extra_ops=tuple(e["type"] for e in extra_list), calibration_images=count,
        calibration_path=_get(doc, "dataset.path", path, str, required=False), process_ops=tuple(ops))


def model_for(config: BuildConfig) -> str | None:
    """The registry model a model zoo build config is for, from its name (None when unknown)."""
    return BUILD_MODELS.get(config.base_name)
