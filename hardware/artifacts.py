"""Where a runner's artifact comes from: the request a runner's ``artifact()`` answers, and the
`--model-dir DIR` naming convention of compiled models (shared helpers the backend modules call).

Ascend (.om, one file per static batch size), as ATC writes it with ``--output=DIR/<model>_bs<N>``::

    DIR/<model>_bs<N>.om                 e.g. inception_v4_bs4.om
    DIR/<model>_bs<N>_<platform>.om      some CANN versions append a platform suffix (glob <model>_bs<N>*.om)

The Ascend ModelZoo guide names the Cadene 1001-class InceptionV4 ``inceptionv4_bs<N>.om``; that
name is accepted for ``inception_v4_1001`` too (ARTIFACT_ALIASES).

VACC: ``vamc compile <build>.yaml`` writes ``deploy_weights/<name>/mod.*`` (the model prefix vsx.Model
opens is ``.../mod``), <name> being the yaml's ``name:``. Looked for, in this order::

    DIR/deploy_weights/<name>/mod.*      DIR = the folder vamc ran in
    DIR/<name>/mod.*                     DIR = the deploy_weights folder itself
    DIR/<model>-<precision>-<quantisation>-3_<H>_<W>-vacc/<model>.*     e.g. inception_v4-fp16-none-3_299_299-vacc/

<name> comes from ``--runner vacc:build=FILE.yaml`` when given, else it is the model zoo's name for the
registry model at that precision (its build yaml's base name: timm_inceptionv4_fp16, official_iresnet_int8,
...; zoogate.vamc.BUILD_MODELS). The last layout is only looked for without a build yaml.
vdsp params: ``--runner vacc:vdsp_params=FILE``, else in the build folder ``vdsp_params.json`` or the
model zoo's file name (``<source>-<model>-vdsp_params.json``, VDSP_PARAMS_NAMES), else the same two names
``<model>-vdsp_params.json`` / the model zoo's in DIR, else the one ``DIR/*-<model>-vdsp_params.json``.

A missing artifact raises ArtifactMissing (a ZoogateError) whose message names the file that was
expected and how to build it; the pytest plugin turns it into a skip with that message.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoogate.errors import ZoogateError
from zoogate.vamc import BUILD_MODELS, BuildConfig, model_for

# registry model -> other names its compiled artifacts carry in vendor guides
ARTIFACT_ALIASES: dict[str, tuple[str, ...]] = {
    # the Ascend guide builds it with atc ... --output=inceptionv4_bs${bs}
    "inception_v4_1001": ("inceptionv4",),
}


# registry model -> the model zoo's vdsp_params file for it (build_in/vdsp_params/ of its model folder)
VDSP_PARAMS_NAMES: dict[str, str] = {
    "inception_v4": "timm-inception_v4-vdsp_params.json",
    "inception_v4_ppcls": "ppcls-inception_v4-vdsp_params.json",
    "inception_v3": "timm-inception_v3-vdsp_params.json",
    "tf_inception_v3": "timm-tf_inception_v3-vdsp_params.json",
    "adv_inception_v3": "timm-adv_inception_v3-vdsp_params.json",
    "gluon_inception_v3": "timm-gluon_inception_v3-vdsp_params.json",
    "inception_v3_tv": "torchvision-inception_v3-vdsp_params.json",
    "inception_v3_ppcls": "ppcls-inception_v3-vdsp_params.json",
    "iresnet50": "official-iresnet50-vdsp_params.json",
    "iresnet101": "official-iresnet101-vdsp_params.json",
    "iresnet152": "official-iresnet152-vdsp_params.json",
    "iresnet200": "official-iresnet200-vdsp_params.json",
}
MODEL_PREFIX = "mod"              # vamc's model files: deploy_weights/<name>/mod.*


class ArtifactMissing(ZoogateError):
    """No compiled model for (model, runner, batch size) under --model-dir."""


@dataclass
class ArtifactRequest:
    """What a runner's ``artifact(request)`` is asked for: a registry model at a batch size with the runner's
    options, from the session's ``zoo`` (zoogate.plugin.models.Zoo: modules and ONNX exports) or --model-dir.

    ``weights_identity`` is filled in by ``onnx()`` when the file is our export of the zoo's weights (a
    user's --onnx file has no known weights); the loader gives it to the loaded runner.
    """

    zoo: Any
    model: str
    bs: int
    options: dict = field(default_factory=dict)
    model_dir: str | os.PathLike | None = None
    weights_identity: str | None = None

    def module(self):
        """The model's PyTorch module (a zoogate.weights.LoadedModel)."""
        return self.zoo.model(self.model)

    def onnx(self) -> Path:
        """A user's --onnx file for the model, else our ONNX export of the zoo's module (cached)."""
        path = self.zoo.onnx(self.model)
        if self.model not in self.zoo.onnx_files:
            self.weights_identity = self.zoo.model(self.model).weights_identity
        return path

    @property
    def input_size(self) -> int:
        from zoogate import baselines

        return baselines.model(self.model).input_size


