"""What made a lab's preprocessed file: the engine of `zoogate check-inputs`.

For one prepared file and the image it was made from, every known flow is run on the image (the
reference, ascend-modelzoo, vacc-vamp, vacc-vsx, timm-eval where it applies; for an .npz, the arrays the
VACC hosts hand the card) and the file's distance to each is measured (max abs, mean abs). The best
explanation is, in this order:

1. an exact match of a flow (for an .npz: the image the VACC host hands the card, compared level for
   level; with the build's vdsp params, the card's op on the file is also compared with the reference): bit for bit, or at float32 rounding of the written file (max abs <= the
   named tolerance check_inputs_float32_rounding), or, for a float16 file, equal to the flow's output
   rounded to float16;
2. else one fault of zoogate.preprocess.planted.SEARCHED planted into one flow that reproduces the file
   the same way (BGR, ImageNet vs 0.5 mean/std, Std/Mean +-0.001, crop offset truncated vs rounded,
   bicubic vs bilinear, the other decoder, Resize 256/341/342/343, Resize(256)/CenterCrop(256));
3. else "unexplained", with the distances.

Flows are tried claimed one first, then in variants.VARIANTS order (fast is the reference), so a file two flows explain alike is named
after the claim. Faults that explained earlier files are tried first. Decoded images and each flow's
output are computed once per image; a planted flow's output shape is known before it runs, so flows
that cannot give the file's shape are not run. The whole search (about 0.2 s of CPU per file) runs for
the first FULL_SEARCHES files it cannot explain; later files try only the faults that explained some file,
so a folder of files nothing explains still takes seconds (FileReport.full_search says which were which).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoogate import baselines
from zoogate.baselines import ModelBaseline
from zoogate.errors import ZoogateError
from zoogate.preprocess import planted as P
from zoogate.preprocess import variants as V
from zoogate.preprocess.decoders import decode
from zoogate.preprocess.fast import FastPipeline
from zoogate.preprocess.prepared import Prepared
from zoogate.preprocess.vdsp import VampInput, VdspParams, VsxInput, fusion_op

TOLERANCE = "check_inputs_float32_rounding"
FULL_SEARCHES = 5


@dataclass(frozen=True)
class Explanation:
    variant: str | None                   # the flow; None: unexplained
    fault: P.PlantedFault | None = None   # planted into it; None: the flow itself
    level: str = ""                       # bit-exact / at float32 rounding / at float16 rounding
    note: str = ""

    @property
    def label(self) -> str:
        if self.variant is None:
            return "unexplained"
        return f"exact {self.variant}" if self.fault is None else f"{self.variant} + {self.fault.id}"

    def text(self, decoder: str = "pil") -> str:
        if self.variant is None:
            return "unexplained"
        what = f" ({self.fault.describe(decoder)})" if self.fault else ""
        note = f"; {self.note}" if self.note else ""
        return f"{self.label}{what}, {self.level}{note}"


@dataclass
class FileReport:
    item: Prepared
    array_shape: tuple[int, ...]
    dtype: str
    distances: dict[str, tuple[float, float] | str]     # flow -> (max abs, mean abs), or why not comparable
    explanation: Explanation
    matches: set[str] = field(default_factory=set)      # flows the file equals (exactly)
    full_search: bool = True                            # False: only the faults found so far were tried

    def matches_flow(self, variant: str) -> bool:
        return (variant if variant != "fast" else "reference") in self.matches


def _output_shape(pipe) -> tuple[int, ...] | None:
    """The (3, H, W) a tensor flow writes, known from its settings; None when it depends on the image."""
    if isinstance(pipe, P.ChannelsReversed):
        return _output_shape(pipe.inner)
    spec = getattr(pipe, "spec", None)
    if spec is not None:
        return (3, spec.crop, spec.crop)
    params = getattr(pipe, "params", None)
    if isinstance(params, VdspParams):
        return (3, params.out_height, params.out_width)
    if isinstance(pipe, V.TimmEvalPipeline):
        return tuple(int(v) for v in pipe.data_config["input_size"])
    return None


class Explainer:
    """Explains prepared files of one model; keeps the faults that explained earlier files."""

    def __init__(self, model: str | ModelBaseline, vdsp_params: VdspParams | None = None, claim: str | None = None):
        self.mb = baselines.model(model) if isinstance(model, str) else model
        self.tolerance = baselines.tolerance(TOLERANCE).value
        self.claim = "reference" if claim in (None, "fast") else claim
        self.tensor_flows: dict[str, object] = {"reference": FastPipeline(self.mb.preprocess),
                                                "ascend-modelzoo": V.build("ascend-modelzoo", self.mb)}
        self.npz_flows: dict[str, object] = {"vacc-vamp": VampInput(), "vacc-vsx": VsxInput()}
        self.card = None                                    # the vdsp op, on an npz's image
        if vdsp_params is not None:
            self.tensor_flows.update({v: V.build(v, vdsp_params=vdsp_params) for v in V.VDSP_VARIANTS})
            self.card = functools.partial(fusion_op, params=vdsp_params)
        if V.applicable("timm-eval", self.mb)[0]:
            self.tensor_flows["timm-eval"] = V.build("timm-eval", self.mb)
        self.hits: list[tuple[str, str]] = []               # (flow, fault id) that explained a file
        self.full_searches_left = FULL_SEARCHES
        self.as_fault = self._variants_as_faults()
        self._outputs: dict = {}
        self._outputs_of: Path | None = None

    def _variants_as_faults(self) -> dict[str, str]:
        """flow -> the fault-matrix fault that turns the reference into it (ascend-modelzoo: truncated offsets)."""
        out = {}
        for variant, pipe in self.tensor_flows.items():
            for fault in P.MATRIX_FAULTS:
                try:
                    if variant != "reference" and fault.pipeline(self.tensor_flows["reference"]) == pipe:
                        out[variant] = fault.id
                except P.NotPlantable:
                    pass
        return out

    def flows(self, kind: str) -> dict[str, object]:
        return self.npz_flows if kind == "npz" else self.tensor_flows

    # ---- running flows on one image, each once ----

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def _decoded_once(path: Path, decoder: str, stamp: tuple[int, int]):
        return decode(path, decoder)

    def _decoded(self, path: Path, decoder: str):
        try:
            st = path.stat()
        except OSError:
            raise ZoogateError("image not found", path) from None
        return self._decoded_once(path, decoder, (st.st_mtime_ns, st.st_size))

    def _run(self, image: Path, pipe, decoder: str) -> np.ndarray:
        if image != self._outputs_of:
            self._outputs, self._outputs_of = {}, image
        if isinstance(pipe, P.ChannelsReversed):
            return np.ascontiguousarray(self._run(image, pipe.inner, decoder)[::-1])
        try:
            memo_key = (pipe, decoder)
            hash(memo_key)
        except TypeError:                    # timm's config is a dict: not memoised
            return pipe(self._decoded(image, decoder))
        if memo_key not in self._outputs:
            self._outputs[memo_key] = pipe(self._decoded(image, decoder))
        return self._outputs[memo_key]

    # ---- comparing ----

    def compare(self, arr: np.ndarray, out: np.ndarray) -> tuple[str | None, tuple[float, float] | str]:
        """(how exactly `arr`, the file, equals `out`, a flow's float32 or uint8 output, or None;
        (max abs, mean abs) of the difference, or why there is none)."""
        if arr.shape != out.shape:
            return None, "shape " + "x".join(map(str, out.shape))
        if arr.dtype == np.uint8 or out.dtype == np.uint8:
            diff = np.abs(arr.astype(np.int16) - out.astype(np.int16))
        else:
            # in float32: a - b is 0 exactly when a == b, and rounds far below the 1e-5 tolerance otherwise
            diff = np.abs(arr.astype(np.float32, copy=False) - out)
        dist = (float(diff.max()), float(diff.mean(dtype=np.float64))) if diff.size else (0.0, 0.0)
        if dist[0] == 0.0 and arr.dtype == out.dtype:
            return "bit-exact", dist
        if arr.dtype == np.uint8 or out.dtype == np.uint8:
            return None, dist
        if arr.dtype == np.float16:
            return ("at float16 rounding" if np.array_equal(arr, out.astype(np.float16)) else None), dist
        if arr.dtype == np.float64:
            dist = (float(np.abs(arr - out).max()), dist[1])
        return ("at float32 rounding" if dist[0] <= self.tolerance else None), dist

    # ---- explaining ----

    def _order(self, flows: dict[str, object]) -> list[str]:
        return sorted(flows, key=lambda v: (v != self.claim, list(flows).index(v)))

    def _candidates(self, order: list[str], full: bool):
        searched = {f.id: f for f in P.SEARCHED}
        seen = set()
        everything = ((v, f.id) for v in order for f in P.SEARCHED) if full else ()
        for variant, fault_id in [*self.hits, *everything]:
            if variant in order and (variant, fault_id) not in seen:
                seen.add((variant, fault_id))
                yield variant, searched[fault_id]

    def explain(self, item: Prepared, arr: np.ndarray) -> FileReport:
        flows = self.flows(item.kind)
        outputs, distances, errors = {}, {}, []
        for variant, pipe in flows.items():
            try:
                outputs[variant] = self._run(item.image, pipe, V.decoder_of(variant))
            except ZoogateError as exc:
                distances[variant] = f"cannot run ({exc.problem})"
                errors.append(exc)
            except ValueError as exc:                  # vsx: a 1-px side
                distances[variant] = f"cannot run ({exc})"
        if not outputs:
            raise errors[0] if errors else ZoogateError("no flow can read this image", item.image)
        levels = {}
        for variant, out in outputs.items():
            levels[variant], distances[variant] = self.compare(arr, out)
        if item.kind == "npz" and self.card is not None:
            reference = self._run(item.image, self.tensor_flows["reference"], V.decoder_of("reference"))
            distances["card's vdsp op on this npz vs reference"] = self.compare(
                self.card(np.ascontiguousarray(arr.transpose(1, 2, 0))), reference)[1]
        order = [v for v in self._order(flows) if v in outputs]
        report = FileReport(item, tuple(arr.shape), str(arr.dtype), distances, Explanation(None),
                            {v for v, level in levels.items() if level})
        for variant in order:
            if levels[variant]:
                fault = self.as_fault.get(variant) if variant != self.claim else None
                note = f"= the reference with the fault-matrix fault {fault}" if fault else ""
                report.explanation = Explanation(variant, None, levels[variant], note)
                return report
        report.full_search = self.full_searches_left > 0
        for variant, fault in self._candidates(order, report.full_search):
            pipe = flows[variant]
            try:
                planted = fault.pipeline(pipe)
            except P.NotPlantable:
                continue
            if planted == pipe and not fault.other_decoder:
                continue                              # the fault is this flow's documented setting
            if item.kind != "npz" and _output_shape(planted) not in (None, tuple(arr.shape)):
                continue
            try:
                out = self._run(item.image, planted, fault.decoder(V.decoder_of(variant)))
            except (ZoogateError, ValueError):
                continue
            level, _ = self.compare(arr, out)
            if level:
                if (variant, fault.id) in self.hits:
                    self.hits.remove((variant, fault.id))
                self.hits.insert(0, (variant, fault.id))
                report.explanation = Explanation(variant, fault, level)
                return report
        self.full_searches_left -= report.full_search
        return report
