"""int8 builds on the CPU: ONNX Runtime's static quantisation of an fp32 export, calibrated on a calibration
set, cached by everything that decides the build.

The recipe: ``quant_pre_process`` (shape inference and ONNX Runtime's graph optimisations), then
``quantize_static`` with QDQ nodes, int8 weights quantised per output channel, uint8 activations per tensor
(ONNX Runtime's fast x86 path, U8S8: measured 1.5x the fp32 speed of iresnet50 here, where int8 activations,
S8S8, ran at 0.9x), activation ranges from the calibration method:

- ``percentile``: the 99.999th percentile of each tensor's absolute values, as vamc's int8-percentile builds
  (``calibrate_mode: percentile`` in the model zoo's build yamls);
- ``minmax``: each tensor's observed min and max;
- ``entropy``: the KL-divergence threshold of TensorRT's calibrator.

``keep_float="classifier"`` (the default) leaves the final classifier (the last Gemm or MatMul) in float, as
vendor toolchains commonly keep the last layer; ``"none"`` quantises it too. Measured on calibrated iresnet50:
with the classifier quantised, images whose features lie beyond the calibrated range come back with logits
off by up to 27 (classifier input clipped); kept in float, the largest error is 8.

A calibration set (``CalibrationSet``) is float32 NCHW tensors through the model's reference preprocessing
with a fingerprint: read from a folder ``zoogate calib`` wrote (any of its formats, ``from_folder``), or made
from a labelled set's chosen images (``from_images``). A build is cached under ``<cache>/int8/`` keyed by the
source model's sha256, the calibration fingerprint, the method, ``keep_float``, the recipe and the
onnxruntime version; a changed calibration set or export is another build.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoogate.errors import ZoogateError

METHODS = ("percentile", "minmax", "entropy")
DEFAULT_METHOD = "percentile"
KEEP_FLOAT = ("classifier", "none")
PERCENTILE = 99.999                # vamc's and ONNX Runtime's default for percentile calibration
RECIPE = {"format": "QDQ", "per_channel": True, "weights": "int8", "activations": "uint8",
          "percentile": PERCENTILE, "pre_process": "quant_pre_process", "version": 1}
CALIBRATION_BATCH = 1             # ONNX Runtime's histogram calibrators stack batches: every one the same size


@dataclass(frozen=True)
class CalibrationSet:
    """What an int8 build is calibrated on: float32 (N, 3, S, S) model inputs and what identifies them."""

    tensors: np.ndarray
    fingerprint: str
    description: str

    def __len__(self) -> int:
        return len(self.tensors)


def from_images(images, spec, fingerprint: str, description: str, pipeline=None) -> CalibrationSet:
    """A calibration set of PIL images through the model's reference preprocessing (or ``pipeline``, a
    callable image -> float32 CHW, for a calibration flow that preprocesses otherwise)."""
    from zoogate.preprocess.fast import FastPipeline

    pipeline = pipeline or FastPipeline(spec)
    tensors = np.stack([pipeline(im) for im in images]).astype(np.float32) if images else \
        np.zeros((0, 3, spec.crop, spec.crop), np.float32)
    return CalibrationSet(tensors, fingerprint, description)


def from_folder(folder: str | os.PathLike, spec) -> CalibrationSet:
    """The calibration set ``zoogate calib`` wrote to ``folder`` (its calib_manifest.json names the files).

    jpg and npz (image2npz, the original image) go through the model's reference preprocessing; bin / npy
    hold preprocessed tensors, accepted only when the manifest's preprocessing is this model's.
    """
    from zoogate import calib
    from zoogate.images import open_rgb
    from zoogate.preprocess import prepared

    folder = Path(folder)
    path = folder / calib.MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        fmt, files, fingerprint = manifest["format"], [f["file"] for f in manifest["files"]], manifest["fingerprint"]
    except FileNotFoundError:
        raise ZoogateError(f"no {calib.MANIFEST}: pass a folder written by zoogate calib", folder) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ZoogateError(f"not a zoogate calib manifest ({type(exc).__name__}: {exc})", path) from None
    if fmt not in calib.FORMATS or not files:
        raise ZoogateError(f"format {fmt!r} with {len(files)} file(s): nothing to calibrate on", path)
    if fmt in ("bin", "npy") and manifest.get("preprocessing") != spec.describe():
        raise ZoogateError(f"these {fmt} tensors were made with {manifest.get('preprocessing')!r}, the model's "
                           f"preprocessing is {spec.describe()!r}: write the set again with --model", path)
    images, tensors = [], []
    for name in files:
        file = folder / name
        if not file.is_file():
            raise ZoogateError(f"the manifest names {name}, which is missing", folder)
        if fmt == "jpg":
            images.append(open_rgb(file))
            continue
        arr = prepared.read(prepared.Prepared(file, file, fmt), spec.crop)
        if fmt == "npz":
            from PIL import Image

            images.append(Image.fromarray(np.ascontiguousarray(arr.transpose(1, 2, 0)), "RGB"))
        elif arr.shape != (3, spec.crop, spec.crop):
            raise ZoogateError(f"tensor of shape {list(arr.shape)}, the model takes [3, {spec.crop}, {spec.crop}]",
                               file)
        else:
            tensors.append(np.asarray(arr, dtype=np.float32))
    described = f"{len(files)} {fmt} files of {manifest.get('classes', '?')} classes from {folder}"
    if images:
        return from_images(images, spec, f"{fingerprint}:{spec.describe()}", described)
    return CalibrationSet(np.stack(tensors), fingerprint, described)


def classifier_nodes(model) -> list[str]:
    """The node that produces the graph's first output through a Gemm or MatMul: the classifier."""
    producers = {out: node for node in model.graph.node for out in node.output}
    node = producers.get(model.graph.output[0].name)
    seen = set()
    while node is not None and node.name not in seen:
        if node.op_type in ("Gemm", "MatMul"):
            return [node.name]
        seen.add(node.name)
        node = next((producers[i] for i in node.input if i in producers), None)
    return []


