"""The fault matrix: planted deployment faults, each run end to end through the real gate named for it.

Every entry plants one fault a real port has shipped with (BGR input, a wrong resize, a 1000-vs-1001
label offset, a cached or slowed runner...), runs the same library gate the suite runs on a healthy
deployment, and returns that gate's GateRecord. suites/test_fault_matrix.py requires each record to be a
FAIL from the named gate; `zoogate faults` prints the matrix as the Markdown table the README carries.

The planted runners (zoogate.planted_runners) wrap a real runner and are named for their fault; the reuse
rows are in zoogate.faults_reuse. Backends add rows of their own (hardware.base.Backend ``faults``, through
hardware.registry.faults()); those come last and may use ``primary_onnx`` and ``fp32_agreement`` (re-exported
here from zoogate.faults_primary).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from hardware import registry
from zoogate import baselines
from zoogate.faults_primary import PREPROCESS_MODEL, PRIMARY, PrimaryModel, fp32_agreement, primary_onnx, scratch  # noqa: F401
from zoogate.faults_bisect import fp16_layer_overflow, perturbed_conv, perturbed_middle_conv, transposed_reshape
from zoogate.faults_reuse import reference_of_other_weights, resumed_from_another_build
from zoogate.planted_runners import (BatchMateRunner, CachingRunner, NHWCAsNCHWRunner,
                                    PlantedRunner, SlowedRunner, TailDroppingRunner)
from zoogate.record import GateRecord


# ---------------------------------------------------------------- the matrix

@dataclass(frozen=True)
class Fault:
    id: str
    fault: str              # what was planted, in the words of a deployment report
    gate: str               # GateRecord.gate that must catch it
    check: str              # GateRecord.check that must report FAIL
    run: Callable[[], GateRecord]
    control: Callable[[], GateRecord] | None = None   # the same gate without the fault: must not FAIL
    bisected: bool = False  # an ONNX candidate: the FAIL must name its first divergent node (zoogate.bisect)


def _preprocessing_fault(variant_pipeline: Callable, runner: str) -> GateRecord:
    """Measure a planted pipeline against the torchvision reference on the fixture images (decoded, and the
    reference run on them, once per process)."""
    from zoogate.preprocess import measured, parity, variants
    from zoogate.gates import preprocessing

    images = measured.shared_fixture_images(variants.decoder_of("reference"))
    dist = parity.measure(variant_pipeline, images, measured.shared_reference(PREPROCESS_MODEL),
                          baselines.model(PREPROCESS_MODEL).preprocess)
    return preprocessing.gate_identical(PREPROCESS_MODEL, runner, dist)


def healthy_preprocessing() -> GateRecord:
    from zoogate.preprocess import variants

    return _preprocessing_fault(variants.build("fast", PREPROCESS_MODEL), "fast")


def matrix_preprocessing(fault_id: str) -> GateRecord:
    """One of zoogate.preprocess.planted.MATRIX_FAULTS planted into the reference (its fast copy)."""
    from zoogate.preprocess import planted, variants

    fault = next(f for f in planted.MATRIX_FAULTS if f.id == fault_id)
    return _preprocessing_fault(fault.pipeline(variants.build("fast", PREPROCESS_MODEL)), f"fast+{fault.id}")


def _matrix_preprocessing_rows() -> tuple[Fault, ...]:
    from zoogate.preprocess.planted import MATRIX_FAULTS

    return tuple(Fault(f.id, f.text, "preprocessing", "max_abs_vs_reference", lambda f=f.id: matrix_preprocessing(f),
                       healthy_preprocessing) for f in MATRIX_FAULTS)


# ---- exact preprocessing gates: every fault of zoogate.preprocess.planted.EXACT_FAULTS x every deployed variant

def exact_preprocessing(variant: str, fault_id: str | None = None) -> GateRecord:
    """The variant (for the preprocessing model) with one exact fault planted (None: unmodified), judged
    on its own recorded outputs."""
    from zoogate.preprocess import measured, planted

    case = measured.case_for(PREPROCESS_MODEL, variant)
    pipeline, overrides = case.pipeline(), {}
    if fault_id is not None:
        fault = next(f for f in planted.EXACT_FAULTS if f.id == fault_id)
        pipeline, overrides = fault.apply(pipeline, case.decoder)
    record = measured.exact_gate(case, pipeline=pipeline, overrides=overrides)
    record.runner = variant if fault_id is None else f"{variant}+{fault_id}"
    return record


def _exact_preprocessing_rows() -> tuple[Fault, ...]:
    from zoogate.preprocess.planted import EXACT_FAULTS
    from zoogate.preprocess.variants import DEPLOYED, decoder_of

    return tuple(Fault(f"{f.id}-into-{v}", f"{f.describe(decoder_of(v))}, in `{v}`", "preprocessing", "expected_outputs",
                       lambda v=v, f=f.id: exact_preprocessing(v, f), lambda v=v: _unmodified(v))
                 for f in EXACT_FAULTS for v in DEPLOYED)


@functools.lru_cache(maxsize=None)
def _unmodified(variant: str) -> GateRecord:
    """The control of every exact fault planted into ``variant``: the same variant, unmodified, judged once."""
    return exact_preprocessing(variant)


def healthy_agreement() -> GateRecord:
    return fp32_agreement(PrimaryModel.ort_runner(4), "onnxruntime")


def nhwc_fed_as_nchw() -> GateRecord:
    return fp32_agreement(NHWCAsNCHWRunner(PrimaryModel.ort_runner(4)), "onnxruntime+NHWC-as-NCHW")


def perturbed_onnx_weight() -> GateRecord:
    """The first conv's weights x 1.01 in the ONNX graph; bisect names that conv."""
    return perturbed_conv(0)


