"""The fault matrix: planted deployment faults, each run end to end through the real gate named for it.

Every entry plants one fault a real port has shipped with (BGR input, a wrong resize, a 1000-vs-1001
label offset, a cached or slowed runner...), runs the same library gate the suite runs on a healthy
deployment, and returns that gate's GateRecord. suites/test_fault_matrix.py requires each record to be a
FAIL from the named gate; `zoogate faults` prints the matrix as the Markdown table the README carries.

The planted runners below wrap a real runner and are named for their fault; nothing here is used by a
healthy run. Backends add rows of their own (hardware.base.Backend ``faults``, through
hardware.registry.faults()); those come last and may use ``primary_onnx`` and ``fp32_agreement``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from hardware import registry
from hardware.base import Runner
from zoogate import baselines
from zoogate.record import FAIL, GateRecord

PRIMARY = "iresnet50"            # cheapest real network (224 px); inception_v4 for preprocessing (342/299)
PREPROCESS_MODEL = "inception_v4"


# ---------------------------------------------------------------- planted runners

class _Wrapper(Runner):
    """A planted fault around a real, loaded runner (keeps its name, batch size, session and build identity:
    the fault is planted in how the same build is run)."""

    def __init__(self, inner: Runner) -> None:
        super().__init__()
        self.inner = inner
        self.name = inner.name
        self.batch_size = inner.batch_size
        self.static_batch = inner.static_batch
        self.session = getattr(inner, "session", None)
        self.precision = inner.precision
        self.artifact_id, self.artifact_path = inner.artifact_id, inner.artifact_path
        self.weights_identity = inner.weights_identity

    @property
    def build_options(self) -> dict:
        return self.inner.build_options

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, "planted fault"

    def load(self, artifact, batch_size: int) -> "Runner":
        return self

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return self.inner._infer(batch)


class SlowedRunner(_Wrapper):
    """Sleeps ``extra`` x its own step time after every call."""

    def __init__(self, inner: Runner, extra: float) -> None:
        super().__init__(inner)
        self.extra = extra

    def _infer(self, batch):
        t0 = time.perf_counter()
        out = self.inner._infer(batch)
        time.sleep(self.extra * (time.perf_counter() - t0))
        return out


class CachingRunner(_Wrapper):
    """Memoises outputs by input bytes: a repeated batch comes back at once (what MLPerf TEST04 hunts)."""

    def __init__(self, inner: Runner) -> None:
        super().__init__(inner)
        self.memo: dict[str, np.ndarray] = {}

    def _infer(self, batch):
        key = hashlib.sha1(batch.tobytes()).hexdigest()
        if key not in self.memo:
            self.memo[key] = self.inner._infer(batch)
        return self.memo[key]


class TailDroppingRunner(_Wrapper):
    """A static-batch runner that silently returns no rows for the padded last partial batch."""

    def infer(self, batch):
        out = super().infer(batch)
        return out[:0] if len(batch) < self.batch_size else out


class BatchMateRunner(_Wrapper):
    """Leaks batch statistics into each image (as a BatchNorm left in training mode does)."""

    def _infer(self, batch):
        return self.inner._infer(batch - batch.mean(axis=0, keepdims=True) * 0.5)


class NHWCAsNCHWRunner(_Wrapper):
    """Hands the engine NHWC memory labelled as NCHW (a missing transpose before a device copy)."""

    def _infer(self, batch):
        n, c, h, w = batch.shape
        return self.inner._infer(np.ascontiguousarray(batch.transpose(0, 2, 3, 1)).reshape(n, c, h, w))


# ---------------------------------------------------------------- the matrix

@dataclass(frozen=True)
class Fault:
    id: str
    fault: str              # what was planted, in the words of a deployment report
    gate: str               # GateRecord.gate that must catch it
    check: str              # GateRecord.check that must report FAIL
    run: Callable[[], GateRecord]
    control: Callable[[], GateRecord] | None = None   # the same gate without the fault: must not FAIL


def _fixture_images():
    from zoogate.preprocess.measured import fixture_images

    return fixture_images()


def _preprocessing_fault(variant_pipeline: Callable, runner: str) -> GateRecord:
    """Measure a planted pipeline against the torchvision reference on the fixture images."""
    from zoogate.preprocess import parity, variants

    images = _fixture_images()
    reference = variants.build("reference", PREPROCESS_MODEL)
    dist = parity.measure(variant_pipeline, images, reference, baselines.model(PREPROCESS_MODEL).preprocess)
    return parity.gate_identical(PREPROCESS_MODEL, runner, dist)


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
                       lambda v=v, f=f.id: exact_preprocessing(v, f), lambda v=v: exact_preprocessing(v))
                 for f in EXACT_FAULTS for v in DEPLOYED)


class _Models:
    """Lazily loaded real artifacts of the primary model (calibrated weights, ONNX export, runners)."""

    _cache: dict = {}

    @classmethod
    def get(cls, key: str, make: Callable):
        if key not in cls._cache:
            cls._cache[key] = make()
        return cls._cache[key]

    @classmethod
    def loaded(cls):
        from zoogate.weights import load_model

        return cls.get("loaded", lambda: load_model(PRIMARY))

    @classmethod
    def onnx(cls) -> Path:
        from zoogate.export import export_onnx

        return cls.get("onnx", lambda: export_onnx(cls.loaded()))

    @classmethod
    def images(cls, n: int = 8) -> np.ndarray:
        from zoogate import synthetic
        from zoogate.preprocess.reference import preprocess_batch

        return cls.get(f"images{n}", lambda: preprocess_batch(synthetic.images(n, seed=4242),
                                                             baselines.model(PRIMARY).preprocess))

    @classmethod
    def eager(cls, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return cls.loaded().module(torch.from_numpy(np.ascontiguousarray(batch))).numpy()

    @classmethod
    def ort_runner(cls, bs: int, path: Path | None = None) -> Runner:
        from hardware.onnxruntime_runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner().load(path or cls.onnx(), bs)


def primary_onnx() -> Path:
    """Our ONNX export of the primary model (calibrated weights, cached)."""
    return _Models.onnx()


def fp32_agreement(runner: Runner, label: str, images: np.ndarray | None = None) -> GateRecord:
    """A loaded runner of the primary model against PyTorch eager, gated as an fp32 build
    (fp32_cross_backend)."""
    from hardware.base import infer_all
    from zoogate.compare import agreement_gate

    images = _Models.images() if images is None else images
    return agreement_gate(PRIMARY, label, runner.batch_size, _Models.eager(images), infer_all(runner, images),
                          "fp32_cross_backend", source="PyTorch eager, calibrated weights")


def healthy_agreement() -> GateRecord:
    return fp32_agreement(_Models.ort_runner(4), "onnxruntime")


def nhwc_fed_as_nchw() -> GateRecord:
    return fp32_agreement(NHWCAsNCHWRunner(_Models.ort_runner(4)), "onnxruntime+NHWC-as-NCHW")


def perturbed_onnx_weight() -> GateRecord:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(_Models.onnx()))
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    init = next(i for i in model.graph.initializer if i.name in conv_weights)
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(1.01), init.name))
    path = Path(tempfile.mkdtemp(prefix="zoogate-fault-")) / "perturbed.onnx"
    onnx.save(model, str(path))
    return fp32_agreement(_Models.ort_runner(4, path), "onnxruntime+1%-weight")


def fp16_overflow(head_scale: float = 3e4) -> GateRecord:
    """A graph whose logits exceed float16's range (65504): the fp16 build returns inf."""
    from zoogate.compare import agreement_gate

    reference = _Models.eager(_Models.images()) * np.float32(head_scale)   # a head scaled past fp16 range
    with np.errstate(over="ignore"):
        candidate = reference.astype(np.float16).astype(np.float32)
    return agreement_gate(PRIMARY, "onnxruntime-fp16", None, reference, candidate, "fp16",
                          source="PyTorch eager fp32")


