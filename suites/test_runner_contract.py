"""The runner contract, the same tests for every runner.

Parametrized over (model, runner, bs) by zoogate.plugin.runners: torch and onnxruntime run here;
gpu / ascend / vacc params carry their markers and skip with the reason where the hardware is absent
(``pytest -m ascend --bs 4 --model-dir DIR`` runs them on a card). The self-tests at the bottom plant
the faults the contract exists for and assert each check reports FAIL.
"""

from __future__ import annotations

import numpy as np
import pytest

from zoogate.gates import agreement, architecture
from hardware.base import Runner, infer_all
from hardware.torch_runner import TorchRunner
from zoogate import baselines
from zoogate.planted_runners import BatchMateRunner, TailDroppingRunner
from zoogate.record import FAIL, PASS, SKIP

# Every check on the cheap iresnet50; inception_v4 (the primary model, 5x the compute) for the output
# contract and the agreement with eager. --models on the command line replaces both lists.
pytestmark = pytest.mark.runner_cases(models=["iresnet50"])
BOTH_MODELS = pytest.mark.runner_cases(models=["iresnet50", "inception_v4"])
IMAGE_SEED = 500          # generated images the contract runs on
MIN_IMAGES = 8            # 2*bs images, at least 8: one set (and one eager reference) for bs 1 and 4


def _images(zoo, case) -> np.ndarray:
    return zoo.batch(case.model, max(2 * case.bs, MIN_IMAGES), seed=IMAGE_SEED)


@BOTH_MODELS
def test_output_shape_and_dtype(runner_case, loaded_runner, zoo, gate_log):
    num_classes = baselines.model(runner_case.model).num_classes
    gate_log(architecture.check_output_shape(loaded_runner, _images(zoo, runner_case)[:runner_case.bs],
                                         model=runner_case.model, num_classes=num_classes))


@pytest.mark.runner_cases(min_bs=2)
def test_batch_invariance(runner_case, loaded_runner, zoo, gate_log):
    gate_log(agreement.check_batch_invariance(loaded_runner, _images(zoo, runner_case), model=runner_case.model))


def test_determinism(runner_case, loaded_runner, zoo, gate_log):
    gate_log(agreement.check_determinism(loaded_runner, _images(zoo, runner_case)[:runner_case.bs],
                                        model=runner_case.model))


@pytest.mark.runner_cases(min_bs=2)
def test_partial_last_batch(runner_case, loaded_runner, zoo, gate_log):
    gate_log(agreement.check_partial_batch(loaded_runner, _images(zoo, runner_case), model=runner_case.model))


@BOTH_MODELS
def test_agreement_with_eager(runner_case, loaded_runner, zoo, eager_logits, gate_log, bisect_dir):
    from zoogate.bisect import attach_to_runner

    # bs+1 images (at least 5, so bs 1 and 4 share one eager reference): the last batch is partial
    images = _images(zoo, runner_case)[:max(runner_case.bs + 1, 5)]
    reference = eager_logits(runner_case.model, images)
    record = agreement.check_eager_agreement(loaded_runner, images, reference, model=runner_case.model,
                                             source=f"PyTorch eager fp32, {zoo.model(runner_case.model).origin}")
    if record.failed:       # an ONNX candidate names its first divergent node against our fp32 export
        record = attach_to_runner(record, loaded_runner, zoo.onnx(runner_case.model), images, out_dir=bisect_dir)
    gate_log(record)


def test_runner_names_what_it_loaded(runner_case, loaded_runner):
    """Saved results are reused only by the same build (zoogate.identity): every runner names its artifact."""
    artifact = loaded_runner.artifact_id
    assert isinstance(artifact, str) and artifact, f"{runner_case.runner} does not say what it loaded"
    assert artifact.startswith("sha256:") or artifact == loaded_runner.weights_identity


# ------------------------------------------------------------------ self-tests: planted faults

def tiny_net(classes: int = 10):
    """A seeded 10-class CNN on 3x16x16 inputs: cheap stand-in for a classifier in the self-tests (torch is
    imported here, not when the module is collected)."""
    import torch
    from torch import nn

    class TinyNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            gen = torch.Generator().manual_seed(0)
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.fc = nn.Linear(8, classes)
            with torch.no_grad():
                for p in self.parameters():
                    p.copy_(torch.randn(p.shape, generator=gen))

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).mean((2, 3)))

    return TinyNet()


class ShiftedRunner(TorchRunner):
    """Returns the logits shifted by one class (an off-by-one label map, or a dropped background column)."""

    name = "shifted"

    def _infer(self, batch):
        return np.roll(super()._infer(batch), 1, axis=1)


class StaticTorchRunner(TorchRunner):
    """A static-batch runner (like an .om): Runner.infer pads the tail and drops the padding."""

    name = "static"
    static_batch = True


class PaddingKeepingRunner(StaticTorchRunner):
    """Pads the last batch but keeps the wrong rows: the padding instead of the first real images."""

    name = "keeps-padding"

    def infer(self, batch):
        n = len(batch)
        if n == self.batch_size:
            return super().infer(batch)
        padded = np.concatenate([batch, np.repeat(batch[-1:], self.batch_size - n, axis=0)])
        return super().infer(padded)[-n:]


