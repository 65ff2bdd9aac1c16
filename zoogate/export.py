"""PyTorch -> ONNX export, as labs feed ATC / vamc: input `image`, output `class` (configurable).

Two exporters: "torchscript" (torch.onnx.export dynamo=False, the path the model-zoo scripts use) and
"dynamo" (torch.export based). Exports are cached on disk keyed by model, weights, exporter, opset,
batch mode, I/O names and library versions (and the architecture a checkpoint was loaded into);
onnx.checker runs on every fresh export.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import warnings
from pathlib import Path

import onnx
import torch

from zoogate import cache
from zoogate.errors import ZoogateError
from zoogate.weights import LoadedModel, load_model

EXPORTERS = ("torchscript", "dynamo")
DEFAULT_OPSET = {"torchscript": 17, "dynamo": 18}


def _export(loaded: LoadedModel, out: Path, exporter: str, opset: int, batch: str | int,
            input_name: str, output_name: str) -> None:
    mb = loaded.baseline
    example_bs = 2 if batch == "dynamic" else int(batch)
    example = torch.zeros(example_bs, 3, mb.input_size, mb.input_size)
    module = loaded.module.eval()
    quiet = contextlib.redirect_stdout(io.StringIO())
    with warnings.catch_warnings(), quiet, torch.no_grad():
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            axes = {input_name: {0: "batch"}, output_name: {0: "batch"}} if batch == "dynamic" else None
            torch.onnx.export(module, (example,), str(out), dynamo=False, opset_version=opset,
                              input_names=[input_name], output_names=[output_name], dynamic_axes=axes,
                              do_constant_folding=True)
        else:
            shapes = ({0: torch.export.Dim("batch", min=1, max=1024)},) if batch == "dynamic" else None
            program = torch.onnx.export(module, (example,), dynamo=True, opset_version=opset,
                                        input_names=[input_name], output_names=[output_name],
                                        dynamic_shapes=shapes, verbose=False)
            program.save(str(out))
    onnx.checker.check_model(str(out), full_check=True)


def export_parts(loaded: LoadedModel, exporter: str, opset: int, batch: str | int, input_name: str,
                 output_name: str) -> dict:
    """What decides an export's bytes (its cache key)."""
    parts = {"weights": loaded.weights_id, "exporter": exporter, "opset": opset,
             "batch": str(batch), "io": [input_name, output_name], **cache.versions()}
    if not loaded.calibrated:     # a checkpoint's digest does not say which architecture it was loaded into
        parts["architecture"] = [loaded.baseline.builder.split(".")[0], loaded.baseline.num_classes]
    return parts


def export_onnx(model: str | LoadedModel, out: str | os.PathLike | None = None, *, exporter: str = "torchscript",
                opset: int | None = None, batch: str | int = "dynamic", input_name: str = "image",
                output_name: str = "class", weights: str | os.PathLike | None = None) -> Path:
    """Export (or fetch from cache) and return the ONNX path; with ``out``, also copy it there."""
    if exporter not in EXPORTERS:
        raise ZoogateError(f"unknown exporter {exporter!r}; choose one of {EXPORTERS}")
    if batch != "dynamic" and not (isinstance(batch, int) or str(batch).isdigit()):
        raise ZoogateError(f"--batch must be 'dynamic' or a positive integer, got {batch!r}")
    loaded = model if isinstance(model, LoadedModel) else load_model(model, weights)
    opset = opset or DEFAULT_OPSET[exporter]
    parts = export_parts(loaded, exporter, opset, batch, input_name, output_name)
    path, _ = cache.cached("onnx", parts, ".onnx",
                           lambda tmp: _export(loaded, tmp, exporter, opset, batch, input_name, output_name),
                           label=f"{loaded.name}-{exporter}")
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)
        return out
    return path