def label_offset_1001_as_1000(keep: slice = slice(0, 1000)) -> GateRecord:
    """1001-class device outputs whose background column was dropped from the wrong end, then scored."""
    from zoogate import accuracy, results

    logits = _Models.eager(_Models.images())
    stems = [f"ILSVRC2012_val_{i + 1:08d}" for i in range(len(logits))]
    labels = dict(zip(stems, logits.argmax(1).tolist()))
    with_background = np.concatenate([np.full((len(logits), 1), -10.0, np.float32), logits], axis=1)
    folder = Path(tempfile.mkdtemp(prefix="zoogate-fault-")) / "result_bs4"
    results.write_ais_bench(folder, stems, with_background[:, keep], fmt="txt")
    scored = results.score_folder(folder, labels)
    return accuracy.label_offset_gate(PRIMARY, scored.summary, runner="ascend(results)")


def drops_partial_batch(planted: type = TailDroppingRunner) -> GateRecord:
    from hardware.contract import check_partial_batch

    return check_partial_batch(planted(_Models.ort_runner(4)), _Models.images(), model=PRIMARY)


def batch_mate_dependence(planted: type = BatchMateRunner) -> GateRecord:
    from hardware.contract import check_batch_invariance

    return check_batch_invariance(planted(_Models.ort_runner(4)), _Models.images(), model=PRIMARY)