def build_parts(source: Path, calibration: CalibrationSet, method: str, keep_float: str) -> dict:
    import onnxruntime

    from zoogate.identity import file_digest

    return {"source_sha256": file_digest(source).removeprefix("sha256:"), "calibration": calibration.fingerprint,
            "calibration_images": len(calibration), "method": method, "keep_float": keep_float,
            "recipe": RECIPE, "onnxruntime": onnxruntime.__version__}


def check_settings(method: str, keep_float: str) -> None:
    if method not in METHODS:
        raise ZoogateError(f"int8 calibration method {method!r}: one of {', '.join(METHODS)}")
    if keep_float not in KEEP_FLOAT:
        raise ZoogateError(f"keep_float={keep_float!r}: one of {', '.join(KEEP_FLOAT)}")


def build(source: str | os.PathLike, calibration: CalibrationSet, *, method: str = DEFAULT_METHOD,
          keep_float: str = "classifier", label: str = "") -> Path:
    """The int8 QDQ build of the fp32 ONNX model ``source`` calibrated on ``calibration`` (cached)."""
    from zoogate import cache

    check_settings(method, keep_float)
    source = Path(source)
    if not source.is_file():
        raise ZoogateError("ONNX model not found", source)
    if len(calibration) == 0:
        raise ZoogateError(f"empty calibration set ({calibration.description})")
    parts = build_parts(source, calibration, method, keep_float)
    path, _hit = cache.cached("int8", parts, ".onnx", lambda tmp: _quantise(source, calibration, method,
                                                                           keep_float, tmp),
                              label=label or f"{source.stem}-{method}")
    return path


def _quantise(source: Path, calibration: CalibrationSet, method: str, keep_float: str, out: Path) -> None:
    import contextlib
    import io
    import logging

    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"percentile": CalibrationMethod.Percentile, "minmax": CalibrationMethod.MinMax,
               "entropy": CalibrationMethod.Entropy}
    with tempfile.TemporaryDirectory(prefix="zoogate-int8-") as tmp:
        prepared = os.path.join(tmp, "prepared.onnx")
        try:
            quant_pre_process(str(source), prepared)
            model = onnx.load(prepared)
        except Exception as exc:       # onnx / onnxruntime raise their own types for graphs they cannot take
            raise ZoogateError(f"cannot prepare it for quantisation: {exc}", source) from None
        graph_input = model.graph.input[0]
        dims = graph_input.type.tensor_type.shape.dim
        fixed = dims[0].dim_value if dims and dims[0].HasField("dim_value") else 0
        step = fixed or CALIBRATION_BATCH
        batches = [calibration.tensors[i:i + step] for i in range(0, len(calibration), step)]
        if fixed:               # a fixed-batch graph takes exactly that many images: pad the last batch
            from hardware.base import pad_to_batch

            batches = [pad_to_batch(b, fixed)[0] for b in batches]

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._feeds = iter({graph_input.name: np.ascontiguousarray(b)} for b in batches)

            def get_next(self):
                return next(self._feeds, None)

        exclude = classifier_nodes(model) if keep_float == "classifier" else []
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)      # the quantiser logs a warning for every 1-d weight it skips
        try:
            with contextlib.redirect_stdout(io.StringIO()):    # its calibrators print their progress
                quantize_static(prepared, str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=methods[method], nodes_to_exclude=exclude,
                                extra_options={"CalibPercentile": PERCENTILE},
                                calibration_providers=["CPUExecutionProvider"])
        finally:
            root.setLevel(level)


