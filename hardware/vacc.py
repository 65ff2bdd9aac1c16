"""Vastai VACC runner: VastStreamX (``import vaststreamx as vsx``) with on-device preprocessing (vdsp_params).

API used (see ../shared/reference/hardware.md, "Vastai VACC"): ``vsx.set_device(id) == 0``;
``vsx.Model(prefix, batch_size)``; ``vsx.ModelOperator(model)``;
``vsx.Operator.load_ops_from_json_file(vdsp_json)``; ``vsx.Graph(GraphOutputType.GRAPH_OUTPUT_TYPE_NCHW_HOST)``
+ ``add_operators(*pre, op)``; ``vsx.Stream(graph, StreamBalanceMode.RUN)``, ``register_operator_output(op)``,
``build()``; ``vsx.create_image(chw_uint8, ImageFormat.RGB_PLANAR, w, h, device_id)``;
``stream.run_sync(images)``; ``vsx.as_numpy(out)`` is float16 -> returned as float32.

Two ways in, both through the vdsp path:
- ``infer_images(images)``: uint8 RGB pictures at their original size; the build's vdsp_params do
  resize / crop / normalise on the card (what the model zoo measured, its own geometry included).
- ``infer(batch)`` (the Runner contract: normalised float32 NCHW at the model's input size): the
  normalisation is reversed to uint8 pixels (rounding: at most 0.5/255/std in normalised units) and
  run through a derived vdsp config with the same normalisation and an identity geometry (resize to
  the input size, crop at 0,0). [inferred: that such a config is a no-op resize on the card.]

The build has a static batch: each run gets exactly batch_size images (the tail padded, then dropped).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from hardware.artifacts import VaccArtifact
from hardware.base import Runner
from zoogate import detect
from zoogate.errors import ZoogateError

_SUPPORTED_NORM = "DIV255_MINUSMEAN_DIVSTD"


def read_vdsp_params(path: str | os.PathLike) -> dict:
    """The fusion op's OpConfig from a vdsp_params JSON (one op, or a list of ops)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ZoogateError(f"cannot read vdsp params: {exc.strerror}", path) from None
    except json.JSONDecodeError as exc:
        raise ZoogateError(f"vdsp params are not valid JSON: {exc}", path) from None
    ops = data if isinstance(data, list) else [data]
    for op in ops:
        cfg = op.get("OpConfig") if isinstance(op, dict) else None
        if isinstance(cfg, dict) and "Mean" in cfg and "Std" in cfg:
            for key in ("OimageWidth", "OimageHeight"):
                if not isinstance(cfg.get(key), int) or cfg[key] <= 0:
                    raise ZoogateError(f"OpConfig.{key}: expected a positive integer, got {cfg.get(key)!r}", path)
            for key in ("Mean", "Std"):
                vals = cfg[key]
                if not (isinstance(vals, list) and len(vals) == 3 and all(isinstance(v, (int, float)) for v in vals)):
                    raise ZoogateError(f"OpConfig.{key}: expected 3 numbers, got {vals!r}", path)
            if not all(v > 0 for v in cfg["Std"]):
                raise ZoogateError(f"OpConfig.Std: every value must be > 0, got {cfg['Std']!r}", path)
            return {"op": op, "config": cfg}
    raise ZoogateError("no operator with an OpConfig holding Mean and Std (expected the "
                       "FUSION_OP_RGB_RESIZE_CVTCOLOR_CROP_NORM_TENSOR format)", path)


def to_chw_uint8(image) -> np.ndarray:
    """A PIL image, or a uint8 array CHW (image2npz's layout) or HWC, as contiguous uint8 CHW RGB."""
    if hasattr(image, "convert"):
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3:
        raise ValueError(f"expected a uint8 RGB picture, got {arr.dtype} of shape {arr.shape}")
    if arr.shape[0] != 3 and arr.shape[-1] == 3:
        arr = arr.transpose(2, 0, 1)
    if arr.shape[0] != 3:
        raise ValueError(f"expected 3 channels (CHW or HWC), got shape {arr.shape}")
    return np.ascontiguousarray(arr)