def _quick_settings():
    from zoogate.throughput import MeasureSettings

    return MeasureSettings.from_baselines(warmup_steps=1, min_steps=5, min_duration_s=0.0)


def caching_runner() -> GateRecord:
    from zoogate import throughput

    settings = _quick_settings()
    images = _Models.images(settings.pairs_max + 1)
    varied, repeated = throughput.window_batches(images[1:], 1), images[:1].copy()
    runner = CachingRunner(_Models.ort_runner(1))
    return throughput.anti_caching_gate(PRIMARY, runner.name, 1,
                                        throughput.measure_anti_caching(runner, varied, repeated, settings=settings))


def slowed_runner() -> GateRecord:
    """Record this host's fps for the real runner, then measure it again slowed 2x: the floor catches it."""
    from zoogate import throughput

    settings = _quick_settings()
    batches = throughput.split_batches(_Models.images(4), 1)
    runner = _Models.ort_runner(1)
    storage = Path(tempfile.mkdtemp(prefix="zoogate-fault-"))
    fingerprint = {**throughput.host_fingerprint(), "cpu": "fault-matrix host"}
    throughput.save_host_baseline("faultmatrix", [throughput.measure(runner, batches, model=PRIMARY, settings=settings)],
                                  storage=storage, fingerprint=fingerprint)
    saved = throughput.load_host_baseline("faultmatrix", storage=storage, fingerprint=fingerprint)
    slowed = SlowedRunner(runner, extra=1.0)
    return throughput.fps_regression_gate(throughput.measure(slowed, batches, model=PRIMARY, settings=settings), saved)


def removed_block(remove: bool = True) -> GateRecord:
    from torch import nn

    from zoogate import architecture, models

    module = models.build(PRIMARY)
    if remove:
        stage = list(module.layer3)
        module.layer3 = nn.Sequential(*stage[:2], *stage[3:])
    return architecture.params_gate(PRIMARY, module)


def bgr_runner_accuracy(channel_order: str = "BGR") -> GateRecord:
    """A runner whose preprocessing feeds BGR, scored live against the PyTorch fp32 reference run."""
    from zoogate import accuracy, datasets, synthetic
    from zoogate.preprocess.reference import preprocess_reference

    spec = baselines.model(PRIMARY).preprocess
    root = Path(tempfile.mkdtemp(prefix="zoogate-fault-"))
    imgs = synthetic.images(16, seed=777)
    labels = _Models.eager(np.stack([preprocess_reference(im, spec) for im in imgs])).argmax(1).tolist()
    dataset = datasets.write_imagenet_layout(root, imgs, labels)
    runner = _Models.ort_runner(4)
    honest = accuracy.evaluate(runner, dataset, spec, 4, progress=False, model=PRIMARY)
    bgr = dataclasses.replace(spec, channel_order=channel_order)
    planted = accuracy.evaluate(runner, dataset, bgr, 4, progress=False, model=PRIMARY,
                                pipeline=lambda img: preprocess_reference(img, bgr))
    return accuracy.reference_gate(PRIMARY, planted, honest, runner=f"onnxruntime+{channel_order}", bs=4,
                                   reference_name="the same runner with RGB input")


