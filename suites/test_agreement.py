"""ONNX-vs-PyTorch numerical agreement: PyTorch eager (the reference) vs ONNX Runtime CPU on our exports.

Cross product per model (inception_v4 and iresnet50; --models NAMES|all for others): exporter
(torchscript, dynamo) x batch size (1, 4) x ONNX Runtime graph optimisation level
(ort_off = ORT_DISABLE_ALL, ort_all = ORT_ENABLE_ALL); ids read
``inception_v4-dynamo-bs4-ort_all``. Weights are the calibrated ones unless --weights names a checkpoint.
Then self-tests that plant the faults the gate exists for, and the float16 variant.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest

from zoogate.compare import ELEMENTWISE, INF, TOP1, compare
from zoogate.gates.agreement import agreement_gate
from zoogate.plugin.models import selected_models
from zoogate.record import FAIL

PRIMARY = "inception_v4"        # the primary model: every case runs unmarked
CHEAP = "iresnet50"             # a real network at 224 px for the self-tests
# Without --models: the full product for these, and for every other selected model one representative
# case (the export labs ship: torchscript, ORT_ENABLE_ALL, bs 4) -- the full product of all 11 buildable
# models takes ~15 min cold on 2 shared cores, mostly dynamo exports. `--models all` (or a list) runs
# the full product for every selected model.
DEFAULT_MODELS = (PRIMARY, CHEAP)
REPRESENTATIVE = ("torchscript", "ort_all", 4)
EXPORTERS = ("torchscript", "dynamo")
LEVELS = ("ort_off", "ort_all")
BATCH_SIZES = (1, 4)
FP32 = "fp32_cross_backend"
FP16 = "fp16"
THREADS = 2
_SESSIONS_KEPT = 4              # one model's worth (2 exporters x 2 levels); inception_v4 sessions are ~200 MB


def _ort_level(level: str):
    import onnxruntime as ort

    return {"ort_off": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "ort_all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]


def make_session(model, level: str = "ort_off"):
    """An ONNX Runtime CPU session for a model path or serialized ModelProto bytes."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = _ort_level(level)
    opts.intra_op_num_threads = THREADS
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), opts,
                                providers=["CPUExecutionProvider"])


def run_session(session, batch: np.ndarray) -> np.ndarray:
    feed = {session.get_inputs()[0].name: np.ascontiguousarray(batch)}
    return np.asarray(session.run([session.get_outputs()[0].name], feed)[0])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``case`` = (model, exporter, level, bs) over the selected models; the non-primary models' dynamo
    exports (15-40 s each on 2 cores) carry ``slow``, so ``-m "not slow"`` gives a quick run.
    ``fp16_model`` = the selected models, non-primary ones ``slow`` (a conversion and a session each).
    Without --models the models are DEFAULT_MODELS."""
    explicit = bool(metafunc.config.getoption("--models"))
    models = selected_models(metafunc.config) if explicit else list(DEFAULT_MODELS)
    if "fp16_model" in metafunc.fixturenames:
        metafunc.parametrize("fp16_model", [
            pytest.param(m, id=m, marks=[] if m == PRIMARY else [pytest.mark.slow]) for m in models])
    if "case" not in metafunc.fixturenames:
        return
    params = []
    if not explicit:
        for model in selected_models(metafunc.config):
            if model not in DEFAULT_MODELS:
                exporter, level, bs = REPRESENTATIVE
                params.append(pytest.param((model, exporter, level, bs), id=f"{model}-{exporter}-bs{bs}-{level}"))
    for model in models:
        for exporter in EXPORTERS:
            marks = [pytest.mark.slow] if exporter == "dynamo" and model != PRIMARY else []
            for level in LEVELS:
                for bs in BATCH_SIZES:
                    params.append(pytest.param((model, exporter, level, bs), marks=marks,
                                               id=f"{model}-{exporter}-bs{bs}-{level}"))
    metafunc.parametrize("case", params)


@pytest.fixture(scope="module")
def ort_sessions(zoo):
    """get(model, exporter, level) -> InferenceSession, created once and kept while its model's tests run."""
    kept: OrderedDict = OrderedDict()

    def get(model: str, exporter: str, level: str):
        key = (model, exporter, level)
        if key not in kept:
            kept[key] = make_session(zoo.onnx(model, exporter), level)
            while len(kept) > _SESSIONS_KEPT:
                kept.popitem(last=False)
        kept.move_to_end(key)
        return kept[key]

    yield get
    kept.clear()