class NoisyRunner(TorchRunner):
    """Different logits on every call (uninitialised memory, a racing reduction)."""

    name = "noisy"

    def __init__(self):
        super().__init__()
        self.rng = np.random.default_rng(0)

    def _infer(self, batch):
        out = super()._infer(batch)
        return out + self.rng.normal(0, 0.1, size=out.shape).astype(np.float32)


class WrongClassesRunner(TorchRunner):
    name = "wrong-classes"

    def _infer(self, batch):
        out = super()._infer(batch)
        return np.concatenate([np.zeros((len(out), 1), np.float32), out], axis=1)


@pytest.fixture(scope="module")
def tiny():
    import torch

    net = tiny_net().eval()
    x = np.random.default_rng(1).normal(size=(8, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    return net, x, ref


def _load(cls, net, bs=4) -> Runner:
    return cls().load(net, bs)


def test_selftest_healthy_runners_pass_every_check(tiny):
    """The control: the same checks PASS on correct runners (dynamic and static batch)."""
    net, x, ref = tiny
    for cls in (TorchRunner, StaticTorchRunner):
        r = _load(cls, net)
        records = [architecture.check_output_shape(r, x[:4], model="tiny", num_classes=10),
                   agreement.check_batch_invariance(r, x, model="tiny"),
                   agreement.check_determinism(r, x[:4], model="tiny"),
                   agreement.check_partial_batch(r, x, model="tiny"),
                   agreement.check_eager_agreement(r, x[:7], ref[:7], model="tiny")]
        assert [rec.status for rec in records] == [PASS] * 5, "\n".join(rec.explain() for rec in records)


def test_selftest_shifted_logits_fail_eager_agreement(tiny):
    net, x, ref = tiny
    record = agreement.check_eager_agreement(_load(ShiftedRunner, net), x, ref, model="tiny")
    assert record.status == FAIL
    assert "top1_agreement" in record.details["failing_statistics"]
    assert "elementwise" in record.details["failing_statistics"]


def test_selftest_batch_mate_dependence_fails_batch_invariance(tiny):
    net, x, _ = tiny
    record = agreement.check_batch_invariance(BatchMateRunner(_load(TorchRunner, net)), x, model="tiny")
    assert record.status == FAIL and record.check == "batch_invariance"
    assert "elementwise" in record.details["failing_statistics"]


@pytest.mark.parametrize("planted, what", [
    (lambda net: TailDroppingRunner(_load(StaticTorchRunner, net)), "dropped"),
    (lambda net: _load(PaddingKeepingRunner, net), None)], ids=["drops-tail", "keeps-padding"])
def test_selftest_mishandled_tail_fails_partial_batch(tiny, planted, what):
    net, x, _ = tiny
    record = agreement.check_partial_batch(planted(net), x, model="tiny")
    assert record.status == FAIL and record.check == "partial_batch"
    if what:
        assert what in record.reason and record.measured == "4 rows"
    else:
        assert "elementwise" in record.details["failing_statistics"]


def test_selftest_nondeterminism_fails_determinism(tiny):
    net, x, _ = tiny
    record = agreement.check_determinism(_load(NoisyRunner, net), x[:4], model="tiny")
    assert record.status == FAIL and record.tolerance.startswith("fp32_same_backend")


def test_selftest_wrong_class_count_fails_output_shape(tiny):
    net, x, _ = tiny
    record = architecture.check_output_shape(_load(WrongClassesRunner, net), x[:4], model="tiny", num_classes=10)
    assert record.status == FAIL and "(4, 11)" in record.reason


def test_selftest_runner_crash_is_a_fail_record(tiny):
    net, x, _ = tiny

    class Crashing(TorchRunner):
        name = "crashing"

        def _infer(self, batch):
            raise RuntimeError("device lost")

    record = architecture.check_output_shape(_load(Crashing, net), x[:4], model="tiny", num_classes=10)
    assert record.status == FAIL and "device lost" in record.reason


def test_selftest_bs1_skips_batch_checks_with_reason(tiny):
    net, x, _ = tiny
    r = _load(TorchRunner, net, bs=1)
    for check in (agreement.check_batch_invariance, agreement.check_partial_batch):
        record = check(r, x, model="tiny")
        assert record.status == SKIP and "--bs 4" in record.reason


def test_selftest_background_column_dropped_against_1000_class_reference(tiny):
    """An 11-column (background + 10) runner agrees with a 10-class reference once column 0 is dropped."""
    net, x, ref = tiny
    r = _load(WrongClassesRunner, net)
    r.background_class = True
    record = agreement.check_eager_agreement(r, x, ref, model="tiny")
    assert record.status == PASS and "background" in record.reason
    r.background_class = False
    assert agreement.check_eager_agreement(r, x, ref, model="tiny").status == FAIL


def test_infer_all_chunks_and_keeps_order(tiny):
    net, x, ref = tiny
    out = infer_all(_load(StaticTorchRunner, net, bs=3), x)
    assert out.shape == (8, 10)
    np.testing.assert_array_equal(out.argmax(1), ref.argmax(1))