# ---------------------------------------------------------------- reuse across builds (zoogate.identity)

REUSE_IMAGES, REUSE_BS = 4, 2


class InterruptedRunner(_Wrapper):
    """The same build, stopped by Ctrl-C (KeyboardInterrupt) once ``batches`` batches have run."""

    def __init__(self, inner: Runner, batches: int) -> None:
        super().__init__(inner)
        self.left = batches

    def _infer(self, batch):
        if self.left <= 0:
            raise KeyboardInterrupt
        self.left -= 1
        return self.inner._infer(batch)


def _reuse_set():
    """REUSE_IMAGES generated JPEGs in the ImageNet layout, labelled with this build's top-1 through the live path."""
    from hardware.torch_runner import TorchRunner
    from zoogate import accuracy, datasets

    def make():
        root, jpegs = Path(tempfile.mkdtemp(prefix="zoogate-fault-")), datasets.generated_jpegs(REUSE_IMAGES, 4343)
        unlabelled = datasets.write_imagenet_layout(root, jpegs, [0] * REUSE_IMAGES)
        run = accuracy.evaluate(TorchRunner().load(_Models.loaded(), REUSE_BS), unlabelled,
                                baselines.model(PRIMARY).preprocess, REUSE_BS, progress=False, model=PRIMARY)
        return datasets.write_imagenet_layout(root, jpegs, run.predictions.tolist())

    return _Models.get("reuse-set", make)