@pytest.fixture(scope="module")
def covered():
    """Registry rows that are the same network: timm's inception_v3 / tf_ / adv_ / gluon_ tags build one
    architecture, and calibrated weights are keyed on it. key -> the first model that ran it."""
    return {}


def _duplicate_of(zoo, covered: dict, model: str) -> str | None:
    loaded = zoo.model(model)
    mb = loaded.baseline
    key = (mb.builder.split(".")[0], mb.num_classes, loaded.weights_id, mb.preprocess.describe())
    first = covered.setdefault(key, model)
    return None if first == model else first


def _user_onnx_without_weights(zoo, model: str) -> str | None:
    if model in zoo.onnx_files and zoo.model(model).calibrated:
        return (f"--onnx {model}=... was given without the checkpoint it was exported from: eager would run "
                f"calibrated weights; pass --weights {model}=FILE too")
    return None


def test_onnx_runtime_matches_pytorch_eager(case, zoo, ort_sessions, eager_logits, covered, gate_log):
    model, exporter, level, bs = case
    loaded = zoo.model(model)
    if (why := _user_onnx_without_weights(zoo, model)) is not None:
        pytest.skip(why)
    if model in zoo.onnx_files and exporter != "torchscript":
        pytest.skip(f"{model}: a user-supplied --onnx file is checked once (as the torchscript case)")
    if model not in zoo.onnx_files and (first := _duplicate_of(zoo, covered, model)):
        pytest.skip(f"{model}: same architecture, weights ({loaded.weights_id}) and preprocessing as {first}, "
                    f"whose cases cover it; pass --weights {model}=FILE to test its own checkpoint")
    batch = zoo.batch(model, bs)
    reference = eager_logits(model, batch)
    candidate = run_session(ort_sessions(model, exporter, level), batch)
    gate_log(agreement_gate(model, f"onnxruntime-{exporter}-{level}", bs, reference, candidate, FP32,
                            source=f"PyTorch eager fp32, weights {loaded.weights_id}: {loaded.origin}",
                            names=("pytorch eager", f"onnxruntime {exporter} {level}")))


# ----------------------------------------------------------------------------- self-tests: planted faults

@pytest.fixture(scope="module")
def cheap(zoo, eager_logits):
    """(ModelProto of the cheap model's torchscript export, its batch of 4, eager logits)."""
    import onnx

    proto = onnx.load(str(zoo.onnx(CHEAP, "torchscript")))
    batch = zoo.batch(CHEAP, 4)
    return proto, batch, eager_logits(CHEAP, batch)


def _initializer(proto, name: str):
    for init in proto.graph.initializer:
        if init.name == name:
            return init
    raise LookupError(f"no initializer {name!r} (weights stored as Constant nodes?)")


def _replace(proto, name: str, array: np.ndarray) -> None:
    from onnx import numpy_helper

    _initializer(proto, name).CopyFrom(numpy_helper.from_array(np.ascontiguousarray(array), name))


def _array(proto, name: str) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(_initializer(proto, name)).copy()


def _classifier_node(proto):
    """The Gemm that produces the graph output (the classifier)."""
    gemms = [n for n in proto.graph.node if n.op_type == "Gemm"]
    assert gemms, "no Gemm node in the export"
    return gemms[-1]


def _planted_gate(proto, batch, reference, *, tol: str = FP32, level: str = "ort_off", check: str = "logits"):
    candidate = run_session(make_session(proto.SerializeToString(), level), batch)
    return agreement_gate(CHEAP, "onnxruntime-planted", batch.shape[0], reference, candidate, tol, check=check,
                          names=("pytorch eager", "planted onnx"))


