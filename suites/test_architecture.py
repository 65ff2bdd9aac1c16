"""Architecture conformance: parameters, FLOPs, input/output shapes and class count for every model.

torch is imported inside the tests: collecting this module (every pytest run does, a lab command that skips
everything too) does not pay for it."""

from __future__ import annotations

import pytest

from zoogate import baselines
from zoogate.gates import architecture
from zoogate.record import FAIL


@pytest.fixture(scope="module")
def built():
    """Architectures only, built once per module on the meta device: parameter counts, FLOPs and shapes need
    no values, so neither init nor calibration is paid for."""
    from zoogate import models

    cache: dict[str, nn.Module] = {}

    def get(name: str) -> nn.Module:
        if name not in cache:
            cache[name] = models.skeleton(name)
        return cache[name]

    return get


def test_params(torch_model_name, built, gate_log):
    gate_log(architecture.params_gate(torch_model_name, built(torch_model_name)))


def test_flops(torch_model_name, built, gate_log):
    gate_log(architecture.flops_gate(torch_model_name, built(torch_model_name)))


def test_io_shape(torch_model_name, built, gate_log):
    gate_log(architecture.io_gate(torch_model_name, built(torch_model_name)))


def test_class_count(torch_model_name, built, gate_log):
    from torch import nn

    head = [m for m in built(torch_model_name).modules() if isinstance(m, nn.Linear)][-1]
    gate_log(architecture.class_count_gate(torch_model_name, head.out_features))


def test_user_onnx_io(onnx_model_name, zoo, gate_log):
    """PaddleClas / MindSpore rows: shapes of the user's ONNX file (skips until --onnx NAME=PATH)."""
    for record in architecture.onnx_io_gates(onnx_model_name, zoo.onnx(onnx_model_name)):
        gate_log(record)


# ---- self-tests: the gates must fail on the faults they exist for

def test_selftest_params_gate_catches_a_removed_block():
    from torch import nn

    from zoogate import models

    module = models.skeleton("iresnet50")       # as the suite's gates see it: the meta-device architecture
    stage = list(module.layer3)
    module.layer3 = nn.Sequential(*stage[:2], *stage[3:])      # drop one middle block
    rec = architecture.params_gate("iresnet50", module)
    assert rec.status == FAIL, rec.explain()
    assert rec.measured < baselines.model("iresnet50").params_m


def test_selftest_class_count_gate_catches_1001_vs_1000():
    assert architecture.class_count_gate("inception_v4", 1001).status == FAIL
    assert architecture.class_count_gate("inception_v4_1001", 1000).status == FAIL


def test_selftest_io_gate_catches_wrong_head():
    from torch import nn

    from zoogate import models

    module = models.skeleton("iresnet50")
    module.fc = nn.Linear(module.fc.in_features, 1001, device="meta")
    assert architecture.io_gate("iresnet50", module).status == FAIL


def test_selftest_flops_gate_catches_wrong_input_size(monkeypatch):
    """A model evaluated at 224 px instead of the documented 299 counts ~44 % fewer FLOPs."""
    from zoogate import models

    module = models.skeleton("inception_v3")
    real = architecture.count_gflops
    monkeypatch.setattr(architecture, "count_gflops", lambda m, size: real(m, 224))
    assert architecture.flops_gate("inception_v3", module).status == FAIL


def test_iresnet_param_counts_equal_the_documented_ones():
    """The acceptance numbers: 25.557 / 44.549 / 60.193 / 64.674 M, to the documented 3 decimals."""
    from zoogate import models

    for name in ("iresnet50", "iresnet101", "iresnet152", "iresnet200"):
        measured = round(models.count_params_m(models.skeleton(name)), 3)
        assert measured == baselines.model(name).params_m, name


def test_iresnet_forward_is_deterministic_per_seed():
    import torch

    from zoogate import models

    a, b = models.build("iresnet50", seed=3), models.build("iresnet50", seed=3)
    x = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