def class0_onnx(path: Path) -> Path:
    """An ONNX classifier of the primary model's input that answers class 0 for every image."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    size = baselines.model(PRIMARY).input_size
    bias = np.zeros(1000, np.float32)
    bias[0] = 1.0
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]), helper.make_node("Flatten", ["pooled"], ["f"]),
         helper.make_node("MatMul", ["f", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["class"])], "class0",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("class", TensorProto.FLOAT, ["batch", 1000])],
        [numpy_helper.from_array(np.zeros((3, 1000), np.float32), "w"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def resumed_from_another_build(other_build: bool = True) -> GateRecord:
    """A correct build's live evaluation interrupted after one batch, then resumed (--resume) by a build that
    always answers class 0: it must be refused naming the artifact, never continued. Control: resumed by the
    same build (a fresh load of the same file), it continues to the uninterrupted numbers."""
    from hardware.onnxruntime_runner import OnnxRuntimeRunner
    from zoogate import accuracy

    spec, dataset = baselines.model(PRIMARY).preprocess, _reuse_set()
    folder = Path(tempfile.mkdtemp(prefix="zoogate-fault-"))
    correct = _Models.ort_runner(REUSE_BS)

    def live(runner, resume: bool) -> accuracy.EvalResult:     # what the pytest plugin's live_eval.run does
        identity = accuracy.run_identity(runner, PRIMARY, spec, dataset)
        state = accuracy.state_file_for(folder, identity, REUSE_BS)
        if resume and not state.is_file():
            accuracy.refuse_other_builds(folder, identity, REUSE_BS)
        return accuracy.evaluate(runner, dataset, spec, REUSE_BS, state_file=state, resume=resume, progress=False,
                                 model=PRIMARY, identity=identity)

    try:
        live(InterruptedRunner(correct, batches=1), resume=False)
    except KeyboardInterrupt:
        pass
    if other_build:
        broken = OnnxRuntimeRunner().load(class0_onnx(folder / "class0.onnx"), REUSE_BS)
        try:
            resumed = live(broken, resume=True)
        except accuracy.BuildMismatch as refusal:
            return accuracy.build_identity_gate(PRIMARY, refusal, runner="onnxruntime(class-0 graph)", bs=REUSE_BS)
        return accuracy.resume_gate(PRIMARY, resumed, accuracy.evaluate(broken, dataset, spec, REUSE_BS,
                                                                        progress=False, model=PRIMARY),
                                    runner="onnxruntime(class-0 graph)", bs=REUSE_BS)
    same = OnnxRuntimeRunner().load(correct.path, REUSE_BS)
    uninterrupted = accuracy.evaluate(same, dataset, spec, REUSE_BS, progress=False, model=PRIMARY)
    return accuracy.resume_gate(PRIMARY, live(same, resume=True), uninterrupted, runner="onnxruntime", bs=REUSE_BS)


def _other_weights():
    """A checkpoint of the primary model that disagrees with the calibrated weights on at least the first half
    of the reuse images: the classifier rows of their top-1 classes swapped with classes no image predicts."""
    import torch
    from safetensors.torch import save_file

    from zoogate import weights

    def make():
        loaded = _Models.loaded()
        classes = [int(it.label) for it in _reuse_set().items]
        spare = [c for c in range(loaded.baseline.num_classes) if c not in classes]
        head = weights.classifier(loaded.module, loaded.baseline.num_classes)
        name = next(n for n, m in loaded.module.named_modules() if m is head)
        state = {k: v.clone().contiguous() for k, v in loaded.module.state_dict().items()}
        with torch.no_grad():
            for c, s in zip(classes[:len(classes) // 2], spare):
                for key in (f"{name}.weight", f"{name}.bias"):
                    state[key][[c, s]] = state[key][[s, c]]
        path = Path(tempfile.mkdtemp(prefix="zoogate-fault-")) / f"{PRIMARY}-other.safetensors"
        save_file(state, str(path))
        return weights.load_model(PRIMARY, path)

    return _Models.get("other-weights", make)


def reference_of_other_weights(other_weights: bool = True) -> GateRecord:
    """An earlier session saved a PyTorch fp32 reference run made with other weights, and the deployment under
    test was built from those same weights (a stale checkpoint): they agree with each other. This build's
    weights are the calibrated ones, so that saved reference must not be used; the reference is computed for
    this build and the deployment is judged against it. Control: a saved reference of this build is reused."""
    from hardware.torch_runner import TorchRunner
    from zoogate import accuracy

    spec, dataset = baselines.model(PRIMARY).preprocess, _reuse_set()
    folder = Path(tempfile.mkdtemp(prefix="zoogate-fault-"))
    deployed = _other_weights() if other_weights else _Models.loaded()
    earlier_session = TorchRunner().load(deployed, REUSE_BS)
    identity = accuracy.run_identity(earlier_session, PRIMARY, spec, dataset)
    # the earlier session's saved reference; the deployment built from the same weights scores the same
    # numbers (run eagerly here, to keep the row cheap)
    candidate = accuracy.evaluate(earlier_session, dataset, spec, REUSE_BS, progress=False, model=PRIMARY,
                                  state_file=accuracy.state_file_for(folder, identity, REUSE_BS), identity=identity)
    this_build = TorchRunner().load(_Models.loaded(), REUSE_BS)
    reference = accuracy.reference_run(folder, this_build, dataset, spec, model=PRIMARY, progress=False)
    label = f"deployment({'other' if other_weights else 'same'} weights)"
    record = accuracy.reference_gate(PRIMARY, candidate, reference, runner=label, bs=REUSE_BS,
                                     reference_name="this build's PyTorch fp32")
    reused = any("saved run of this build" in note for note in reference.notes)
    if not other_weights and not reused:      # the control also proves the saved reference is taken
        record.status, record.reason = FAIL, "the saved reference run of this very build was not reused"
    return record


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
          perturbed_onnx_weight, healthy_agreement),
    Fault("fp16-overflow", "a logit beyond float16 range (65504) in an fp16 build", "agreement", "logits",
          fp16_overflow, lambda: fp16_overflow(head_scale=1.0)),
    Fault("drops-partial-batch", "static-batch runner that drops the last partial batch", "agreement",
          "partial_batch", drops_partial_batch, lambda: drops_partial_batch(_Wrapper)),
    Fault("batch-mate-dependence", "logits that depend on batch-mates (BatchNorm in training mode)", "agreement",
          "batch_invariance", batch_mate_dependence, lambda: batch_mate_dependence(_Wrapper)),
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
