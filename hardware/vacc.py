"""Vastai VACC runner: VastStreamX (``import vaststreamx as vsx``) with on-device preprocessing (vdsp_params).

The calls are the ones the model zoo's common/vsx/classification.py makes, in its order:
``vsx.set_device(id) == 0``; ``vsx.Model(prefix, batch)`` (prefix = ``deploy_weights/<name>/mod``);
``vsx.Operator.load_ops_from_json_file(vdsp_json)[0]`` (the fusion op); ``vsx.Graph()``;
``vsx.ModelOperator(model)``; ``graph.add_operators(fusion_op, model_op)``;
``vsx.Stream(graph, vsx.StreamBalanceMode.ONCE)``; ``stream.register_operator_output(model_op)``;
``n, c, h, w = model.input_shape[0]`` (one NCHW shape per model input); ``stream.build()``;
``vsx.create_image(chw_uint8, vsx.ImageFormat.RGB_PLANAR, w, h, device_id)``; ``stream.run_sync(images)``;
``vsx.as_numpy(out)[0].astype(np.float32)``; and at the end ``stream.close_input()``, ``stream.wait_until_done()``.
The vdsp params are read with zoogate.preprocess.vdsp (the parser the vacc-vamp and vacc-vsx emulations use).

Two ways in, both through the vdsp path:
- ``infer_images(images)``: uint8 RGB pictures at their original size; the build's vdsp_params do
  resize / crop / normalise on the card (what the model zoo measured, its own geometry included).
- ``infer(batch)`` (the Runner contract: normalised float32 NCHW at the model's input size): the
  normalisation is reversed to uint8 pixels (rounding: at most 0.5/255/std in normalised units) and
  run through a derived vdsp config with the same normalisation and an identity geometry (input
  buffer = resize = the input size, crop at 0,0). [inferred: that such a config is a no-op resize on the card.]

Outputs: logits, or probabilities when the build config (``--runner vacc:build=FILE.yaml``) adds a
``graph.extra_ops: softmax``; ``runner.outputs`` says which, and the agreement check honours it.
The build has a static batch: each run gets exactly batch_size images (the tail padded, then dropped);
that run_sync takes a whole batch of images at once is inferred (the sample feeds one image at batch 1).

Runner options (``--runner vacc:key=value,...``): ``precision=fp16|int8`` (picks the build and the
tolerance), ``build=FILE.yaml`` (the vamc build config: its ``name:`` finds the build, its
``backend.dtype`` is the precision, its extra ops the outputs), ``vdsp_params=FILE``.

Detection (the `vacc` marker): vasmi on PATH or /dev/vastai* nodes, and vaststreamx importable (found,
not imported); cached per process.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import importlib.util
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from hardware.artifacts import VaccArtifact, find_vacc
from hardware.base import Backend, Marker, Runner
from zoogate.errors import ZoogateError
from zoogate.identity import files_digest
from zoogate.preprocess.vdsp import VdspParams, load_params

_SUPPORTED_NORM = "DIV255_MINUSMEAN_DIVSTD"


@functools.lru_cache(maxsize=None)
def device() -> tuple[bool, str]:
    """Is a VACC card with VastStreamX here?"""
    smi = shutil.which("vasmi")
    nodes = glob.glob("/dev/vastai*")
    if not (smi or nodes):
        return False, ("no VACC device: vasmi not found and no /dev/vastai* nodes "
                       "(install the Vastai driver and put vasmi on PATH)")
    if importlib.util.find_spec("vaststreamx") is None:
        return False, "VACC device present but vaststreamx not importable: install the VastStreamX wheel"
    return True, f"VACC: {smi or nodes[0]}"


def cards() -> list[int]:
    """Card indices from the /dev/vastai<N> nodes."""
    return sorted(int(m.group(1)) for p in glob.glob("/dev/vastai*") if (m := re.fullmatch(r".*vastai(\d+)", p)))


# detect through the module attribute, so a test that stands in for the device patches one name
VACC = Marker("vacc", "needs a Vastai VACC card with VastStreamX", detect=lambda: device(), npu=True,
              cards=lambda: cards())


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


def _tensor_path_problem(params: VdspParams) -> str | None:
    """Why normalised tensors cannot be turned back into the pixels this vdsp op expects (None: they can)."""
    if params.norm_type != _SUPPORTED_NORM:
        return f"NormaType {params.norm_type!r} (tensor path supports {_SUPPORTED_NORM})"
    if params.color_cvt != "NO_CHANGE":
        return f"ColorCvtCode {params.color_cvt!r} (tensor path supports NO_CHANGE)"
    return None


class VaccRunner(Runner):
    name = "vacc"
    marker = VACC.name
    static_batch = True
    precision = "fp16"
    vendor_module = "vaststreamx"
    options = {"precision": "fp16 | int8: picks the build and the agreement tolerance",
               "build": "FILE.yaml, the vamc build config (its name: finds the build; backend.dtype is the "
                        "precision; graph.extra_ops softmax makes the outputs probabilities)",
               "vdsp_params": "FILE.json, the build's vdsp params (default: found beside the build)"}

    def __init__(self, device_id: int = 0, precision: str | None = None, build: str | os.PathLike | None = None,
                 vdsp_params: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.device_id = device_id
        if precision:
            self.precision = precision
        # build and vdsp_params also go to hardware.artifacts.find_vacc (artifact() passes the options there);
        # the build file is read here when load() gets a (prefix, vdsp params) pair instead of a VaccArtifact
        self.build_file = Path(build) if build else None
        self.build = None
        self._vsx = None
        self._streams: dict[str, tuple] = {}      # "images" / "tensor" -> (stream, model_op)
        self._tmp = None

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return device()

    @classmethod
    def artifact(cls, request) -> VaccArtifact:
        """The build under --model-dir (hardware.artifacts.find_vacc), found with the build / vdsp options."""
        from zoogate.vamc import load_build_config

        options = request.options
        build = load_build_config(options["build"]) if options.get("build") else None
        return find_vacc(request.model_dir, request.model, options.get("precision"), build=build,
                         vdsp_params=options.get("vdsp_params"))

    def load(self, artifact, batch_size: int) -> "VaccRunner":
        build = None
        if isinstance(artifact, VaccArtifact):
            prefix, vdsp, build = artifact.prefix, artifact.vdsp_params, artifact.build
            self.precision = artifact.precision
        else:
            prefix, vdsp = artifact
            if self.build_file is not None:
                from zoogate.vamc import load_build_config

                build = load_build_config(self.build_file)
                self.precision = build.precision
        prefix, vdsp = Path(prefix), Path(vdsp)
        if not any(prefix.parent.glob(prefix.name + ".*")):
            raise ZoogateError(f"no VACC build files {prefix.name}.* in {prefix.parent}", prefix)
        self.vdsp = load_params(vdsp)
        self._norm_problem = _tensor_path_problem(self.vdsp)
        self.build = build
        self.outputs = "probabilities" if build is not None and build.softmax else "logits"
        import vaststreamx as vsx      # vendor SDK: imported only here

        ret = vsx.set_device(self.device_id)
        if ret != 0:
            raise RuntimeError(f"{self.name}: vsx.set_device({self.device_id}) returned {ret} (no such card?)")
        self._vsx = vsx
        self.model = vsx.Model(os.fspath(prefix), batch_size)
        self.prefix, self.vdsp_path, self.batch_size = prefix, vdsp, batch_size
        self.input_hw = (self.vdsp.out_height, self.vdsp.out_width)
        _, c, h, w = self.model.input_shape[0]
        if (c, h, w) != (3, *self.input_hw):
            raise ZoogateError(f"the build at {prefix} takes input [{c}, {h}, {w}], the vdsp params give "
                               f"[3, {self.input_hw[0]}, {self.input_hw[1]}] (OimageHeight x OimageWidth): "
                               f"vdsp params of another model?", vdsp)
        # every file of the build, its vdsp params and its build config: any of them changes what runs
        parts = [*prefix.parent.glob(prefix.name + ".*"), vdsp, *([build.path] if build is not None else [])]
        self.artifact_id = files_digest(parts)
        self.artifact_path = f"{prefix}.* + {vdsp}"
        return self

    # -- streams ---------------------------------------------------------------------------------
    def _stream(self, kind: str):
        if kind not in self._streams:
            vsx = self._vsx
            if vsx is None:
                raise RuntimeError(f"{self.name}: load() the build before running it")
            json_path = self.vdsp_path if kind == "images" else self._identity_vdsp()
            ops = vsx.Operator.load_ops_from_json_file(os.fspath(json_path))
            if not ops:
                raise ZoogateError("vsx.Operator.load_ops_from_json_file returned no operators", json_path)
            fusion_op = ops[0]
            graph = vsx.Graph()
            model_op = vsx.ModelOperator(self.model)
            graph.add_operators(fusion_op, model_op)
            stream = vsx.Stream(graph, vsx.StreamBalanceMode.ONCE)
            stream.register_operator_output(model_op)
            stream.build()
            self._streams[kind] = (stream, model_op)
        return self._streams[kind][0]

    def _identity_vdsp(self) -> Path:
        """The build's vdsp op with input buffer = resize = the fed input size, crop at (0, 0): normalisation only."""
        h, w = self.input_hw
        identity = dataclasses.replace(self.vdsp, image_width=w, image_height=h, image_width_pitch=w,
                                       image_height_pitch=h, resize_width=w, resize_height=h, crop_x=0, crop_y=0)
        self._tmp = self._tmp or tempfile.TemporaryDirectory(prefix="zoogate-vacc-")
        path = Path(self._tmp.name) / "identity-vdsp_params.json"
        path.write_text(json.dumps(identity.to_json(), indent=4), encoding="utf-8")
        return path

    def _run(self, kind: str, pictures: list[np.ndarray]) -> np.ndarray:
        """Exactly batch_size uint8 CHW pictures -> (batch_size, C) float32."""
        vsx = self._vsx
        stream = self._stream(kind)
        images = [vsx.create_image(p, vsx.ImageFormat.RGB_PLANAR, p.shape[2], p.shape[1], self.device_id)
                  for p in pictures]
        outputs = stream.run_sync(images)
        # per image, its model outputs; the classifier has one: as_numpy(out)[0] is its row
        rows = [vsx.as_numpy(image_outputs[0])[0].astype(np.float32).reshape(-1) for image_outputs in outputs]
        return np.stack(rows)

    # -- the two ways in ---------------------------------------------------------------------------
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        if self._norm_problem:
            raise ZoogateError(f"cannot feed normalised tensors through this build's vdsp params: "
                               f"{self._norm_problem}; use infer_images()", self.vdsp_path)
        if tuple(batch.shape[1:]) != (3, *self.input_hw):
            raise ValueError(f"{self.name}: the build takes images [3, {self.input_hw[0]}, {self.input_hw[1]}] "
                             f"(its vdsp Oimage size), got images {list(batch.shape[1:])}")
        mean = np.asarray(self.vdsp.mean, np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(self.vdsp.std, np.float32).reshape(1, 3, 1, 1)
        pixels = np.clip(np.rint((batch * std + mean) * 255.0), 0, 255).astype(np.uint8)
        return self._run("tensor", [np.ascontiguousarray(p) for p in pixels])

    def infer_images(self, images) -> np.ndarray:
        """Outputs (N, C) float32 for uint8 RGB pictures at their original sizes (on-card preprocessing).

        As the model zoo's vsx sample (classification.py) does before create_image, a picture with an odd
        side is first resized on the host to even sides (zoogate.preprocess.vdsp.even_size)."""
        from zoogate.preprocess.vdsp import even_size

        pictures = [np.ascontiguousarray(even_size(to_chw_uint8(im).transpose(1, 2, 0)).transpose(2, 0, 1))
                    for im in images]
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
        """Close each stream as the sample finishes: close_input(), then wait_until_done()."""
        streams, self._streams = list(self._streams.values()), {}
        try:
            for stream, _ in streams:
                stream.close_input()
                stream.wait_until_done()
        finally:
            self._vsx = None
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None


BACKEND = Backend("vacc", runners=(VaccRunner,), markers=(VACC,))