def fp16_overflow(head_scale: float = 3e4) -> GateRecord:
    """A graph whose logits exceed float16's range (65504): the fp16 build returns inf."""
    from zoogate.gates.agreement import agreement_gate

    reference = PrimaryModel.eager(PrimaryModel.images()) * np.float32(head_scale)   # a head scaled past fp16 range
    with np.errstate(over="ignore"):
        candidate = reference.astype(np.float16).astype(np.float32)
    return agreement_gate(PRIMARY, "onnxruntime-fp16", None, reference, candidate, "fp16",
                          source="PyTorch eager fp32")


def label_offset_1001_as_1000(keep: slice = slice(0, 1000)) -> GateRecord:
    """1001-class device outputs whose background column was dropped from the wrong end, then scored."""
    from zoogate import results
    from zoogate.gates import accuracy as accuracy_gates

    logits = PrimaryModel.eager(PrimaryModel.images())
    stems = [f"ILSVRC2012_val_{i + 1:08d}" for i in range(len(logits))]
    labels = dict(zip(stems, logits.argmax(1).tolist()))
    with_background = np.concatenate([np.full((len(logits), 1), -10.0, np.float32), logits], axis=1)
    folder = scratch() / "result_bs4"
    results.write_ais_bench(folder, stems, with_background[:, keep], fmt="txt")
    scored = results.score_folder(folder, labels)
    return accuracy_gates.label_offset_gate(PRIMARY, scored.summary, runner="ascend(results)")


def drops_partial_batch(planted: type = TailDroppingRunner) -> GateRecord:
    from zoogate.gates.agreement import check_partial_batch

    return check_partial_batch(planted(PrimaryModel.ort_runner(4)), PrimaryModel.images(), model=PRIMARY)


def batch_mate_dependence(planted: type = BatchMateRunner) -> GateRecord:
    from zoogate.gates.agreement import check_batch_invariance

    return check_batch_invariance(planted(PrimaryModel.ort_runner(4)), PrimaryModel.images(), model=PRIMARY)


def _quick_settings():
    from zoogate.throughput import MeasureSettings

    return MeasureSettings.from_baselines(warmup_steps=1, min_steps=5, min_duration_s=0.0)


def caching_runner() -> GateRecord:
    from zoogate import throughput
    from zoogate.gates import throughput as gates_throughput

    settings = _quick_settings()
    images = PrimaryModel.images(settings.pairs_max + 1)
    varied, repeated = throughput.window_batches(images[1:], 1), images[:1].copy()
    runner = CachingRunner(PrimaryModel.ort_runner(1))
    return gates_throughput.anti_caching_gate(PRIMARY, runner.name, 1,
                                              throughput.measure_anti_caching(runner, varied, repeated, settings=settings))


def slowed_runner() -> GateRecord:
    """Record this host's fps for the real runner, then measure it again slowed 2x: the floor catches it.

    Measured A B B A (real, slowed, slowed, real) and the faster of each pair kept, so a burst of load from
    another process during one measurement cannot make the slowed runner look as fast as the recorded one."""
    from zoogate import throughput
    from zoogate.gates import throughput as gates_throughput

    settings = _quick_settings()
    batches = throughput.split_batches(PrimaryModel.images(4), 1)
    runner = PrimaryModel.ort_runner(1)
    slowed = SlowedRunner(runner, extra=1.0)
    timed = lambda r: throughput.measure(r, batches, model=PRIMARY, settings=settings)
    real_first, slowed_first, slowed_second, real_second = timed(runner), timed(slowed), timed(slowed), timed(runner)
    storage = scratch()
    fingerprint = {**throughput.host_fingerprint(), "cpu": "fault-matrix host"}
    throughput.save_host_baseline("faultmatrix", [max(real_first, real_second, key=lambda m: m.fps)],
                                  storage=storage, fingerprint=fingerprint)
    saved = throughput.load_host_baseline("faultmatrix", storage=storage, fingerprint=fingerprint)
    return gates_throughput.fps_regression_gate(max(slowed_first, slowed_second, key=lambda m: m.fps), saved)


def removed_block(remove: bool = True) -> GateRecord:
    from torch import nn

    from zoogate import models
    from zoogate.gates import architecture

    module = models.skeleton(PRIMARY)          # the architecture only: a parameter count needs no values
    if remove:
        stage = list(module.layer3)
        module.layer3 = nn.Sequential(*stage[:2], *stage[3:])
    return architecture.params_gate(PRIMARY, module)


