"""The model registry: a baseline entry's ``builder`` string -> an offline-built torch module.

Builders: ``timm:<name>`` (timm.create_model, pretrained=False), ``torchvision:inception_v3``,
``zoogate:<name>`` (our own: iResNet, the Ascend guide's 1001-class InceptionV4), and ``onnx``
(PaddleClas / MindSpore rows: only a user-supplied ONNX file can stand for them).
"""

from __future__ import annotations

import torch
from torch import nn

from zoogate import baselines
from zoogate.errors import ZoogateError
from zoogate.models.iresnet import STAGE_DEPTHS, iresnet


def _timm(name: str, num_classes: int) -> nn.Module:
    import timm

    return timm.create_model(name, pretrained=False, num_classes=num_classes)


def _torchvision_inception_v3(num_classes: int) -> nn.Module:
    from torchvision.models import inception_v3

    # aux head kept: the published checkpoint has it, and the page's 27.2 M counts it.
    # transform_input=False: the page feeds Normalize(0.5, 0.5) tensors straight in.
    return inception_v3(weights=None, aux_logits=True, transform_input=False, init_weights=True,
                        num_classes=num_classes)


def _inception_v4_1001(num_classes: int) -> nn.Module:
    # Cadene's InceptionV4 and timm's inception_v4 share one layout (timm ported it, keeping the
    # `features.*` / `last_linear` names), so the Cadene checkpoint loads into this module.
    return _timm("inception_v4", num_classes)


_OWN_BUILDERS = {"inception_v4_1001": _inception_v4_1001,
                 **{name: (lambda n: (lambda c: iresnet(n, c)))(name) for name in STAGE_DEPTHS}}


def build(name: str, *, seed: int = 0) -> nn.Module:
    """The architecture of registry model ``name`` with deterministic (seeded) init, in eval mode."""
    mb = baselines.model(name)
    kind, _, target = mb.builder.partition(":")
    if kind == "onnx":
        raise ZoogateError(f"model {name} exists only as a user-supplied ONNX file: pass --onnx {name}=PATH")
    outer_rng = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        if kind == "timm":
            module = _timm(target, mb.num_classes)
        elif kind == "torchvision" and target == "inception_v3":
            module = _torchvision_inception_v3(mb.num_classes)
        elif kind == "zoogate" and target in _OWN_BUILDERS:
            module = _OWN_BUILDERS[target](mb.num_classes)
        else:
            raise ZoogateError(f"models.{name}.builder: unknown builder {mb.builder!r}", mb.file)
    finally:
        torch.random.set_rng_state(outer_rng)
    return module.eval()


class _SkipNormalOnMeta(torch.overrides.TorchFunctionMode):
    """``Tensor.normal_`` on the meta device has no kernel: it falls back to a Python decomposition whose first
    call imports torch._dynamo (about 1.7 s). A skeleton's values are never read, so it is skipped there."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (torch.Tensor.normal_, torch.nn.init.normal_) and args and args[0].is_meta:
            return args[0]
        return func(*args, **(kwargs or {}))


def skeleton(name: str) -> nn.Module:
    """The architecture of ``name`` without initialising it (parameters on the meta device): what a state dict
    is loaded into with ``load_state_dict(..., assign=True)``. timm's init of inception_v4 alone takes ~2 s."""
    with torch.device("meta"), _SkipNormalOnMeta():
        return build(name)


def count_params_m(module: nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6