class VaccRunner(Runner):
    name = "vacc"
    marker = "vacc"
    artifact_suffix = ""          # a model prefix (directory/model), not a single file
    static_batch = True
    precision = "fp16"

    def __init__(self, device_id: int = 0, precision: str = "fp16") -> None:
        super().__init__()
        self.device_id = device_id
        self.precision = precision
        self._vsx = None
        self._streams: dict[str, tuple] = {}      # "images" / "tensor" -> (stream, model_op)
        self._tmp = None

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return detect.vacc()

    def load(self, artifact, batch_size: int) -> "VaccRunner":
        if isinstance(artifact, VaccArtifact):
            prefix, vdsp = artifact.prefix, artifact.vdsp_params
            self.precision = artifact.precision
        else:
            prefix, vdsp = artifact
        prefix, vdsp = Path(prefix), Path(vdsp)
        if not any(prefix.parent.glob(prefix.name + ".*")):
            raise ZoogateError(f"no VACC build files {prefix.name}.* in {prefix.parent}", prefix)
        self.vdsp = read_vdsp_params(vdsp)
        cfg = self.vdsp["config"]
        if cfg.get("NormaType", _SUPPORTED_NORM) != _SUPPORTED_NORM:
            self._norm_problem = f"NormaType {cfg.get('NormaType')!r} (tensor path supports {_SUPPORTED_NORM})"
        else:
            self._norm_problem = None
        import vaststreamx as vsx      # vendor SDK: imported only here

        ret = vsx.set_device(self.device_id)
        if ret != 0:
            raise RuntimeError(f"{self.name}: vsx.set_device({self.device_id}) returned {ret} (no such card?)")
        self._vsx = vsx
        self.model = vsx.Model(os.fspath(prefix), batch_size)
        self.prefix, self.vdsp_path, self.batch_size = prefix, vdsp, batch_size
        self.input_hw = (cfg["OimageHeight"], cfg["OimageWidth"])
        return self

    # -- streams ---------------------------------------------------------------------------------
    def _stream(self, kind: str):
        if kind not in self._streams:
            vsx = self._vsx
            if vsx is None:
                raise RuntimeError(f"{self.name}: load() the build before running it")
            json_path = self.vdsp_path if kind == "images" else self._identity_vdsp()
            model_op = vsx.ModelOperator(self.model)
            pre = vsx.Operator.load_ops_from_json_file(os.fspath(json_path))
            if not pre:
                raise ZoogateError("vsx.Operator.load_ops_from_json_file returned no operators", json_path)
            graph = vsx.Graph(vsx.GraphOutputType.GRAPH_OUTPUT_TYPE_NCHW_HOST)
            graph.add_operators(*pre, model_op)
            stream = vsx.Stream(graph, vsx.StreamBalanceMode.RUN)
            stream.register_operator_output(model_op)
            stream.build()
            self._streams[kind] = (stream, model_op)
        return self._streams[kind][0]

    def _identity_vdsp(self) -> Path:
        """The build's vdsp op with resize = input size and crop at (0, 0): normalisation only."""
        op = copy.deepcopy(self.vdsp["op"])
        cfg = op["OpConfig"]
        h, w = self.input_hw
        cfg.update({"ResizeWidth": w, "ResizeHeight": h, "CropX": 0, "CropY": 0})
        self._tmp = self._tmp or tempfile.TemporaryDirectory(prefix="zoogate-vacc-")
        path = Path(self._tmp.name) / "identity-vdsp_params.json"
        path.write_text(json.dumps(op), encoding="utf-8")
        return path

    def _run(self, kind: str, pictures: list[np.ndarray]) -> np.ndarray:
        """Exactly batch_size uint8 CHW pictures -> (batch_size, C) float32."""
        vsx = self._vsx
        stream = self._stream(kind)
        images = [vsx.create_image(p, vsx.ImageFormat.RGB_PLANAR, p.shape[2], p.shape[1], self.device_id)
                  for p in pictures]
        outputs = stream.run_sync(images)
        rows = [np.asarray(vsx.as_numpy(out[0])).astype(np.float32).reshape(-1) for out in outputs]
        return np.stack(rows)

    # -- the two ways in ---------------------------------------------------------------------------
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        if self._norm_problem:
            raise ZoogateError(f"cannot feed normalised tensors through this build's vdsp params: "
                               f"{self._norm_problem}; use infer_images()", self.vdsp_path)
        if tuple(batch.shape[1:]) != (3, *self.input_hw):
            raise ValueError(f"{self.name}: the build takes images [3, {self.input_hw[0]}, {self.input_hw[1]}] "
                             f"(its vdsp Oimage size), got images {list(batch.shape[1:])}")
        cfg = self.vdsp["config"]
        mean = np.asarray(cfg["Mean"], np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(cfg["Std"], np.float32).reshape(1, 3, 1, 1)
        pixels = np.clip(np.rint((batch * std + mean) * 255.0), 0, 255).astype(np.uint8)
        return self._run("tensor", [np.ascontiguousarray(p) for p in pixels])

    def infer_images(self, images) -> np.ndarray:
        """Logits (N, C) float32 for uint8 RGB pictures at their original sizes (on-card preprocessing)."""
        pictures = [to_chw_uint8(im) for im in images]
        rows = []
        for i in range(0, len(pictures), self.batch_size):
            chunk = pictures[i:i + self.batch_size]
            n = len(chunk)
            chunk = chunk + [chunk[-1]] * (self.batch_size - n)    # same padding rule as pad_to_batch
            t0 = time.perf_counter()
            rows.append(self._run("images", chunk)[:n])
            self.timing.host_s.append(time.perf_counter() - t0)
        return np.concatenate(rows, axis=0) if rows else np.zeros((0, 0), np.float32)

    def close(self) -> None:
        self._streams.clear()
        self._vsx = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