def test_selftest_unmodified_export_passes(cheap):
    """The control for the planted faults below: the same path with nothing planted passes."""
    proto, batch, reference = cheap
    record = _planted_gate(proto, batch, reference)
    assert record.passed, record.explain()


def test_selftest_conv_weight_off_by_one_percent_fails(cheap):
    proto, batch, reference = cheap
    planted = copy.deepcopy(proto)
    conv = next(n for n in planted.graph.node if n.op_type == "Conv")
    _replace(planted, conv.input[1], _array(planted, conv.input[1]) * 1.01)
    record = _planted_gate(planted, batch, reference)
    assert record.status == FAIL
    assert ELEMENTWISE in record.details["failing_statistics"]
    assert "elementwise :" in record.details["report_text"] and "<-- FAIL" in record.details["report_text"]


def test_selftest_two_swapped_classes_fail_top1(cheap):
    """Swap the image-0 top-1 class with its least likely class in the classifier's weights and bias."""
    proto, batch, reference = cheap
    planted = copy.deepcopy(proto)
    gemm = _classifier_node(planted)
    a, b = int(np.argmax(reference[0])), int(np.argmin(reference[0]))
    trans_b = next((attr.i for attr in gemm.attribute if attr.name == "transB"), 0)
    weight = _array(planted, gemm.input[1])
    if trans_b:
        weight[[a, b]] = weight[[b, a]]
    else:
        weight[:, [a, b]] = weight[:, [b, a]]
    bias = _array(planted, gemm.input[2])
    bias[[a, b]] = bias[[b, a]]
    _replace(planted, gemm.input[1], weight)
    _replace(planted, gemm.input[2], bias)
    record = _planted_gate(planted, batch, reference)
    assert record.status == FAIL
    assert TOP1 in record.details["failing_statistics"]
    assert not record.details["top1_per_image"][0]
    assert record.details["top5_per_image"][0] < 1.0


def test_selftest_bgr_input_fails(cheap):
    proto, batch, reference = cheap
    record = _planted_gate(proto, np.ascontiguousarray(batch[:, ::-1]), reference)
    assert record.status == FAIL
    assert ELEMENTWISE in record.details["failing_statistics"]


# ----------------------------------------------------------------------------- float16

def _fp16_floor(loaded, batch: np.ndarray, reference: np.ndarray):
    """The weights' own float16 sensitivity: eager with float16-rounded parameters vs eager."""
    import torch

    module = copy.deepcopy(loaded.module)
    with torch.inference_mode():
        for tensor in list(module.parameters()) + list(module.buffers()):
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
        rounded = module(torch.from_numpy(np.array(batch))).float().numpy()
    return compare(reference, rounded, FP16)


def test_fp16_export_agrees_with_fp32_eager(fp16_model, zoo, eager_logits, covered, gate_log, bisect_dir):
    """fp16 variant (onnxruntime.transformers.float16, I/O kept float32) vs PyTorch eager fp32.

    On the CPU, ONNX Runtime has no float16 Conv/Gemm kernels on x86: it casts around them and
    accumulates in float32, while activations between ops stay float16; the device gates the rest.
    Calibrated (seeded) weights can be chaotic: a small relative change grows layer by layer. When
    the weights' own float16 rounding (in PyTorch, before any export) already breaks the tolerance,
    this model's calibrated weights cannot judge an fp16 build and the test skips with the numbers.
    """
    from zoogate import fp16
    from zoogate.bisect import attach

    model_name = fp16_model
    loaded = zoo.model(model_name)
    if (why := _user_onnx_without_weights(zoo, model_name)) is not None:
        pytest.skip(why)
    if model_name not in zoo.onnx_files and (first := _duplicate_of(zoo, covered, model_name)):
        pytest.skip(f"{model_name}: same architecture, weights and preprocessing as {first}, which covers it")
    batch = zoo.batch(model_name, 4)
    reference = eager_logits(model_name, batch)
    if loaded.calibrated:
        floor = _fp16_floor(loaded, batch, reference)
        if not floor.passed:
            pytest.skip(f"{model_name}: calibrated weights are too sensitive for the fp16 gate: rounding them to "
                        f"float16 in PyTorch alone gives {floor.summary()}; pass --weights {model_name}=FILE "
                        "(a trained checkpoint) to gate the fp16 export")
    fp32_onnx = zoo.onnx(model_name, "torchscript")
    half = fp16.convert(fp32_onnx)
    candidate = run_session(make_session(half, "ort_all"), batch)
    record = agreement_gate(model_name, "onnxruntime-fp16", 4, reference, candidate, FP16,
                            source=f"PyTorch eager fp32, weights {loaded.weights_id}: {loaded.origin}",
                            names=("pytorch eager fp32", "onnxruntime fp16"))
    gate_log(attach(record, fp32_onnx, half, batch, precision=FP16, out_dir=bisect_dir))  # a failure names its node


