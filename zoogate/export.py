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
import tempfile
import warnings
from pathlib import Path

import torch

from zoogate import baselines, cache
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
            largest = int(baselines.tolerance("max_batch_size").value)
            shapes = ({0: torch.export.Dim("batch", min=1, max=largest)},) if batch == "dynamic" else None
            program = torch.onnx.export(module, (example,), dynamo=True, opset_version=opset,
                                        input_names=[input_name], output_names=[output_name],
                                        dynamic_shapes=shapes, verbose=False)
            program.save(str(out))
    import onnx

    try:
        onnx.checker.check_model(str(out), full_check=True)
    except onnx.checker.ValidationError as exc:
        why = " ".join(str(exc).split())[:300]
        raise ZoogateError(f"onnx.checker rejected the fresh {exporter} export of {loaded.name} (opset {opset}); "
                           f"nothing was cached: {why}", out.parent) from None


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
    check_opset(opset)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, weights)
    opset = DEFAULT_OPSET[exporter] if opset is None else opset
    parts = export_parts(loaded, exporter, opset, batch, input_name, output_name)
    try:
        path, _ = cache.cached("onnx", parts, ".onnx",
                               lambda tmp: _export(loaded, tmp, exporter, opset, batch, input_name, output_name),
                               label=f"{loaded.name}-{exporter}")
    except RuntimeError as exc:
        if "Unsupported onnx_opset_version" not in str(exc):
            raise
        raise ZoogateError(f"--opset {opset}: the {exporter} exporter does not support it "
                           f"(default {DEFAULT_OPSET[exporter]})") from None
    if out is not None:
        return copy_export(path, out, overwrite=True)
    return path


def check_opset(opset: int | None) -> None:
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if opset is not None and (isinstance(opset, bool) or not 1 <= opset <= newest):
        raise ZoogateError(f"--opset must be an ONNX opset version from 1 to {newest} (this onnx), got {opset}")


def copy_export(path: Path, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Copy a cached export to `out` by way of a temp file beside it and os.replace, so that the cache is
    never written through (`out` being the cached file, or a link to it) and no half file is left."""
    out = Path(out)
    if out.exists() and os.path.samefile(out, path):
        raise ZoogateError("--out is the cached export itself; write the copy outside the cache", out)
    if out.exists() and not overwrite:
        raise ZoogateError("--out exists; pass --overwrite to replace it, or choose another file", out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise ZoogateError(f"--out: cannot write there: {exc.strerror or exc}", out) from None
    try:
        shutil.copyfile(path, tmp)
        os.chmod(tmp, cache.new_file_mode(out.parent))      # a plain new file's mode, not the cache's
        os.replace(tmp, out)
    except OSError as exc:
        raise ZoogateError(f"--out: cannot write: {exc.strerror or exc}", out) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
