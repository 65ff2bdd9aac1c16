"""Where compiled models live: the `--model-dir DIR` naming convention.

Ascend (.om, one file per static batch size), as ATC writes it with ``--output=DIR/<model>_bs<N>``::

    DIR/<model>_bs<N>.om                 e.g. inception_v4_bs4.om
    DIR/<model>_bs<N>_<platform>.om      some CANN versions append a platform suffix (glob <model>_bs<N>*.om)

The Ascend ModelZoo guide names the Cadene 1001-class InceptionV4 ``inceptionv4_bs<N>.om``; that
name is accepted for ``inception_v4_1001`` too (ARTIFACT_ALIASES).

VACC (vamc build output: a directory per build, the model prefix inside it), as the model zoo lays it out::

    DIR/<model>-<precision>-<quantisation>-3_<H>_<W>-vacc/<model>.*     e.g. inception_v4-fp16-none-3_299_299-vacc/
    vdsp params: <build dir>/vdsp_params.json, else DIR/<model>-vdsp_params.json,
                 else DIR/<source>-<model>-vdsp_params.json (e.g. timm-inception_v4-vdsp_params.json)

A missing artifact raises ArtifactMissing (a ZoogateError) whose message names the file that was
expected and how to build it; the pytest plugin turns it into a skip with that message.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

from zoogate.errors import ZoogateError

# registry model -> other names its compiled artifacts carry in vendor guides
ARTIFACT_ALIASES: dict[str, tuple[str, ...]] = {
    # 001_55b16f8d4b7b3695.txt: atc ... --output=inceptionv4_bs${bs}
    "inception_v4_1001": ("inceptionv4",),
}


class ArtifactMissing(ZoogateError):
    """No compiled model for (model, runner, batch size) under --model-dir."""


@dataclass(frozen=True)
class VaccArtifact:
    """A VACC build: the model prefix vsx.Model opens, its vdsp_params JSON, and the build precision."""

    prefix: Path
    vdsp_params: Path
    precision: str

    def __fspath__(self) -> str:
        return os.fspath(self.prefix)


def om_name(model: str, bs: int) -> str:
    return f"{model}_bs{bs}.om"


def atc_hint(model: str, bs: int, model_dir: Path | str, input_size: int | None = None,
             input_name: str = "image") -> str:
    size = input_size or "H"
    return (f"build it with: atc --framework=5 --model={model}.onnx --output={Path(model_dir) / f'{model}_bs{bs}'} "
            f"--input_format=NCHW --input_shape=\"{input_name}:{bs},3,{size},{size}\" --soc_version=<your SoC, "
            f"e.g. Ascend310P3>")


def _om_candidates(model_dir: Path, name: str, bs: int) -> list[Path]:
    # <name>_bs<N>.om or <name>_bs<N><non-digit>...om; never <name>_bs<N><digit> (bs4 must not match bs48)
    pattern = re.compile(rf"^{re.escape(name)}_bs{bs}(?:[^0-9].*)?\.om$")
    return sorted(p for p in model_dir.glob(f"{name}_bs{bs}*.om") if pattern.match(p.name) and p.is_file())


def find_om(model_dir: str | os.PathLike | None, model: str, bs: int, *, input_size: int | None = None) -> Path:
    """The .om file for (model, bs) under model_dir, per the convention above."""
    expected = om_name(model, bs)
    if model_dir is None:
        raise ArtifactMissing(f"runner ascend needs compiled models: pass --model-dir DIR holding {expected} "
                              f"(or {model}_bs{bs}*.om with a CANN platform suffix)")
    base = Path(model_dir)
    if not base.is_dir():
        raise ZoogateError("--model-dir is not a directory (a typo would otherwise skip every test)", base)
    for name in (model, *ARTIFACT_ALIASES.get(model, ())):
        found = _om_candidates(base, name, bs)
        if not found:
            continue
        exact = [p for p in found if p.name == om_name(name, bs)]
        if exact:
            return exact[0]
        if len(found) == 1:
            return found[0]
        here = [p for p in found if platform.machine() in p.name]
        if len(here) == 1:
            return here[0]
        raise ZoogateError(f"several Ascend models match {name}_bs{bs}*.om: {[p.name for p in found]}; "
                           f"keep one or rename it to {om_name(name, bs)}", base)
    aliases = "".join(f" or {om_name(a, bs)}" for a in ARTIFACT_ALIASES.get(model, ()))
    raise ArtifactMissing(f"no Ascend model for {model} at batch size {bs}: expected {base / expected}{aliases} "
                          f"(a CANN platform suffix {model}_bs{bs}*.om is fine); "
                          f"{atc_hint(model, bs, base, input_size)}")


def vacc_build_glob(model: str, precision: str) -> str:
    return f"{model}-{precision}-*-vacc"


def find_vacc(model_dir: str | os.PathLike | None, model: str, precision: str = "fp16") -> VaccArtifact:
    """The VACC build (model prefix + vdsp params) for model at precision under model_dir."""
    pattern = vacc_build_glob(model, precision)
    if model_dir is None:
        raise ArtifactMissing(f"runner vacc needs compiled models: pass --model-dir DIR holding {pattern}/{model} "
                              f"(a vamc build) and {model}-vdsp_params.json")
    base = Path(model_dir)
    if not base.is_dir():
        raise ZoogateError("--model-dir is not a directory (a typo would otherwise skip every test)", base)
    builds = sorted(d for d in base.glob(pattern) if d.is_dir() and any(d.glob(f"{model}.*")))
    if not builds:
        raise ArtifactMissing(f"no VACC build for {model} ({precision}): expected {base / pattern}/{model}.* "
                              f"(e.g. {base}/{model}-{precision}-none-3_299_299-vacc/{model}); "
                              f"build it with: vamc build <your {model} yaml> (precision {precision})")
    if len(builds) > 1:
        raise ZoogateError(f"several VACC builds match {pattern}: {[d.name for d in builds]}; keep one", base)
    build = builds[0]
    candidates = [build / "vdsp_params.json", base / f"{model}-vdsp_params.json"]
    vdsp = next((c for c in candidates if c.is_file()), None)
    if vdsp is None:
        sourced = sorted(base.glob(f"*-{model}-vdsp_params.json"))
        if len(sourced) > 1:
            raise ZoogateError(f"several vdsp params files for {model}: {[p.name for p in sourced]}; keep one", base)
        vdsp = sourced[0] if sourced else None
    if vdsp is None:
        raise ArtifactMissing(f"no vdsp params for the VACC build {build.name}: expected {candidates[0]} or "
                              f"{candidates[1]} (or {base}/<source>-{model}-vdsp_params.json, as the model zoo "
                              f"ships them)")
    return VaccArtifact(prefix=build / model, vdsp_params=vdsp, precision=precision)