@dataclass(frozen=True)
class VaccArtifact:
    """A VACC build: the model prefix vsx.Model opens, its vdsp_params JSON, the build precision and,
    when one was given, the vamc build config it was compiled from."""

    prefix: Path
    vdsp_params: Path
    precision: str
    build: BuildConfig | None = None

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


def vacc_build_names(model: str, precision: str) -> list[str]:
    """The model zoo's build names (the yaml's ``name:``) for a registry model at a precision."""
    return [f"{base}_{precision}" for base, registry_model in BUILD_MODELS.items() if registry_model == model]


def _has_files(folder: Path, stem: str) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.glob(f"{stem}.*"))


def find_vacc(model_dir: str | os.PathLike | None, model: str, precision: str | None = None, *,
              build: BuildConfig | None = None, vdsp_params: str | os.PathLike | None = None) -> VaccArtifact:
    """The VACC build (model prefix + vdsp params) for model under model_dir, per the convention above.

    ``precision`` defaults to the build config's backend.dtype, else fp16; ``build`` is a parsed
    ``--runner vacc:build=FILE.yaml``; ``vdsp_params`` an explicit ``--runner vacc:vdsp_params=FILE``.
    """
    if build is not None:
        built_for = model_for(build)
        if built_for is not None and built_for != model:
            raise ArtifactMissing(f"the vamc build config {build.path} (name {build.name}) is for {built_for}, "
                                  f"not {model}: run {model} with its own build config (--models {built_for} "
                                  f"for this one)")
        if precision is not None and precision != build.precision:
            raise ZoogateError(f"--runner vacc:precision={precision} but the build config's backend.dtype is "
                               f"{build.precision}: drop one", build.path)
        precision = build.precision
        names = [build.name]
    else:
        precision = precision or "fp16"
        names = vacc_build_names(model, precision)
    legacy = vacc_build_glob(model, precision)
    layouts = ([f"deploy_weights/{n}/{MODEL_PREFIX}.*" for n in names] + [f"{n}/{MODEL_PREFIX}.*" for n in names]
               + ([] if build is not None else [f"{legacy}/{model}.*"]))
    if model_dir is None:
        raise ArtifactMissing(f"runner vacc needs compiled models: pass --model-dir DIR holding "
                              f"{' or '.join(layouts)} (the output of vamc compile <build>.yaml) and the vdsp params "
                              f"{VDSP_PARAMS_NAMES.get(model, f'<source>-{model}-vdsp_params.json')}")
    base = Path(model_dir)
    if not base.is_dir():
        raise ZoogateError("--model-dir is not a directory (a typo would otherwise skip every test)", base)
    found = [folder / MODEL_PREFIX for n in names for folder in (base / "deploy_weights" / n, base / n)
             if _has_files(folder, MODEL_PREFIX)]
    if build is None:
        found += [d / model for d in sorted(base.glob(legacy)) if _has_files(d, model)]
    if not found:
        if build is not None:
            yaml_hint = str(build.path)
        elif names:
            yaml_hint = (f"the model zoo's {names[0].rsplit('_', 1)[0]}.yaml with name: {names[0]} and "
                         f"backend.dtype: {precision}")
        else:
            yaml_hint = (f"a build yaml for {model} with backend.dtype: {precision}; "
                         f"pass it as --runner vacc:build=FILE.yaml")
        raise ArtifactMissing(f"no VACC build for {model} ({precision}): expected "
                              f"{' or '.join(str(base / layout) for layout in layouts)}; "
                              f"build it with: vamc compile <build>.yaml ({yaml_hint}), run in {base}")
    if len(found) > 1:
        raise ZoogateError(f"several VACC builds for {model} ({precision}): {[str(p) for p in found]}; keep one "
                           f"(or name the build with --runner vacc:build=FILE.yaml)", base)
    prefix = found[0]
    return VaccArtifact(prefix=prefix, vdsp_params=_find_vdsp(base, prefix.parent, model, vdsp_params),
                        precision=precision, build=build)


def _find_vdsp(base: Path, build_dir: Path, model: str, explicit: str | os.PathLike | None) -> Path:
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ZoogateError("vdsp params file not found (--runner vacc:vdsp_params=FILE)", path)
        return path
    zoo_name = VDSP_PARAMS_NAMES.get(model)
    candidates = [build_dir / "vdsp_params.json", *([build_dir / zoo_name] if zoo_name else []),
                  base / f"{model}-vdsp_params.json", *([base / zoo_name] if zoo_name else [])]
    found = next((c for c in candidates if c.is_file()), None)
    if found is not None:
        return found
    sourced = sorted(base.glob(f"*-{model}-vdsp_params.json"))
    if len(sourced) > 1:
        raise ZoogateError(f"several vdsp params files for {model}: {[p.name for p in sourced]}; keep one "
                           f"(or pass --runner vacc:vdsp_params=FILE)", base)
    if sourced:
        return sourced[0]
    raise ArtifactMissing(f"no vdsp params for the VACC build {build_dir}: expected one of "
                          f"{', '.join(str(c) for c in candidates)} (or {base}/<source>-{model}-vdsp_params.json, "
                          f"as the model zoo names them; or --runner vacc:vdsp_params=FILE)")
