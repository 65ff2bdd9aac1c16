"""Weights: real checkpoints when a user points at them, else deterministic calibrated weights.

Calibrated weights = seeded init, then BatchNorm running statistics re-estimated (cumulative average,
momentum=None) on generated images through the model's reference preprocessing. Random init alone gives
logits of ~1e11 in eval mode; after calibration logits have a realistic spread (std ~1-10), which makes
agreement and accuracy numbers meaningful. Calibrations are cached on disk (zoogate.cache).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from zoogate import baselines, cache, models, synthetic
from zoogate.baselines import ModelBaseline
from zoogate.errors import ZoogateError
from zoogate.weights_recipe import CALIBRATION, DEFAULT_SEED

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".pth.tar", ".safetensors", ".bin")


@dataclass
class LoadedModel:
    name: str
    module: nn.Module          # eval mode, float32, CPU
    origin: str                # "calibrated (seed 0, ...)" or "checkpoint FILE (sha256 ...)"
    weights_id: str            # short hash naming these exact weights (cache keys, golden manifests)
    baseline: ModelBaseline
    weights_identity: str = ""  # the weights in a BuildIdentity: "sha256:<hex>" or "calibrated, seed N, ..."

    @property
    def calibrated(self) -> bool:
        return self.origin.startswith("calibrated")


# ---------------------------------------------------------------- real checkpoints

def _read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ZoogateError("weights file not found", path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ZoogateError(f"not a readable safetensors file ({exc})", path) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:    # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        full = str(exc)
        object_markers = ("GLOBAL", "Unsupported global", "unrecognized function", "safe_globals")
        if any(m in full for m in object_markers):
            what = next((ln.strip() for ln in full.splitlines() if any(m in ln for m in object_markers)), "")
            raise ZoogateError("refused: the checkpoint needs unpickling arbitrary Python objects "
                               f"(torch.load weights_only=True rejected it: {what[:200]}); save a plain state_dict",
                               path) from None
        text = next((ln.strip() for ln in full.splitlines() if "Unsupported" in ln), full.splitlines()[0] if full
                    else type(exc).__name__)
        raise ZoogateError(f"not a readable PyTorch checkpoint ({text})", path) from None
    for wrapper in ("state_dict", "model", "model_state_dict", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ZoogateError("checkpoint is not a state_dict (a mapping of names to tensors)", path)
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_checkpoint_into(module: nn.Module, path: Path) -> None:
    state = _read_checkpoint(path)
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shape_mismatch = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shape_mismatch:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {missing[:3]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[:3]}")
        if shape_mismatch:
            k = shape_mismatch[0]
            parts.append(f"{len(shape_mismatch)} shape mismatch(es), e.g. {k}: file {tuple(state[k].shape)} "
                         f"vs model {tuple(own[k].shape)}")
        raise ZoogateError("checkpoint does not fit the model: " + "; ".join(parts), path)
    module.load_state_dict(state, strict=True, assign=True)     # module may be a meta-device skeleton


def resolve_weights(name: str, specs: list[str] | None) -> Path | None:
    """--weights values: 'NAME=FILE' entries win; a DIR is searched for <name>.<suffix>."""
    specs = specs or []
    for spec in specs:
        key, sep, value = spec.partition("=")
        if sep and key == name:
            return Path(value)
    for spec in specs:
        if "=" in spec:
            continue
        folder = Path(spec)
        if not folder.is_dir():
            raise ZoogateError("--weights: not a directory (use NAME=FILE for a single file)", folder)
        for suffix in CHECKPOINT_SUFFIXES:
            if (folder / f"{name}{suffix}").is_file():
                return folder / f"{name}{suffix}"
    return None


# ---------------------------------------------------------------- calibration

def calibration_batches(mb: ModelBaseline) -> list[torch.Tensor]:
    from zoogate.preprocess.reference import preprocess_batch

    n = CALIBRATION["batches"] * CALIBRATION["batch_size"]
    imgs = synthetic.images(n, seed=CALIBRATION["image_seed"])
    arr = preprocess_batch(imgs, mb.preprocess)
    return [torch.from_numpy(b) for b in np.split(arr, CALIBRATION["batches"])]


@torch.no_grad()
def calibrate_batchnorm(module: nn.Module, batches: list[torch.Tensor]) -> nn.Module:
    """Re-estimate every BatchNorm's running mean/var as the exact average over ``batches``."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    module.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None        # cumulative moving average: equal weight for every batch
        bn.train()
    for batch in batches:
        module(batch)
    for bn in bns:
        bn.momentum = 0.1
    return module.eval()