# ---------------------------------------------------------------- what an int8 runner declares and builds

# the runner options of every int8 runner (``--runner onnxruntime-int8:calib=DIR,method=minmax``)
RUNNER_OPTIONS = {"calib": "a folder written by zoogate calib (default: 32 generated images, class-balanced)",
                  "method": "calibration method: percentile (default, as vamc's int8-percentile), minmax, entropy",
                  "keep_float": "classifier (default: the last Gemm/MatMul stays float) or none"}

@dataclass(frozen=True)
class Int8Options:
    """The int8 runner options, checked."""

    calib: str | None = None
    method: str = DEFAULT_METHOD
    keep_float: str = "classifier"

    @classmethod
    def of(cls, options: dict) -> "Int8Options":
        made = cls(options.get("calib") or None, options.get("method") or DEFAULT_METHOD,
                   options.get("keep_float") or "classifier")
        check_settings(made.method, made.keep_float)
        return made

    def as_build_options(self) -> dict:
        return {"method": self.method, "keep_float": self.keep_float, "calib": self.calib or "generated"}


class Int8Build:
    """What an int8 runner declares and loads (its precision, artifact and build options), mixed in before its backend's Runner class:
    ``class OnnxRuntimeInt8Runner(int8.Int8Build, OnnxRuntimeRunner)``; its __init__ sets
    ``self.int8 = Int8Options.of(options)`` from the runner options."""

    precision = "int8"
    int8: Int8Options

    @classmethod
    def artifact(cls, request) -> Path:
        return artifact(request)

    @property
    def build_options(self) -> dict:
        return {**super().build_options, **self.int8.as_build_options()}


def artifact(request) -> Path:
    """What an int8 runner loads for a hardware.artifacts.ArtifactRequest: the int8 build of the request's fp32
    ONNX (our export, or --onnx) on the calibration set its options name (default: generated)."""
    from zoogate import baselines

    options = Int8Options.of(request.options)
    source = request.onnx()
    if options.calib:
        calibration = from_folder(options.calib, baselines.model(request.model).preprocess)
    else:
        calibration = generated_calibration(request.module())
    return build(source, calibration, method=options.method, keep_float=options.keep_float,
                 label=f"{request.model}-{options.method}")


# ---------------------------------------------------------------- the default calibration set

# Without --runner onnxruntime-int8:calib=DIR: generated images labelled by the fp32 reference (no margin:
# calibration needs labels for class balance only), `images` of them chosen class-balanced by zoogate calib
# from twice as many, written as jpg and read back like a user's folder.
GENERATED_CALIBRATION = {"images": 32, "source_images": 64, "seed": 555_000}
_generated: dict[tuple, CalibrationSet] = {}


def generated_calibration_source(loaded, root: Path):
    """The labelled generated images the default calibration set is chosen from, written under ``root``."""
    from zoogate.generated_set import generated_set_for

    return generated_set_for(root, loaded, GENERATED_CALIBRATION["source_images"],
                             seed=GENERATED_CALIBRATION["seed"], margin=0.0).dataset


def default_choice(source) -> list[int]:
    """The images of ``source`` the default calibration set takes: class-balanced, as zoogate calib chooses."""
    from zoogate import calib

    return calib.choose(source, count=GENERATED_CALIBRATION["images"], seed=calib.CALIB_SEED, only_present=True)


def generated_calibration(loaded) -> CalibrationSet:
    """The default calibration set of ``loaded`` (a zoogate.weights.LoadedModel), memoised per weights."""
    from zoogate import calib

    key = (loaded.name, loaded.weights_identity)
    if key not in _generated:
        with tempfile.TemporaryDirectory(prefix="zoogate-calib-") as tmp:
            source = generated_calibration_source(loaded, Path(tmp) / "source")
            chosen = default_choice(source)
            calib.write(source, Path(tmp) / "calib", chosen, fmt="jpg")
            _generated[key] = from_folder(Path(tmp) / "calib", loaded.baseline.preprocess)
    return _generated[key]
