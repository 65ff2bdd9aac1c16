"""Planted preprocessing faults: a variant's pipeline with one documented setting changed.

Used by the fault matrix (zoogate.faults), the parity self-tests and `zoogate check-inputs` (which
searches these faults to explain a lab's files); nothing in a healthy run calls it. Each pipeline type
says where its settings live (PLANTERS: a Preprocess spec, a vdsp_params document, a timm data config),
so a new pipeline type joins by adding one entry; a change a pipeline type has no setting for raises
NotPlantable. The decoder fault needs no entry: it swaps the variant's declared decoder
(zoogate.preprocess.decoders.SWAPPED).

The faults themselves are defined once, here: MATRIX_FAULTS (planted into the reference by the fault
matrix), EXACT_FAULTS (planted into every deployed variant and caught by the exact gate) and SEARCHED
(what check-inputs tries, the two sets above plus their obvious siblings).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np

from zoogate.errors import ZoogateError
from zoogate.preprocess import geometry
from zoogate.preprocess import variants as V
from zoogate.preprocess.fast import FastPipeline
from zoogate.preprocess.vdsp import VampInput, VampPipeline, VsxInput, VsxPipeline

Triple = tuple[float, float, float]
IMAGENET_MEAN_STD: tuple[Triple, Triple] = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF_MEAN_STD: tuple[Triple, Triple] = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


class NotPlantable(ZoogateError):
    """The pipeline type has no setting for this change (vdsp has no bicubic, timm no truncated crop)."""


@dataclass(frozen=True)
class Change:
    mean_delta: float = 0.0        # added to every channel's mean
    std_delta: float = 0.0         # added to every channel's std
    resize: int | None = None      # the resize (short side, or the square side of vdsp) used instead
    crop: int | None = None        # the (square) output size used instead
    mean_std: tuple[Triple, Triple] | None = None    # these mean/std instead of the documented ones
    interpolation: str | None = None                 # "bilinear" / "bicubic" instead of the documented one
    crop_rounding: str | None = None                 # "round" / "truncate": how the crop offset is computed
    channels_reversed: bool = False                  # BGR: the output's channel planes in reverse order

    def shifted(self, values: tuple[float, ...], delta: float) -> tuple[float, ...]:
        return tuple(float(v) + delta for v in values)

    def norm(self, mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if self.mean_std is not None:
            mean, std = self.mean_std
        return self.shifted(mean, self.mean_delta), self.shifted(std, self.std_delta)


@dataclass(frozen=True)
class ChannelsReversed:
    """A pipeline whose output planes come out in reverse order (RGB fed as BGR, after normalising)."""

    inner: Callable

    @property
    def name(self) -> str:
        return getattr(self.inner, "name", "pipeline")

    def describe(self) -> str:
        describe = getattr(self.inner, "describe", None)
        return f"{describe() if describe else self.name} [output channels reversed: BGR]"

    def __call__(self, img) -> np.ndarray:
        return np.ascontiguousarray(self.inner(img)[::-1])


_ROUNDING_OF = {V.ReferencePipeline: "round", FastPipeline: "round", V.AscendModelzooPipeline: "truncate"}


def _spec_pipeline(pipe, c: Change):
    s = pipe.spec
    mean, std = c.norm(s.mean, s.std)
    spec = dataclasses.replace(s, mean=mean, std=std, resize=s.resize if c.resize is None else c.resize,
                               crop=s.crop if c.crop is None else c.crop,
                               interpolation=c.interpolation or s.interpolation)
    kind = type(pipe)
    if c.crop_rounding and c.crop_rounding != _ROUNDING_OF[kind]:
        kind = V.AscendModelzooPipeline if c.crop_rounding == "truncate" else FastPipeline
    return kind(spec)


def _vdsp_pipeline(pipe, c: Change):
    if c.interpolation is not None:
        raise NotPlantable(f"vdsp_params has one resize type (BILINEAR_CV): no {c.interpolation} to plant")
    p = pipe.params
    mean, std = c.norm(p.mean, p.std)
    changes = {"mean": mean, "std": std}
    if c.resize is not None:
        changes.update(resize_width=c.resize, resize_height=c.resize)
    if c.crop is not None:
        size = c.resize if c.resize is not None else p.resize_width
        offset = geometry.crop_offset(size, c.crop, "truncate")
        changes.update(out_width=c.crop, out_height=c.crop, crop_x=offset, crop_y=offset)
    if c.crop_rounding is not None:
        width = changes.get("resize_width", p.resize_width)
        height = changes.get("resize_height", p.resize_height)
        out_w, out_h = changes.get("out_width", p.out_width), changes.get("out_height", p.out_height)
        changes.update(crop_x=geometry.crop_offset(width, out_w, c.crop_rounding),
                       crop_y=geometry.crop_offset(height, out_h, c.crop_rounding))
    return type(pipe)(dataclasses.replace(p, **changes))


def _timm_pipeline(pipe: V.TimmEvalPipeline, c: Change):
    if c.crop_rounding == "truncate":
        raise NotPlantable("timm's eval transform centre-crops with torchvision's rounded offsets only")
    cfg = dict(pipe.data_config)
    cfg["mean"], cfg["std"] = c.norm(cfg["mean"], cfg["std"])
    if c.crop is not None:
        cfg["input_size"] = (cfg["input_size"][0], c.crop, c.crop)
    if c.resize is not None:
        # timm resizes to floor(crop / crop_pct): aim at the middle of the step so floor gives `resize`
        cfg["crop_pct"] = cfg["input_size"][-1] / (c.resize + 0.5)
    if c.interpolation is not None:
        cfg["interpolation"] = c.interpolation
    return V.TimmEvalPipeline(pipe.timm_name, cfg)


def _card_input(pipe, c: Change):
    raise NotPlantable(f"{pipe.describe()}: the host hands the card the decoded image; no resize, crop or "
                       "normalisation to plant (the card's vdsp op applies them)")


PLANTERS: dict[type, Callable] = {
    V.ReferencePipeline: _spec_pipeline,
    FastPipeline: _spec_pipeline,
    V.AscendModelzooPipeline: _spec_pipeline,
    VampPipeline: _vdsp_pipeline,
    VsxPipeline: _vdsp_pipeline,
    V.TimmEvalPipeline: _timm_pipeline,
    VampInput: _card_input,
    VsxInput: _card_input,
}


def plant(pipeline, change: Change):
    """The same pipeline type with `change` applied to its documented settings (NotPlantable if it has none)."""
    planter = PLANTERS.get(type(pipeline))
    if planter is None:
        raise ZoogateError(f"no planter for {type(pipeline).__name__}: add it to zoogate.preprocess.planted.PLANTERS")
    settings = dataclasses.replace(change, channels_reversed=False)
    planted = pipeline if settings == Change() else planter(pipeline, settings)
    return ChannelsReversed(planted) if change.channels_reversed else planted


CMYK_FIXTURE = "cmyk_360x270.jpg"


@dataclass(frozen=True)
class PlantedFault:
    """A named preprocessing fault: a settings change, or the other library's decoder, or both."""

    id: str
    text: str                                  # what was planted (the fault matrix table's words)
    change: Change | None = None               # planted into the pipeline's settings
    other_decoder: bool = False                # images decoded with the other decoder (decoders.SWAPPED)

    def describe(self, decoder: str) -> str:
        if not self.other_decoder:
            return self.text
        from zoogate.preprocess.decoders import SWAPPED, TEXT

        return f"{self.text} decoded with {TEXT[SWAPPED[decoder]]} instead of the documented {TEXT[decoder]}"

    def pipeline(self, pipeline):
        return plant(pipeline, self.change) if self.change else pipeline

    def decoder(self, decoder: str) -> str:
        """The decoder the faulty flow reads images with, for a variant that documents `decoder`."""
        from zoogate.preprocess.decoders import SWAPPED

        return SWAPPED[decoder] if self.other_decoder else decoder