def classifier(module: nn.Module, num_classes: int) -> nn.Linear:
    """The final classifier: the last Linear producing num_classes (skips torchvision's aux head)."""
    heads = [m for m in module.modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
    if not heads:
        raise ValueError(f"no Linear layer with {num_classes} outputs in {type(module).__name__}")
    return heads[-1]


@torch.no_grad()
def calibrate_classifier(module: nn.Module, head: nn.Linear, batches: list[torch.Tensor], target_std: float,
                         directions: int = CALIBRATION["head_directions"],
                         whiten: float = CALIBRATION["head_whiten"]) -> nn.Module:
    """Centre the classifier on the calibration images and make it read the directions in which they differ.

    With random weights every class sees the same all-positive (post-ReLU) mean feature, so one class wins
    for every image; and a random head reads all of the feature's dimensions alike, most of which carry no
    difference between images, only the rounding that every layer adds. A reduced-precision build (int8:
    ~14 % relative feature noise on a random iresnet50) then flips the top-1 of most images, where a trained
    classifier, which reads the few directions that separate images, keeps it. So: mu = the mean feature,
    P = the ``directions`` leading principal directions of the centred features (singular values S), and
    W' = s * (W P^T) diag(S^-whiten) P, b' = -W' mu: the head's own seeded weights projected onto those
    directions, reweighted by ``whiten`` (0, the default, keeps the variance ordering, which kept int8's flips
    smallest; 1 weighs every direction alike and lets more classes win); s scales the logits' std to ``target_std``.
    """
    feats: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, inp, _out: feats.append(inp[0].detach()))
    try:
        for batch in batches:
            module(batch)
    finally:
        hook.remove()
    f = torch.cat(feats).double()
    mu = f.mean(0)
    _u, sv, vt = torch.linalg.svd(f - mu, full_matrices=False)
    k = max(1, min(directions, int((sv > sv[0] * 1e-6).sum())))
    basis = vt[:k]                                             # (k, features)
    weight = (head.weight.double() @ basis.T) / (sv[:k] / len(f) ** 0.5) ** whiten @ basis
    scale = target_std / float(((f - mu) @ weight.T).std())
    head.weight.copy_((weight * scale).to(head.weight.dtype))
    head.bias.copy_(-(head.weight.double() @ mu).to(head.bias.dtype))
    return module


def logit_std(module: nn.Module, batch: torch.Tensor) -> float:
    with torch.no_grad():
        return float(module(batch).float().std())


def _calibration_parts(mb: ModelBaseline, seed: int) -> dict:
    """What decides calibrated weights. timm pretrained tags (inception_v3.tf_in1k, .gluon_in1k, ...) share
    one architecture: keyed on the architecture, not the registry name, so same-architecture rows share one
    calibration. numpy and Pillow make the generated calibration images."""
    import PIL

    return {"architecture": mb.builder.split(".")[0], "num_classes": mb.num_classes, "seed": seed,
            "calibration": CALIBRATION, "preprocess": mb.preprocess.describe(), **cache.versions(),
            "images": {"numpy": np.__version__, "Pillow": PIL.__version__}}


def calibrated_identity(seed: int, weights_id: str) -> str:
    """How calibrated weights show in a BuildIdentity: the seed, the settings and the key of all the parts."""
    c = CALIBRATION
    return (f"calibrated, seed {seed}, v{c['version']} on {c['batches']}x{c['batch_size']} generated images, "
            f"key {weights_id}")


def weights_identity(name: str, weights: str | os.PathLike | list[str] | None = None, seed: int = 0) -> str:
    """The weights ``load_model(name, weights, seed)`` would load, as a BuildIdentity names them, without
    building the model: a checkpoint's sha256, or the calibration's key."""
    from zoogate.identity import file_digest

    path = resolve_weights(name, weights) if isinstance(weights, list) else (Path(weights) if weights else None)
    if path is not None:
        if not path.is_file():
            raise ZoogateError("weights file not found", path)
        return file_digest(path)
    return calibrated_identity(seed, cache.key(_calibration_parts(baselines.model(name), seed)))


def _calibrated_state(name: str, seed: int) -> tuple[dict[str, torch.Tensor], str]:
    from safetensors.torch import load_file, save_file

    mb = baselines.model(name)
    parts = _calibration_parts(mb, seed)

    def produce(tmp: Path) -> None:
        batches = calibration_batches(mb)
        module = calibrate_batchnorm(models.build(name, seed=seed), batches)
        calibrate_classifier(module, classifier(module, mb.num_classes), batches, CALIBRATION["target_logit_std"])
        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp))

    path, _hit = cache.cached("weights", parts, ".safetensors", produce, label=name)
    return load_file(str(path)), cache.key(parts)


def load_model(name: str, weights: str | os.PathLike | list[str] | None = None, seed: int = DEFAULT_SEED) -> LoadedModel:
    """Registry model ``name`` ready for inference: real checkpoint if given, else calibrated weights.

    ``weights`` is a checkpoint path, or the list of --weights specs (DIR or NAME=FILE).
    """
    mb = baselines.model(name)
    path = resolve_weights(name, weights) if isinstance(weights, list) else (Path(weights) if weights else None)
    module = models.skeleton(name)           # every tensor comes from the checkpoint or the cached calibration
    if path is not None:
        load_checkpoint_into(module, path)
        from zoogate.identity import file_digest

        identity = file_digest(path)
        digest = identity.removeprefix("sha256:")
        return LoadedModel(name, module.eval(), f"checkpoint {path} (sha256 {digest[:12]})", digest[:20], mb,
                           identity)
    state, weights_id = _calibrated_state(name, seed)
    module.load_state_dict(state, strict=True, assign=True)
    origin = (f"calibrated (seed {seed}; BatchNorm statistics and a classifier on the leading feature directions, "
              f"from "
              f"{CALIBRATION['batches']}x{CALIBRATION['batch_size']} generated images)")
    return LoadedModel(name, module.eval(), origin, weights_id, mb, calibrated_identity(seed, weights_id))
