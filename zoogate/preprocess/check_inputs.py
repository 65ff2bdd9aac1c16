"""`zoogate check-inputs`: a lab's preprocessed files against the reference and every known flow.

check() pairs the files with their images (zoogate.preprocess.prepared), explains each one
(zoogate.preprocess.explain) and gives the verdict: a file passes when it equals the flow the lab claims
(``claim``; default the reference) or the reference itself; an .npz passes when it is the image its
VACC host hands the card (vacc-vamp's image2npz array, or vacc-vsx's when that is the claim).
Everything a user can get wrong in the inputs (a folder, a file that is not one of the formats, a file
without its image, vdsp params for another model) is a ZoogateError naming the file, before any work.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from zoogate import baselines
from zoogate.errors import ZoogateError
from zoogate.preprocess import prepared as PF
from zoogate.preprocess import variants as V
from zoogate.preprocess.explain import FULL_SEARCHES, Explainer, FileReport
from zoogate.preprocess.vdsp import VdspParams

NPZ_CLAIMS = ("reference", "fast", "vacc-vamp", "vacc-vsx")     # claims an .npz can be checked against


@dataclass
class CheckResult:
    model: str
    claim: str | None
    prepared: Path
    images: Path
    vdsp_note: str
    files: list[FileReport] = field(default_factory=list)
    unpaired_images: list[Path] = field(default_factory=list)

    def passed(self, r: FileReport) -> bool:
        if r.item.kind == "npz":
            return r.matches_flow(self.claim if self.claim in V.VDSP_VARIANTS else "vacc-vamp")
        return r.matches_flow(self.claim or "reference") or r.matches_flow("reference")

    @property
    def failed(self) -> list[FileReport]:
        return [r for r in self.files if not self.passed(r)]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def _line(self, r: FileReport) -> str:
        dist = "  ".join(f"{name} {d[0]:.3g}/{d[1]:.3g}" if isinstance(d, tuple) else f"{name} {d}"
                         for name, d in r.distances.items())
        decoder = V.decoder_of(r.explanation.variant) if r.explanation.variant else "pil"
        shape = "x".join(map(str, r.array_shape))
        return (f"  {r.item.path.relative_to(self.prepared)}  [{r.item.kind} {r.dtype} {shape}]  "
                f"{r.explanation.text(decoder)}  |  {dist}")

    def lines(self) -> list[str]:
        claim = self.claim or "none (the reference)"
        out = [f"zoogate check-inputs: {self.model}: {len(self.files)} prepared file(s) in {self.prepared}, "
               f"images from {self.images}, claimed flow: {claim}",
               f"  {self.vdsp_note}",
               "  distances: max abs / mean abs of (file - flow), in normalised units for tensors, 8-bit levels "
               "for .npz images"]
        out += [self._line(r) for r in self.files]
        by_folder: dict[Path, Counter] = {}
        for r in self.files:
            by_folder.setdefault(r.item.folder, Counter())[r.explanation.label] += 1
        for folder, labels in by_folder.items():
            parts = "; ".join(f"{n} file{'s' if n != 1 else ''}: {label}" for label, n in labels.most_common())
            out.append(f"summary {folder}: {parts}")
        partial = [r for r in self.files if not r.full_search and r.explanation.variant is None]
        if partial:
            out.append(f"{len(partial)} unexplained file(s) were tried against the faults found so far only (the "
                       f"full search stops after {FULL_SEARCHES} files it cannot explain)")
        if self.unpaired_images:
            out.append(f"{len(self.unpaired_images)} image(s) under {self.images} have no prepared file (not checked)")
        failed = self.failed
        if all(r.item.kind == "npz" for r in self.files):
            wanted = f"{self.claim if self.claim in V.VDSP_VARIANTS else 'vacc-vamp'}'s image for the card"
            what = f"do not match {wanted}"
        elif self.claim in (None, "reference", "fast"):
            wanted, what = "the reference", "do not match the reference"
        else:
            wanted, what = self.claim, f"match neither {self.claim} nor the reference"
        if failed:
            shown = ", ".join(f"{r.item.path.name} ({r.explanation.label})" for r in failed[:5])
            out.append(f"verdict: {len(failed)} of {len(self.files)} file(s) {what}: {shown}"
                       f"{' ...' if len(failed) > 5 else ''}")
        else:
            off_claim = [r for r in self.files if self.claim and r.item.kind != "npz" and not r.matches_flow(self.claim)]
            out.append(f"verdict: all {len(self.files)} file(s) match {wanted}" if not off_claim else
                       f"verdict: every file matches {wanted} or the reference; {len(off_claim)} match the reference, "
                       f"not the claimed {self.claim}")
        return out


def resolve_vdsp(model: str, vdsp_params: Path | None, claim: str | None) -> tuple[VdspParams | None, str]:
    """The vdsp params for the vacc flows and a line saying where they come from."""
    if vdsp_params is not None:
        return V.vdsp_for_model(vdsp_params, model), f"vacc flows: vdsp params from {vdsp_params}"
    from zoogate.preprocess.measured import FIXTURE_DIR, vdsp_fixture

    fixture = vdsp_fixture(baselines.model(model))
    if fixture is not None and fixture.is_file():
        shown = os.path.relpath(fixture, FIXTURE_DIR.parent)
        return (V.vdsp_for_model(fixture, model),
                f"vacc flows: the model zoo's vdsp params for {model} ({shown}); --vdsp-params FILE for your build's")
    if claim in V.VDSP_VARIANTS:
        raise ZoogateError(f"--variant {claim} is driven by the build's vdsp_params JSON: pass --vdsp-params FILE")
    return None, "vacc flows not tried: no vdsp params for this model (--vdsp-params FILE)"


def check(model: str, images: Path, prepared: Path, claim: str | None = None,
          vdsp_params: Path | None = None) -> CheckResult:
    mb = baselines.model(model)
    if claim is not None and claim not in V.VARIANTS:
        raise ZoogateError(f"unknown variant {claim!r}; known: {', '.join(V.VARIANTS)}")
    if claim == "timm-eval" and not V.applicable("timm-eval", mb)[0]:
        raise ZoogateError(V.applicable("timm-eval", mb)[1])
    params, note = resolve_vdsp(model, vdsp_params, claim)
    items, unpaired = PF.find(Path(prepared), Path(images))
    if claim not in (None, *NPZ_CLAIMS) and any(i.kind == "npz" for i in items):
        npz = next(i for i in items if i.kind == "npz")
        raise ZoogateError(f"an .npz holds the image a VACC host hands the card; --variant {claim} writes none",
                           npz.path)
    for item in items:                     # every file readable before any work
        PF.read(item, mb.input_size, header_only=True)
    explainer = Explainer(mb, params, claim)
    result = CheckResult(model, claim, Path(prepared), Path(images), note, unpaired_images=unpaired)
    threads = contextlib.nullcontext()
    if "timm-eval" in explainer.tensor_flows:
        from zoogate.preprocess.reference import torch_threads
        threads = torch_threads(1)         # timm-eval's torch ops: one thread is faster and the same bits
    with threads:
        for item in items:
            result.files.append(explainer.explain(item, PF.read(item, mb.input_size)))
    return result
