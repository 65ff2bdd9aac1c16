"""Planted preprocessing faults: a variant's pipeline with one documented setting changed.

Used by the fault matrix (zoogate.faults) and the parity self-tests; nothing in a healthy run calls it.
Each pipeline type says where its settings live (PLANTERS: a Preprocess spec, a vdsp_params document,
a timm data config), so a new pipeline type joins by adding one entry. The decoder fault needs no
entry: it swaps the variant's declared decoder (zoogate.preprocess.decoders.SWAPPED) for one image.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from zoogate.errors import ZoogateError
from zoogate.preprocess import variants as V
from zoogate.preprocess.fast import FastPipeline
from zoogate.preprocess.vdsp import VdspPipeline


@dataclass(frozen=True)
class Change:
    mean_delta: float = 0.0        # added to every channel's mean
    std_delta: float = 0.0         # added to every channel's std
    resize: int | None = None      # the resize (short side, or the square side of vdsp) used instead

    def shifted(self, values: tuple[float, ...], delta: float) -> tuple[float, ...]:
        return tuple(float(v) + delta for v in values)


def _spec_pipeline(pipe, c: Change):
    s = pipe.spec
    spec = dataclasses.replace(s, mean=c.shifted(s.mean, c.mean_delta), std=c.shifted(s.std, c.std_delta),
                               resize=s.resize if c.resize is None else c.resize)
    return type(pipe)(spec)


def _vdsp_pipeline(pipe: VdspPipeline, c: Change):
    p = pipe.params
    size = {} if c.resize is None else {"resize_width": c.resize, "resize_height": c.resize}
    return VdspPipeline(dataclasses.replace(p, mean=c.shifted(p.mean, c.mean_delta),
                                            std=c.shifted(p.std, c.std_delta), **size))


def _timm_pipeline(pipe: V.TimmEvalPipeline, c: Change):
    cfg = dict(pipe.data_config)
    cfg["mean"] = c.shifted(cfg["mean"], c.mean_delta)
    cfg["std"] = c.shifted(cfg["std"], c.std_delta)
    if c.resize is not None:
        # timm resizes to floor(crop / crop_pct): aim at the middle of the step so floor gives `resize`
        cfg["crop_pct"] = cfg["input_size"][-1] / (c.resize + 0.5)
    return V.TimmEvalPipeline(pipe.timm_name, cfg)


PLANTERS: dict[type, Callable] = {
    V.ReferencePipeline: _spec_pipeline,
    FastPipeline: _spec_pipeline,
    V.AscendModelzooPipeline: _spec_pipeline,
    VdspPipeline: _vdsp_pipeline,
    V.TimmEvalPipeline: _timm_pipeline,
}


def plant(pipeline, change: Change):
    """The same pipeline type with `change` applied to its documented settings."""
    planter = PLANTERS.get(type(pipeline))
    if planter is None:
        raise ZoogateError(f"no planter for {type(pipeline).__name__}: add it to zoogate.preprocess.planted.PLANTERS")
    return planter(pipeline, change)


CMYK_FIXTURE = "cmyk_360x270.jpg"


@dataclass(frozen=True)
class ExactFault:
    """A fault that every exact-emulation variant must catch on its own recorded outputs."""

    id: str
    text: str                                  # what was planted (describe() for the fault matrix table)
    change: Change | None = None               # planted into the pipeline's settings
    swap_decoder_of: str | None = None         # this fixture is decoded with the other decoder

    def describe(self, decoder: str) -> str:
        """The fault in words for a variant that decodes with `decoder`."""
        if not self.swap_decoder_of:
            return self.text
        from zoogate.preprocess.decoders import SWAPPED, TEXT

        return f"{self.text} decoded with {TEXT[SWAPPED[decoder]]} instead of the documented {TEXT[decoder]}"

    def apply(self, pipeline, decoder: str) -> tuple[Callable, dict[str, str]]:
        """(planted pipeline, {fixture name: decoder} overrides) for a variant that decodes with `decoder`."""
        from zoogate.preprocess.decoders import SWAPPED

        planted = plant(pipeline, self.change) if self.change else pipeline
        overrides = {self.swap_decoder_of: SWAPPED[decoder]} if self.swap_decoder_of else {}
        return planted, overrides


EXACT_FAULTS = (
    ExactFault("std-0.501", "Std 0.501 for the documented 0.5 (+0.001 on every channel)", Change(std_delta=0.001)),
    ExactFault("mean-plus-0.001", "Mean +0.001 on every channel", Change(mean_delta=0.001)),
    ExactFault("resize-343", "Resize 343 instead of the documented resize (342; timm-eval 341)", Change(resize=343)),
    ExactFault("cmyk-other-decoder", "the CMYK JPEG", swap_decoder_of=CMYK_FIXTURE),
)