def bgr_runner_accuracy(channel_order: str = "BGR") -> GateRecord:
    """A runner whose preprocessing feeds BGR, scored live against the PyTorch fp32 reference run."""
    from zoogate import accuracy, datasets, synthetic
    from zoogate.gates import accuracy as accuracy_gates
    from zoogate.preprocess.reference import preprocess_reference

    spec = baselines.model(PRIMARY).preprocess
    root = scratch()
    imgs = synthetic.images(16, seed=777)
    labels = PrimaryModel.eager(np.stack([preprocess_reference(im, spec) for im in imgs])).argmax(1).tolist()
    dataset = datasets.write_imagenet_layout(root, imgs, labels)
    runner = PrimaryModel.ort_runner(4)
    honest = accuracy.evaluate(runner, dataset, spec, 4, progress=False, model=PRIMARY)
    bgr = dataclasses.replace(spec, channel_order=channel_order)
    planted = accuracy.evaluate(runner, dataset, bgr, 4, progress=False, model=PRIMARY,
                                pipeline=lambda img: preprocess_reference(img, bgr))
    return accuracy_gates.reference_gate(PRIMARY, planted, honest, runner=f"onnxruntime+{channel_order}", bs=4,
                                   reference_name="the same runner with RGB input")


FAULTS: tuple[Fault, ...] = (
    *_matrix_preprocessing_rows(),
    *_exact_preprocessing_rows(),
    Fault("label-offset-1001-as-1000", "1001-class output (background at 0) scored as 1000 classes", "accuracy",
          "label_offset", label_offset_1001_as_1000,
          lambda: label_offset_1001_as_1000(slice(0, 1001))),
    Fault("bgr-runner-accuracy", "a runner whose preprocessing feeds BGR, scored live", "accuracy",
          "top1_vs_reference", bgr_runner_accuracy, lambda: bgr_runner_accuracy("RGB")),
    Fault("nhwc-as-nchw", "NHWC memory fed as NCHW", "agreement", "logits", nhwc_fed_as_nchw, healthy_agreement),
    Fault("perturbed-onnx-weight", "one conv weight in the ONNX graph perturbed by 1 %", "agreement", "logits",
          perturbed_onnx_weight, healthy_agreement, bisected=True),
    Fault("fp16-overflow", "a logit beyond float16 range (65504) in an fp16 build", "agreement", "logits",
          fp16_overflow, lambda: fp16_overflow(head_scale=1.0)),
    Fault("perturbed-middle-conv", "one conv weight in the middle of the graph perturbed by 1 % (bisect names it)",
          "agreement", "logits", perturbed_middle_conv, lambda: perturbed_middle_conv(1.0), bisected=True),
    Fault("fp16-layer-overflow", "a middle layer's activations beyond float16 range (bisect names the first Inf)",
          "agreement", "logits", fp16_layer_overflow, lambda: fp16_layer_overflow(1.0), bisected=True),
    Fault("transposed-reshape", "NHWC reinterpreted as NCHW by a reshape inserted in the graph (bisect names it)",
          "agreement", "logits", transposed_reshape, lambda: transposed_reshape(False), bisected=True),
    Fault("drops-partial-batch", "static-batch runner that drops the last partial batch", "agreement",
          "partial_batch", drops_partial_batch, lambda: drops_partial_batch(PlantedRunner)),
    Fault("batch-mate-dependence", "logits that depend on batch-mates (BatchNorm in training mode)", "agreement",
          "batch_invariance", batch_mate_dependence, lambda: batch_mate_dependence(PlantedRunner)),
    Fault("caching-runner", "runner that caches results of repeated inputs", "throughput", "anti_caching",
          caching_runner),
    Fault("slowed-runner", "runner slowed 2x against this host's recorded floor", "throughput", "fps_regression",
          slowed_runner),
    Fault("removed-block", "one residual block missing from the network definition", "architecture", "params_m",
          removed_block, lambda: removed_block(remove=False)),
    Fault("resumed-other-build", "a live evaluation resumed from another build's partial results (--resume with "
          "a class-0 graph)", "accuracy", "build_identity", resumed_from_another_build,
          lambda: resumed_from_another_build(other_build=False)),
    Fault("reference-other-weights", "a saved fp32 reference run made with other weights, agreeing with a "
          "deployment of those weights", "accuracy", "top1_vs_reference", reference_of_other_weights,
          lambda: reference_of_other_weights(other_weights=False)),
    # last: a backend's rows use Fault and the helpers above
    *registry.faults(),
)


def markdown_table() -> str:
    lines = ["| fault planted | gate that catches it | check | test id |", "|---|---|---|---|"]
    lines += [f"| {f.fault} | {f.gate} | `{f.check}` | `test_fault_is_caught[{f.id}]` |" for f in FAULTS]
    return "\n".join(lines)
