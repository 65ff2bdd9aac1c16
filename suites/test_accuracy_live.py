"""Live accuracy: models through runners over a labelled set, with the model's reference preprocessing.

Without ImageNet (CI): a generated set in the exact ImageNet layout, labelled by the PyTorch fp32 reference
running the whole live path (reader, preprocessing, torch runner, top-k); every other runner then runs the
same path and is gated on agreement with the reference (top-1 >= 99 % of its top-1). The documented-baseline
gates skip: "no ImageNet: pass --imagenet DIR".

With ``--imagenet DIR [--limit N] [--resume] [--baseline-row ROW]`` (and ``--weights`` for real numbers) the
documented top-1/top-5 gates run for each (model, runner, bs), e.g.
``pytest -m ascend --bs 4 --models inception_v4_1001 --imagenet /data/imageNet --baseline-row ascend-310p3``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hardware import registry
from hardware.base import Runner
from zoogate.accuracy import attach_pipeline
from zoogate.gates.accuracy import (build_identity_gate, documented_gate, label_offset_gate, reference_gate,
                                    skip_no_imagenet)
from zoogate.identity import BuildMismatch
from zoogate.errors import ZoogateError
from zoogate.plugin.accuracy import REFERENCE_RUNNER
from zoogate.record import FAIL

pytestmark = pytest.mark.runner_cases(models=["iresnet50", "inception_v4"], bs=[8])


# the reference runner made the labels through this same live path: comparing it with itself could not fail
@pytest.mark.runner_cases(runners=[r for r in registry.names() if r != REFERENCE_RUNNER])
def test_generated_set_top1_vs_reference(runner_case, zoo, loaded_runner, generated_sets, live_eval, gate_log):
    generated = generated_sets.get(runner_case.model)
    result = live_eval.run(runner_case.model, loaded_runner, generated.dataset, runner_case.bs, persist=False)
    gate_log(attach_pipeline(reference_gate(runner_case.model, result, generated.reference,
                                            runner=runner_case.runner, bs=runner_case.bs), result))


class ChannelSwap(Runner):
    """A deployment whose preprocessing hands the model BGR: the same runner, channels reversed."""

    def __init__(self, inner: Runner):
        super().__init__()
        self.inner, self.name, self.batch_size = inner, f"{inner.name}-bgr", inner.batch_size

    @classmethod
    def available(cls):
        return True, ""

    def load(self, artifact, batch_size):
        return self

    def _infer(self, batch):
        return self.inner.infer(np.ascontiguousarray(batch[:, ::-1]))


@pytest.mark.parametrize("model", ["iresnet50"])
def test_bgr_preprocessing_fails_reference_agreement(model, generated_sets, runner_loader, live_eval):
    generated = generated_sets.get(model)
    runner = ChannelSwap(runner_loader.load(model, "onnxruntime", 8))
    result = live_eval.run(model, runner, generated.dataset, 8, persist=False)
    rec = reference_gate(model, result, generated.reference, runner=runner.name, bs=8)
    assert rec.status == FAIL, rec.explain()
    assert rec.details["disagreeing_images"] > 0 and "< floor" in rec.reason


# ---------------------------------------------------------------- ImageNet (--imagenet DIR)

CHECKS = ["top1", "top5", "label_offset", "top1_vs_reference"]


@pytest.mark.parametrize("check", CHECKS)
def test_imagenet_accuracy(runner_case, check, imagenet_set, accuracy_options, runner_loader, live_eval, gate_log):
    if imagenet_set is None:
        gate_log(skip_no_imagenet(runner_case.model, check, runner=runner_case.runner, bs=runner_case.bs))
    model, bs = runner_case.model, runner_case.bs
    runner = runner_loader.load(runner_case)
    try:
        result = live_eval.run(model, runner, imagenet_set, bs)
    except BuildMismatch as refusal:         # --resume offered another build's partial results
        gate_log(build_identity_gate(model, refusal, runner=runner_case.runner, bs=bs))
    summary = result.summary()
    if check in ("top1", "top5"):
        try:
            rec = documented_gate(model, summary, check, accuracy_options.baseline_row, runner=runner_case.runner, bs=bs)
        except ZoogateError as exc:
            pytest.fail(f"--baseline-row: {exc}", pytrace=False)
    elif check == "label_offset":
        rec = label_offset_gate(model, summary, runner=runner_case.runner, bs=bs)
    else:
        if runner_case.runner == REFERENCE_RUNNER:
            pytest.skip(f"{REFERENCE_RUNNER} is the fp32 reference itself")
        reference = live_eval.reference(model, imagenet_set)      # this build's: saved, or computed now
        if reference is None:
            pytest.skip(f"no fp32 reference runner for {model} in this session: run --runner {REFERENCE_RUNNER} "
                        f"with the same --imagenet/--limit")
        rec = reference_gate(model, result, reference, runner=runner_case.runner, bs=bs)
    rec.details["dataset"] = imagenet_set.describe()
    gate_log(attach_pipeline(rec, result))


def test_imagenet_option_runs_the_documented_gate(tmp_path):
    """`pytest --imagenet DIR --limit N` end to end on a folder in the ImageNet layout (arbitrary labels, so the
    calibrated-weights model must FAIL the documented 77.168 % and say so with its interval)."""
    from zoogate import synthetic
    from zoogate.datasets import write_imagenet_layout

    write_imagenet_layout(tmp_path / "imageNet", synthetic.images(12, seed=900), [i % 4 for i in range(12)])
    args = [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            "-W", "ignore::DeprecationWarning", "-k", "test_imagenet_accuracy and top1 and not reference",
            "--imagenet", str(tmp_path / "imageNet"), "--limit", "8", "--models", "iresnet50",
            "--runner", "onnxruntime", "--bs", "4", "--gate-report", str(tmp_path / "report.json")]
    run = subprocess.run(args, cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed" in run.stdout
    assert "on a subset of 8 images: Wilson 99% interval" in run.stdout
    assert "excludes documented 77.168 %" in run.stdout


def test_resume_of_another_builds_partial_results_fails_the_run(tmp_path):
    """`pytest --imagenet DIR --resume` where the saved partial results of (model, runner, bs) are another
    build's: the run FAILs a build_identity record naming what differs, and continues nothing."""
    from zoogate import baselines, cache, partial_results, synthetic
    from zoogate.datasets import open_dataset, write_imagenet_layout
    from zoogate.identity import BuildIdentity

    write_imagenet_layout(tmp_path / "imageNet", synthetic.images(8, seed=901), [i % 4 for i in range(8)])
    dataset = open_dataset(tmp_path / "imageNet")
    other = BuildIdentity(model="iresnet50", artifact="sha256:" + "0" * 64, weights="sha256:" + "0" * 64,
                          runner="torch", precision="fp32", preprocess=baselines.model("iresnet50").preprocess.describe(),
                          dataset=dataset.fingerprint())    # the torch runner: the cheapest to load
    planted = partial_results.state_file_for(cache.root() / "accuracy", other, 4)
    partial_results.save_state(planted, partial_results.state_meta(other, dataset, 4), np.zeros((4, 5)), np.zeros(4, bool), 1000)
    args = [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            "-W", "ignore::DeprecationWarning", "-k", "test_imagenet_accuracy and top1 and not reference",
            "--imagenet", str(tmp_path / "imageNet"), "--resume", "--models", "iresnet50", "--runner", "torch",
            "--bs", "4", "--cache-dir", str(cache.root()), "--gate-report", str(tmp_path / "report.json")]
    try:
        run = subprocess.run(args, cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
                             timeout=600)
    finally:
        planted.unlink(missing_ok=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "[FAIL] accuracy:build_identity:iresnet50-torch-bs4" in run.stdout
    assert ("saved partial results are from another build: artifact: saved sha256:000000000000.., now calibrated, "
            "seed 0") in run.stdout