@dataclass(frozen=True)
class ExactFault(PlantedFault):
    """A fault that every exact-emulation variant must catch on its own recorded outputs; the decoder
    fault is planted on one fixture (`only_image`), the one where the two decoders differ most plainly."""

    only_image: str | None = None

    def apply(self, pipeline, decoder: str) -> tuple[Callable, dict[str, str]]:
        """(planted pipeline, {fixture name: decoder} overrides) for a variant that decodes with `decoder`."""
        overrides = {self.only_image: self.decoder(decoder)} if self.other_decoder else {}
        return self.pipeline(pipeline), overrides


MATRIX_FAULTS = (
    PlantedFault("bgr-channel-order", "BGR channel order fed to an RGB model", Change(channels_reversed=True)),
    PlantedFault("wrong-mean-std", "ImageNet mean/std instead of the documented 0.5/0.5",
                 Change(mean_std=IMAGENET_MEAN_STD)),
    PlantedFault("resize-256-for-342", "Resize(256)/CenterCrop(256) for a Resize(342)/CenterCrop(299) model",
                 Change(resize=256, crop=256)),
    PlantedFault("bicubic-for-bilinear", "bicubic resize where the reference is bilinear",
                 Change(interpolation="bicubic")),
    PlantedFault("truncating-crop-offset", "crop offset truncated instead of rounded (1-px shift)",
                 Change(crop_rounding="truncate")),
)

EXACT_FAULTS = (
    ExactFault("std-0.501", "Std 0.501 for the documented 0.5 (+0.001 on every channel)", Change(std_delta=0.001)),
    ExactFault("mean-plus-0.001", "Mean +0.001 on every channel", Change(mean_delta=0.001)),
    ExactFault("resize-343", "Resize 343 instead of the documented resize (342; timm-eval 341)", Change(resize=343)),
    ExactFault("cmyk-other-decoder", "the CMYK JPEG", other_decoder=True, only_image=CMYK_FIXTURE),
)

# what check-inputs tries on a file no variant explains, in this order (cheap and common first)
SEARCHED = (
    MATRIX_FAULTS[0],
    MATRIX_FAULTS[1],
    PlantedFault("half-mean-std", "0.5/0.5 mean/std instead of the documented ImageNet mean/std",
                 Change(mean_std=HALF_MEAN_STD)),
    *(f for f in EXACT_FAULTS if f.change and f.change.resize is None),
    PlantedFault("std-minus-0.001", "Std -0.001 on every channel", Change(std_delta=-0.001)),
    PlantedFault("mean-minus-0.001", "Mean -0.001 on every channel", Change(mean_delta=-0.001)),
    MATRIX_FAULTS[4],
    PlantedFault("rounding-crop-offset", "crop offset rounded instead of truncated (1-px shift)",
                 Change(crop_rounding="round")),
    MATRIX_FAULTS[3],
    PlantedFault("bilinear-for-bicubic", "bilinear resize where the documented one is bicubic",
                 Change(interpolation="bilinear")),
    PlantedFault("other-decoder", "images", other_decoder=True),
    *(PlantedFault(f"resize-{n}", f"Resize {n} instead of the documented resize", Change(resize=n))
      for n in (256, 341, 342)),
    EXACT_FAULTS[2],
    MATRIX_FAULTS[2],
)