def test_selftest_fp16_overflow_is_caught(cheap, tmp_path):
    """A logit beyond 65504 (float16's largest finite value) must fail the fp16 gate as an Inf.

    Planted in the fp32 graph: class k's classifier row zeroed and its bias 60000 (exact in float16),
    Gemm beta 1.25 -> logit 75000. The fp16 variant with float16 outputs (as a device build returns
    them) overflows to inf; the fp32 graph, the reference here, holds 75000.
    """
    import onnx

    from zoogate import fp16

    proto, batch, _ = cheap
    planted = copy.deepcopy(proto)
    gemm = _classifier_node(planted)
    k = 7
    trans_b = next((attr.i for attr in gemm.attribute if attr.name == "transB"), 0)
    weight, bias = _array(planted, gemm.input[1]), _array(planted, gemm.input[2])
    if trans_b:
        weight[k] = 0.0
    else:
        weight[:, k] = 0.0
    bias[k] = 60000.0
    _replace(planted, gemm.input[1], weight)
    _replace(planted, gemm.input[2], bias)
    beta = next((a for a in gemm.attribute if a.name == "beta"), None)
    if beta is None:
        gemm.attribute.append(onnx.helper.make_attribute("beta", 1.25))
    else:
        beta.f = 1.25
    fp32_path = tmp_path / "planted.onnx"
    onnx.save(planted, str(fp32_path))
    reference = run_session(make_session(fp32_path), batch)
    assert np.all(reference[:, k] > fp16.FP16_MAX)              # the plant took

    half = make_session(fp16.convert(fp32_path, keep_io_types=False))
    candidate = run_session(half, batch.astype(np.float16)).astype(np.float32)
    record = agreement_gate(CHEAP, "onnxruntime-fp16", 4, reference, candidate, FP16,
                            names=("onnxruntime fp32", "onnxruntime fp16"))
    assert record.status == FAIL
    assert INF in record.details["failing_statistics"]
    assert record.details["inf_count"] == batch.shape[0]
    assert record.details["worst_index"][1] == k


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning")
def test_selftest_fp16_gate_passes_a_well_conditioned_network(zoo, tmp_path):
    """The pass path of the fp16 gate, on a network whose fp16 error is small by construction
    (two conv layers: nothing to amplify rounding), through the same converter and ONNX Runtime."""
    import torch
    from torch import nn

    from zoogate import fp16

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.BatchNorm2d(16), nn.ReLU(),
                        nn.Conv2d(16, 32, 3, stride=2), nn.BatchNorm2d(32), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)).eval()
    batch = np.array(zoo.batch(CHEAP, 4))
    with torch.inference_mode():
        reference = net(torch.from_numpy(batch)).numpy()
    path = tmp_path / "shallow.onnx"
    with torch.no_grad():
        torch.onnx.export(net, (torch.from_numpy(batch),), str(path), dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["class"])
    candidate = run_session(make_session(fp16.convert(path)), batch)
    record = agreement_gate("shallow", "onnxruntime-fp16", 4, reference, candidate, FP16)
    assert record.passed, record.explain()
    assert 0 < record.measured            # float16 did change something: the gate compared real outputs
