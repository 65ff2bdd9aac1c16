"""The named preprocessing variants: the reference, our fast copy of it, and the deployed ones.

Every variant is a callable ``pipeline(pil_image) -> float32 CHW`` built from a model's baseline entry
(`build(variant, model)`), so the parity suite and `zoogate preprocess` run the very same code.

| variant         | semantics                                                                  | vs reference |
|-----------------|----------------------------------------------------------------------------|--------------|
| reference       | PIL decode; torchvision Resize(short, PIL) -> CenterCrop (rounded offsets) -> ToTensor -> Normalize | itself |
| fast            | the same with PIL + a normalisation lookup table, parallel over files      | bit-identical |
| ascend-modelzoo | the Ascend InceptionV4 guide's inceptionv4_preprocess.py: PIL decode, same resize, crop offsets truncated | 1-px shift when a margin is odd and its half rounds up |
| vacc-vamp       | the VACC model zoo's image2npz.py + vamp: cv2.imread (EXIF applied) -> RGB CHW uint8 at the original size; the card's vdsp op: square cv2.resize INTER_LINEAR to ResizeWidth x ResizeHeight, crop at CropX/CropY, (x/255 - Mean)/Std | decoder (EXIF rotation, CMYK, 16-bit), aspect ratio not kept, no antialias when shrinking, floored crop offset, float16-rounded Mean/Std where the JSON has them |
| vacc-vsx        | the VACC model zoo's vsx classification.py: cv2.imread(IMREAD_COLOR); an image with an odd side is first cv2.resize'd (INTER_LINEAR) to (W//2*2, H//2*2); then the same vdsp op | as vacc-vamp, plus the even-size resample of odd-sized images |
| timm-eval       | timm's pretrained cfg: bicubic, crop_pct 0.875 (Resize 341), timm's mean/std | interpolation, scale, mean/std |

Decoding: each variant declares its decoder in DECODER_OF (zoogate.preprocess.decoders). The reference,
fast, ascend-modelzoo and timm-eval decode as ``PIL.Image.open(f).convert("RGB")``, which ignores the
EXIF Orientation tag; the VACC flows decode with ``cv2.imread``, which applies it (a camera-rotated JPEG
reaches them rotated) and converts CMYK and 16-bit images its own way. The vacc variants are driven by a
vdsp_params JSON (zoogate.preprocess.vdsp), not by the model's baseline entry.

Every variant but the reference is an exact emulation of a deployed pipeline: the suite gates each one on
its own recorded outputs, bit for bit (zoogate.preprocess.expected).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from PIL import Image

from zoogate import baselines
from zoogate.baselines import ModelBaseline, Preprocess
from zoogate.errors import ZoogateError
from zoogate.preprocess import geometry
from zoogate.preprocess.fast import PIL_FILTERS, FastPipeline
from zoogate.preprocess.vdsp import VampPipeline, VdspParams, VsxPipeline, load_params

VARIANTS = ("reference", "fast", "ascend-modelzoo", "vacc-vamp", "vacc-vsx", "timm-eval")
IDENTICAL = ("reference", "fast")                       # must equal the reference exactly
DOCUMENTED = ("ascend-modelzoo", "vacc-vamp", "vacc-vsx", "timm-eval")   # differ from the reference by design
DEPLOYED = ("fast", "ascend-modelzoo", "vacc-vamp", "vacc-vsx", "timm-eval")   # exact emulations, gated on their own outputs
VDSP_VARIANTS = ("vacc-vamp", "vacc-vsx")               # driven by a vdsp_params JSON, not the baseline entry
# the decoder each variant documents (zoogate.preprocess.decoders); a new variant names its own here
DECODER_OF = {"reference": "pil", "fast": "pil", "ascend-modelzoo": "pil", "vacc-vamp": "cv2", "vacc-vsx": "cv2",
              "timm-eval": "pil"}

Pipeline = Callable[[Image.Image], np.ndarray]


@dataclass(frozen=True)
class ReferencePipeline:
    spec: Preprocess
    name: str = "reference"

    def describe(self) -> str:
        return f"reference (torchvision on PIL): {self.spec.describe()}"

    def __call__(self, img: Image.Image) -> np.ndarray:
        from zoogate.preprocess.reference import preprocess_reference   # torchvision: imported when used

        return preprocess_reference(img, self.spec)


@dataclass(frozen=True)
class AscendModelzooPipeline:
    """The Ascend ModelZoo InceptionV4 preprocessing script's semantics (Ascend ModelZoo-PyTorch
    ACL_PyTorch/built-in/cv/InceptionV4_for_Pytorch/inceptionv4_preprocess.py).

    PIL convert('RGB'); short side -> spec.resize with BILINEAR (the spec's interpolation), long side
    ``int(resize * long / short)``; centre crop with TRUNCATED offsets ``int((W - crop) / 2)``; float32
    ``/ 255``, ``(x - mean) / std`` (the spec's mean/std); HWC -> CHW. Written by `zoogate preprocess
    --format bin` as the script's ``tofile`` float32 .bin.
    """

    spec: Preprocess
    name: str = "ascend-modelzoo"

    def describe(self) -> str:
        return f"ascend-modelzoo (truncated crop offsets): {self.spec.describe()}"

    def __call__(self, img: Image.Image) -> np.ndarray:
        s = self.spec
        img = img.convert("RGB") if img.mode != "RGB" else img
        w, h = img.size
        new_w, new_h = geometry.short_side_size(w, h, s.resize)
        if (new_w, new_h) != (w, h):
            img = img.resize((new_w, new_h), PIL_FILTERS[s.interpolation])
        img = img.crop(geometry.centre_crop_box(new_w, new_h, s.crop, "truncate"))
        x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / np.float32(255)
        x = (x - np.asarray(s.mean, np.float32)[:, None, None]) / np.asarray(s.std, np.float32)[:, None, None]
        if s.channel_order == "BGR":
            x = x[::-1]
        return np.ascontiguousarray(x, dtype=np.float32)


@dataclass(frozen=True)
class TimmEvalPipeline:
    """timm's own eval transform, built by timm from the model's pretrained cfg (no weights downloaded).

    ``data_config`` is what ``timm.data.resolve_data_config`` returns (interpolation, crop_pct, mean,
    std, input_size, crop_mode); keeping it explicit lets a test plant a fault in it.
    """

    timm_name: str
    data_config: dict
    name: str = "timm-eval"
    _transform: Any = field(default=None, init=False, repr=False, compare=False)

    def describe(self) -> str:
        c = self.data_config
        return (f"timm-eval ({self.timm_name}): {c.get('interpolation')}, crop_pct {c.get('crop_pct')}, "
                f"input {tuple(c.get('input_size', ()))}, mean {tuple(c.get('mean', ()))}, std {tuple(c.get('std', ()))}")

    def __call__(self, img: Image.Image) -> np.ndarray:
        if self._transform is None:
            from timm.data import create_transform
            object.__setattr__(self, "_transform", create_transform(**self.data_config, is_training=False))
        img = img.convert("RGB") if img.mode != "RGB" else img
        return np.ascontiguousarray(self._transform(img).numpy(), dtype=np.float32)


def timm_name(mb: ModelBaseline) -> str | None:
    """The timm model name behind a baseline builder ("timm:inception_v3.gluon_in1k"), or None."""
    kind, _, name = mb.builder.partition(":")
    return name if kind == "timm" and name else None


def timm_data_config(name: str) -> dict:
    """timm's resolved eval data config for a model name, from its pretrained cfg alone (nothing downloaded)."""
    return dict(_timm_data_config(name))


@functools.lru_cache(maxsize=None)
def _timm_data_config(name: str) -> dict:
    """Kept in the cache folder per timm version: ``import timm`` costs about 2 s, and the test collection of
    every pytest process asks for these configs."""
    from importlib.metadata import version

    from zoogate import cache

    saved = cache.cached_json("timm", {"timm": version("timm"), "model": name, "config": "resolve_data_config"},
                              lambda: _resolve_timm_data_config(name), label=name)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}


def _resolve_timm_data_config(name: str) -> dict:
    import timm
    from timm.data import resolve_data_config

    cfg = timm.get_pretrained_cfg(name)
    if cfg is None:
        raise ZoogateError(f"timm has no pretrained config for {name!r} (timm {timm.__version__})")
    return dict(resolve_data_config({}, pretrained_cfg=cfg.to_dict()))


def vdsp_for_model(vdsp_params: str | os.PathLike | VdspParams, model: str | ModelBaseline) -> VdspParams:
    """vdsp params that can feed `model`: the op's output (Oimage) must be the model's input size."""
    mb = baselines.model(model) if isinstance(model, str) else model
    params = vdsp_params if isinstance(vdsp_params, VdspParams) else load_params(vdsp_params)
    size = mb.input_size
    if (params.out_width, params.out_height) != (size, size):
        raise ZoogateError(f"OpConfig.OimageWidth x OimageHeight is {params.out_width}x{params.out_height}, but "
                           f"{mb.name} takes {size}x{size} images: these vdsp params are for another model",
                           params.source or None)
    return params


def decoder_of(variant: str) -> str:
    if variant not in DECODER_OF:
        raise ZoogateError(f"unknown preprocessing variant {variant!r}; known: {', '.join(VARIANTS)}")
    return DECODER_OF[variant]


def applicable(variant: str, mb: ModelBaseline) -> tuple[bool, str]:
    """Whether a variant can be built for a model without further input, and if not, why."""
    if variant not in VARIANTS:
        return False, f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}"
    if variant == "timm-eval" and timm_name(mb) is None:
        return False, f"{mb.name} is not a timm model (builder {mb.builder}); timm-eval needs timm's pretrained cfg"
    return True, ""


def build(variant: str, model: str | ModelBaseline | None = None, *, spec: Preprocess | None = None,
          vdsp_params: str | os.PathLike | VdspParams | None = None,
          timm_config: dict | None = None) -> Pipeline:
    """The pipeline of one variant for one model (or for an explicit spec / vdsp params / timm config).

    reference, fast, ascend-modelzoo: the model's baseline preprocess (or ``spec``).
    vacc-vamp, vacc-vsx: need ``vdsp_params`` (a JSON path or VdspParams); the model is not consulted.
    timm-eval: needs a timm model (builder "timm:...") or an explicit ``timm_config``.
    """
    mb = baselines.model(model) if isinstance(model, str) else model
    if variant not in VARIANTS:
        raise ZoogateError(f"unknown preprocessing variant {variant!r}; known: {', '.join(VARIANTS)}")
    if variant in VDSP_VARIANTS:
        if vdsp_params is None:
            raise ZoogateError(f"{variant} needs a vdsp_params JSON (--vdsp-params FILE; the model zoo's files "
                               "are in fixtures/vdsp_params/)")
        params = vdsp_params if isinstance(vdsp_params, VdspParams) else load_params(vdsp_params)
        return (VampPipeline if variant == "vacc-vamp" else VsxPipeline)(params)
    if variant == "timm-eval":
        if timm_config is not None:
            return TimmEvalPipeline(timm_name(mb) if mb else "custom", dict(timm_config))
        if mb is None:
            raise ZoogateError("timm-eval needs a model (its timm pretrained cfg) or an explicit timm config")
        ok, why = applicable(variant, mb)
        if not ok:
            raise ZoogateError(why)
        name = timm_name(mb)
        return TimmEvalPipeline(name, timm_data_config(name))
    if spec is None:
        if mb is None:
            raise ZoogateError(f"{variant} needs a model or a spec")
        spec = mb.preprocess
    return {"reference": ReferencePipeline, "fast": FastPipeline, "ascend-modelzoo": AscendModelzooPipeline}[variant](spec)
