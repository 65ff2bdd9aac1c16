"""The Ascend (ais_bench) and VACC (vaststreamx) adapters, exercised through test DOUBLES of the SDKs.

The doubles live in fixtures/doubles (ONNX Runtime behind the documented vendor calls) and are put on
sys.path only inside the tests that ask for the ``vendor_doubles`` fixture; afterwards the modules
are purged and the hardware detection is real again. Nothing here carries a hardware marker: these
tests check our adapters' batching, padding, dtypes, 1001-class handling, timing and error paths,
not a card. Tiny ONNX classifiers (3x16x16 input) keep them fast.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from hardware import artifacts, ascend, vacc
from zoogate.gates import agreement, architecture
from hardware.artifacts import ArtifactMissing, find_om, find_vacc
from hardware.ascend import AscendRunner
from hardware.base import infer_all
from hardware.onnxruntime_runner import OnnxRuntimeRunner
from hardware.vacc import VaccRunner
from zoogate import baselines
from zoogate.compare import compare
from zoogate.errors import ZoogateError
from zoogate.preprocess import vdsp
from zoogate.record import FAIL

DOUBLES = Path(__file__).resolve().parent.parent / "fixtures" / "doubles"
VDSP_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vdsp_params"
VENDOR_PACKAGES = ("ais_bench", "vaststreamx")
SIZE = 16                      # the tiny models' input size
MEAN, STD = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]


# ------------------------------------------------------------------ doubles on / off

def _vendor_modules() -> dict:
    return {k: v for k, v in sys.modules.items() if k.split(".")[0] in VENDOR_PACKAGES}


@contextlib.contextmanager
def doubles_installed():
    """Put the SDK doubles first on sys.path and make detection say the hardware is there; undo it all after."""
    saved_path, saved_modules = list(sys.path), _vendor_modules()
    saved_detect = [(ascend, "device", ascend.device), (ascend, "ais_bench", ascend.ais_bench),
                    (vacc, "device", vacc.device)]
    for name in saved_modules:
        del sys.modules[name]
    sys.path.insert(0, str(DOUBLES))
    ascend.device = lambda: (True, "DOUBLE: pretend Ascend device (fixtures/doubles)")
    ascend.ais_bench = lambda: (True, "DOUBLE: ais_bench test double")
    vacc.device = lambda: (True, "DOUBLE: vaststreamx test double")
    try:
        yield DOUBLES
    finally:
        for name in _vendor_modules():
            del sys.modules[name]
        sys.modules.update(saved_modules)
        sys.path[:] = saved_path
        for module, name, fn in saved_detect:
            setattr(module, name, fn)


@pytest.fixture
def vendor_doubles():
    with doubles_installed() as path:
        yield path


# ------------------------------------------------------------------ tiny artifacts

def _tiny_onnx(path: Path, classes: int, seed: int, softmax: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.normal(size=(6, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(size=(6,)).astype(np.float32), "b"),
             numpy_helper.from_array(rng.normal(size=(6, classes)).astype(np.float32), "fc_w"),
             numpy_helper.from_array(rng.normal(size=(classes,)).astype(np.float32), "fc_b")]
    nodes = [helper.make_node("Conv", ["image", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits" if softmax else "class"])]
    if softmax:              # what a vamc build with graph.extra_ops softmax computes
        nodes.append(helper.make_node("Softmax", ["logits"], ["class"], axis=-1))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                             ["batch", 3, SIZE, SIZE])],
                              [helper.make_tensor_value_info("class", TensorProto.FLOAT, ["batch", classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    base = tmp_path_factory.mktemp("tiny-onnx")
    return {10: _tiny_onnx(base / "tiny10.onnx", 10, 0), 1001: _tiny_onnx(base / "tiny1001.onnx", 1001, 1),
            "softmax": _tiny_onnx(base / "tiny10-softmax.onnx", 10, 0, softmax=True)}


def write_double_om(path: Path, onnx_path: Path, bs: int, api: str = "summary", **dtypes) -> Path:
    spec = {"zoogate_double": "om", "onnx": str(onnx_path), "batch_size": bs, "api": api, **dtypes}
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def vdsp_doc(resize: int = SIZE + 4, out: int = SIZE, norm: str = "DIV255_MINUSMEAN_DIVSTD") -> dict:
    """A vdsp_params document with the model zoo's key set, at the tiny models' size."""
    crop = (resize - out) // 2
    return {"OpType": "FUSION_OP_RGB_RESIZE_CVTCOLOR_CROP_NORM_TENSOR",
            "OpConfig": {"IimageFormat": "RGB_PLANAR", "IimageWidth": resize, "IimageHeight": resize,
                         "OimageWidth": out, "OimageHeight": out, "CropX": crop, "CropY": crop,
                         "ResizeWidth": resize, "ResizeHeight": resize,
                         "IimageWidthPitch": resize, "IimageHeightPitch": resize, "Mean": MEAN, "Std": STD,
                         "NormaType": norm, "ColorCvtCode": "NO_CHANGE", "ResizeType": "BILINEAR_CV"}}


def write_vacc_build(model_dir: Path, onnx_path: Path, model: str = "tiny", precision: str = "fp16",
                     resize: int = SIZE + 4, norm: str = "DIV255_MINUSMEAN_DIVSTD", name: str | None = None,
                     vdsp_name: str | None = None) -> Path:
    """A double VACC build; with ``name`` as vamc compile lays it out (DIR/deploy_weights/<name>/mod.*), else
    the <model>-<precision>-*-vacc/<model> layout. The vdsp params go to DIR/<vdsp_name or model-vdsp_params.json>."""
    if name is None:
        build = model_dir / f"{model}-{precision}-none-3_{SIZE}_{SIZE}-vacc"
        stem = model
    else:
        build, stem = model_dir / "deploy_weights" / name, "mod"
    build.mkdir(parents=True, exist_ok=True)
    (build / f"{stem}.zoogate-double.json").write_text(json.dumps({"zoogate_double": "vacc", "onnx": str(onnx_path)}))
    (model_dir / (vdsp_name or f"{model}-vdsp_params.json")).write_text(json.dumps(vdsp_doc(resize, norm=norm)))
    return build


def write_build_yaml(path: Path, name: str, dtype: str = "fp16", softmax: bool = True, size: int = SIZE) -> Path:
    """A vamc build config with the model zoo's keys (its build_in/build/*.yaml)."""
    doc = {"name": name,
           "frontend": {"shape": {"input": [1, 3, size, size]}, "type": "onnx", "checkpoint": "/path/to/m.onnx",
                        "dtype": "fp32"},
           "backend": {"type": "tvm_vacc", "dtype": dtype, "compile": {"cluster_mode": 0},
                       "quantize": {"calibrate_mode": "percentile", "quantize_per_channel": True}},
           "dataset": {"type": "tvm", "path": "/path/to/ILSVRC2012_img_calib",
                       "sampler": {"suffix": "JPEG", "get_data_num": 50}, "process_ops": []},
           "workspace": {"path": "./deploy_weights/"}}
    if softmax:
        doc["graph"] = {"extra_ops": {"type": "softmax"}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def pixels(n: int, seed: int = 3, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, size, size), dtype=np.uint8)


def normalised(pix: np.ndarray) -> np.ndarray:
    """What a reference pipeline gives for uint8 pixels: /255, -mean, /std (float32 NCHW)."""
    mean = np.asarray(MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(STD, np.float32).reshape(1, 3, 1, 1)
    return ((pix.astype(np.float32) / 255.0 - mean) / std).astype(np.float32)


def ort_logits(onnx_path: Path, batch: np.ndarray) -> np.ndarray:
    runner = OnnxRuntimeRunner().load(onnx_path, len(batch))
    return runner.infer(batch)


# ------------------------------------------------------------------ the doubles themselves

def test_doubles_are_installed_only_inside_the_fixture(tiny_models):
    with pytest.raises(ModuleNotFoundError):
        __import__("ais_bench.infer.interface")
    with doubles_installed():
        from ais_bench.infer import interface
        import vaststreamx

        assert interface.__zoogate_double__ and vaststreamx.__zoogate_double__
        assert "DOUBLE" in (interface.__doc__ or "") and "DOUBLE" in (vaststreamx.__doc__ or "")
        assert AscendRunner.available()[0] and VaccRunner.available()[0]
    assert not _vendor_modules()
    assert str(DOUBLES) not in sys.path
    with pytest.raises(ModuleNotFoundError):
        __import__("vaststreamx")
    assert AscendRunner.available() == ascend.ais_bench()


# ------------------------------------------------------------------ Ascend

def test_ascend_pads_the_last_batch_and_drops_the_padding(vendor_doubles, tiny_models, tmp_path):
    om = write_double_om(tmp_path / "tiny_bs4.om", tiny_models[10], 4)
    x = normalised(pixels(7))
    runner = AscendRunner().load(om, 4)
    out = infer_all(runner, x)
    assert out.shape == (7, 10) and out.dtype == np.float32
    assert runner.session.feeds_seen == [((4, 3, SIZE, SIZE), "float32")] * 2     # the tail went in padded
    assert compare(ort_logits(tiny_models[10], x), out, "fp32_same_backend").passed


def test_ascend_passes_the_runner_contract(vendor_doubles, tiny_models, tmp_path):
    runner = AscendRunner().load(write_double_om(tmp_path / "tiny_bs4.om", tiny_models[10], 4), 4)
    x = normalised(pixels(8))
    records = [architecture.check_output_shape(runner, x[:4], model="tiny", num_classes=10),
               agreement.check_batch_invariance(runner, x, model="tiny"),
               agreement.check_partial_batch(runner, x, model="tiny"),
               agreement.check_determinism(runner, x[:4], model="tiny"),
               agreement.check_eager_agreement(runner, x[:6], ort_logits(tiny_models[10], x[:6]), model="tiny",
                                              tol="fp32_same_backend", source="ONNX Runtime CPU")]
    assert all(r.passed for r in records), "\n".join(r.explain() for r in records)
    assert records[3].tolerance.startswith("determinism_reduced_precision")   # an OM computes in fp16


@pytest.mark.parametrize("api, timing, release", [("summary", "summary", "free_resource"),
                                                  ("sumary", "sumary", "finalize")],
                         ids=["ais_bench-2025", "ais_bench-2023"])
def test_ascend_device_time_from_summary_or_sumary(vendor_doubles, tiny_models, tmp_path, api, timing, release):
    runner = AscendRunner().load(write_double_om(tmp_path / "m.om", tiny_models[10], 2, api=api), 2)
    session = runner.session
    assert hasattr(session, timing) and not hasattr(session, {"summary": "sumary", "sumary": "summary"}[timing])
    runner.infer(normalised(pixels(2)))
    runner.infer(normalised(pixels(1)))
    ms = getattr(session, timing)().exec_time_list
    assert runner.reports_device_time and runner.timing.device_s == [t / 1000.0 for t in ms]
    assert len(runner.timing.device_s) == len(runner.timing.host_s) == 2
    runner.close()
    runner.close()                                   # safe twice
    assert session._freed and hasattr(session, release)
    with pytest.raises(RuntimeError, match="closed or not loaded"):
        runner.infer(normalised(pixels(1)))
    # 2025's finalize() would release AscendCL for the whole process: close() must not have called it
    AscendRunner().load(write_double_om(tmp_path / "again.om", tiny_models[10], 2, api=api), 2).close()


def test_ais_bench_double_keeps_the_release_differences(vendor_doubles, tiny_models, tmp_path):
    """The double is as strict as each release: no out_array in 2023, a process-wide finalize() in 2025,
    device_id an int, only mode 'static'."""
    from ais_bench.infer.interface import InferSession

    x = np.ascontiguousarray(normalised(pixels(2)))
    old = InferSession(0, str(write_double_om(tmp_path / "old.om", tiny_models[10], 2, api="sumary")))
    with pytest.raises(TypeError, match="out_array"):
        old.infer([x], mode="static", out_array=True)
    assert not hasattr(old, "free_resource") and not hasattr(old, "summary")
    new = InferSession(0, str(write_double_om(tmp_path / "new.om", tiny_models[10], 2)))
    assert new.infer([x], mode="static", out_array=True)[0].shape == (2, 10)
    with pytest.raises(NotImplementedError, match="only mode='static'"):
        new.infer([x], mode="dynbatch")
    with pytest.raises(TypeError, match="is not a integer"):
        InferSession("0", str(tmp_path / "new.om"))
    new.finalize()
    with pytest.raises(RuntimeError, match="finalized for this process"):
        InferSession(0, str(tmp_path / "new.om"))


def test_ascend_dtypes_float16_in_and_out(vendor_doubles, tiny_models, tmp_path):
    om = write_double_om(tmp_path / "m.om", tiny_models[10], 4, input_dtype="float16", output_dtype="float16")
    runner = AscendRunner().load(om, 4)
    x = normalised(pixels(3))
    out = runner.infer(x)
    assert out.dtype == np.float32 and out.shape == (3, 10)
    assert runner.session.feeds_seen[-1] == ((4, 3, SIZE, SIZE), "float16")
    assert compare(ort_logits(tiny_models[10], x), out, "fp16").passed


def test_ascend_1001_classes_returned_as_is_with_a_flag(vendor_doubles, tiny_models, tmp_path):
    runner = AscendRunner().load(write_double_om(tmp_path / "m1001.om", tiny_models[1001], 2), 2)
    x = normalised(pixels(2))
    out = runner.infer(x)
    assert runner.background_class and out.shape == (2, 1001)
    np.testing.assert_array_equal(out, ort_logits(tiny_models[1001], x))    # column 0 kept: the caller decides
    assert not AscendRunner().load(write_double_om(tmp_path / "m10.om", tiny_models[10], 2), 2).background_class


def test_ascend_error_paths(vendor_doubles, tiny_models, tmp_path):
    om = write_double_om(tmp_path / "tiny_bs4.om", tiny_models[10], 4)
    runner = AscendRunner().load(om, 4)
    with pytest.raises(ValueError, match=r"images \[3, 16, 16\]\), got images \[3, 20, 20\]"):
        runner.infer(np.zeros((3, 3, 20, 20), np.float32))
    with pytest.raises(ValueError, match="larger than the artifact's batch size 4"):
        runner.infer(np.zeros((5, 3, SIZE, SIZE), np.float32))
    with pytest.raises(ZoogateError, match="built for batch 4, asked for batch size 8") as err:
        AscendRunner().load(om, 8)
    assert str(om) in str(err.value)
    with pytest.raises(ZoogateError, match="OM file not found"):
        AscendRunner().load(tmp_path / "missing_bs4.om", 4)
    uint8_om = write_double_om(tmp_path / "aipp.om", tiny_models[10], 4, input_dtype="uint8")
    with pytest.raises(ZoogateError, match="expects uint8"):
        AscendRunner().load(uint8_om, 4)
    with pytest.raises(RuntimeError, match="device 3 not found"):
        AscendRunner(device_id=3).load(om, 4)


def test_ascend_and_vacc_unavailable_without_sdk_say_why(monkeypatch):
    """Device present, SDK not installed (doubles not on the path): available() is False with the reason."""
    real_which = vacc.shutil.which
    for fn in (ascend.device, ascend.ais_bench, vacc.device):
        fn.cache_clear()
    try:
        monkeypatch.setattr(ascend, "device", lambda: (True, "Ascend: npu-smi"))
        monkeypatch.setattr(vacc.shutil, "which", lambda cmd: "/usr/bin/vasmi" if cmd == "vasmi" else real_which(cmd))
        ok, why = AscendRunner.available()
        assert not ok and "ais_bench not importable" in why and "Ascend tools repository" in why
        ok, why = VaccRunner.available()
        assert not ok and "vaststreamx not importable" in why and "VastStreamX wheel" in why
    finally:
        monkeypatch.undo()
        for fn in (ascend.device, ascend.ais_bench, vacc.device):
            fn.cache_clear()


def test_available_is_the_real_detection_outside_the_doubles():
    assert AscendRunner.available() == ascend.ais_bench()
    assert VaccRunner.available() == vacc.device()
    for ok, why in (AscendRunner.available(), VaccRunner.available()):
        assert ok or ("install" in why or "source" in why)      # a reason says how to provide what is missing


# ------------------------------------------------------------------ the pytest runner loader

def test_loader_skips_naming_the_expected_om(vendor_doubles, request):
    from zoogate.plugin.runners import RunnerLoader

    loader = RunnerLoader(request.config, zoo=None)
    loader.model_dir = None
    with pytest.raises(pytest.skip.Exception, match="--model-dir DIR holding inception_v4_bs4.om"):
        loader.load("inception_v4", "ascend", 4)


def test_loader_refuses_a_double_for_hardware_tests(vendor_doubles, tiny_models, tmp_path, request):
    """The marker-gated tests load through RunnerLoader; a double SDK on the path fails them loudly."""
    from zoogate.plugin.runners import RunnerLoader

    write_double_om(tmp_path / "iresnet50_bs2.om", tiny_models[10], 2)
    loader = RunnerLoader(request.config, zoo=None)
    loader.model_dir = tmp_path
    with pytest.raises(pytest.fail.Exception, match="DOUBLE of ais_bench"):
        loader.load("iresnet50", "ascend", 2)
    write_vacc_build(tmp_path, tiny_models[10], model="iresnet50")
    with pytest.raises(pytest.fail.Exception, match="DOUBLE of vaststreamx"):
        loader.load("iresnet50", "vacc", 2)
    assert not loader._loaded


# ------------------------------------------------------------------ artifacts (--model-dir)

def test_find_om_naming_convention(tmp_path):
    (tmp_path / "inception_v4_bs48.om").write_text("x")
    with pytest.raises(ArtifactMissing) as err:
        find_om(tmp_path, "inception_v4", 4, input_size=299)
    msg = str(err.value)
    assert str(tmp_path / "inception_v4_bs4.om") in msg and "atc --framework=5" in msg and "image:4,3,299,299" in msg
    suffixed = tmp_path / "inception_v4_bs4_linux_x86_64.om"
    suffixed.write_text("x")
    assert find_om(tmp_path, "inception_v4", 4) == suffixed          # CANN platform suffix
    exact = tmp_path / "inception_v4_bs4.om"
    exact.write_text("x")
    assert find_om(tmp_path, "inception_v4", 4) == exact              # the exact name wins
    assert find_om(tmp_path, "inception_v4", 48).name == "inception_v4_bs48.om"
    guide = tmp_path / "inceptionv4_bs8.om"                           # the Ascend guide's name (seed 001)
    guide.write_text("x")
    assert find_om(tmp_path, "inception_v4_1001", 8) == guide
    with pytest.raises(ArtifactMissing, match="pass --model-dir DIR holding inception_v4_bs4.om"):
        find_om(None, "inception_v4", 4)


def test_find_om_ambiguous_suffixes(tmp_path):
    for arch in ("linux_armv7", "linux_mips"):
        (tmp_path / f"m_bs2_{arch}.om").write_text("x")
    with pytest.raises(ZoogateError, match="several Ascend models match m_bs2"):
        find_om(tmp_path, "m", 2)


def test_find_vacc_legacy_naming_convention(tmp_path, tiny_models):
    with pytest.raises(ArtifactMissing) as err:
        find_vacc(tmp_path, "tiny")
    assert "tiny-fp16-*-vacc/tiny.*" in str(err.value) and "vamc compile <build>.yaml" in str(err.value)
    build = write_vacc_build(tmp_path, tiny_models[10])
    art = find_vacc(tmp_path, "tiny")
    assert art.prefix == build / "tiny" and art.vdsp_params.name == "tiny-vdsp_params.json"
    assert art.precision == "fp16" and art.build is None
    with pytest.raises(ArtifactMissing, match="tiny-int8-"):
        find_vacc(tmp_path, "tiny", "int8")
    (tmp_path / "tiny-vdsp_params.json").rename(tmp_path / "timm-tiny-vdsp_params.json")   # model-zoo naming
    assert find_vacc(tmp_path, "tiny").vdsp_params.name == "timm-tiny-vdsp_params.json"
    (tmp_path / "timm-tiny-vdsp_params.json").unlink()
    with pytest.raises(ArtifactMissing, match="no vdsp params"):
        find_vacc(tmp_path, "tiny")
    assert artifacts.vacc_build_glob("inception_v4", "int8") == "inception_v4-int8-*-vacc"


def test_find_vacc_vamc_compile_layout(tmp_path, tiny_models):
    """vamc compile writes deploy_weights/<name>/mod.*; <name> is the model zoo's build name for the model."""
    with pytest.raises(ArtifactMissing) as err:
        find_vacc(tmp_path, "inception_v4", "int8")
    msg = str(err.value)
    assert str(tmp_path / "deploy_weights" / "timm_inceptionv4_int8" / "mod.*") in msg
    assert str(tmp_path / "timm_inceptionv4_int8" / "mod.*") in msg
    assert "vamc compile <build>.yaml" in msg and "timm_inceptionv4.yaml with name: timm_inceptionv4_int8" in msg
    build = write_vacc_build(tmp_path, tiny_models[10], name="timm_inceptionv4_int8",
                             vdsp_name="timm-inception_v4-vdsp_params.json")
    art = find_vacc(tmp_path, "inception_v4", "int8")
    assert art.prefix == build / "mod" and art.precision == "int8"
    assert art.vdsp_params == tmp_path / "timm-inception_v4-vdsp_params.json"
    with pytest.raises(ArtifactMissing, match="timm_inceptionv4_fp16"):
        find_vacc(tmp_path, "inception_v4")                           # fp16 by default: another build
    # the vdsp params beside the model files, under the model zoo's name, win over DIR's
    beside = build / "timm-inception_v4-vdsp_params.json"
    beside.write_text(json.dumps(vdsp_doc()))
    assert find_vacc(tmp_path, "inception_v4", "int8").vdsp_params == beside
    # --model-dir may be the deploy_weights folder itself
    assert find_vacc(tmp_path / "deploy_weights", "inception_v4", "int8").prefix == build / "mod"
    # two layouts holding the same build name: ambiguous
    write_vacc_build(tmp_path / "deploy_weights", tiny_models[10], name="timm_inceptionv4_int8")
    with pytest.raises(ZoogateError, match="several VACC builds"):
        find_vacc(tmp_path / "deploy_weights", "inception_v4", "int8")


def test_vacc_build_names_come_from_the_build_model_table():
    from zoogate.vamc import BUILD_MODELS

    for base, model in BUILD_MODELS.items():
        assert f"{base}_int8" in artifacts.vacc_build_names(model, "int8")
    assert artifacts.vacc_build_names("inception_v4", "fp16") == ["timm_inceptionv4_fp16"]
    assert artifacts.vacc_build_names("iresnet50", "int8") == ["official_iresnet_int8"]
    assert artifacts.vacc_build_names("iresnet101", "fp16") == []         # the model zoo builds iresnet50 only
    known = baselines.load_all()
    assert set(BUILD_MODELS.values()) <= set(known) and set(artifacts.VDSP_PARAMS_NAMES) <= set(known)


def test_find_vacc_picks_the_models_own_vdsp_params(tmp_path, tiny_models):
    """timm- and ppcls-inception_v4 side by side: each registry model gets the model zoo's file for it."""
    write_vacc_build(tmp_path, tiny_models[10], name="timm_inceptionv4_fp16",
                     vdsp_name="timm-inception_v4-vdsp_params.json")
    write_vacc_build(tmp_path, tiny_models[10], name="ppcls_inceptionv4_fp16",
                     vdsp_name="ppcls-inception_v4-vdsp_params.json")
    assert find_vacc(tmp_path, "inception_v4").vdsp_params.name == "timm-inception_v4-vdsp_params.json"
    assert find_vacc(tmp_path, "inception_v4_ppcls").vdsp_params.name == "ppcls-inception_v4-vdsp_params.json"
    explicit = tmp_path / "mine.json"
    explicit.write_text(json.dumps(vdsp_doc()))
    assert find_vacc(tmp_path, "inception_v4", vdsp_params=explicit).vdsp_params == explicit
    with pytest.raises(ZoogateError, match="vdsp params file not found") as err:
        find_vacc(tmp_path, "inception_v4", vdsp_params=tmp_path / "typo.json")
    assert not isinstance(err.value, ArtifactMissing)                  # a user's path: an error, never a skip


def test_find_vacc_with_a_build_config(tmp_path, tiny_models):
    from zoogate.vamc import load_build_config

    build = write_vacc_build(tmp_path, tiny_models[10], name="my_v4_int8",
                             vdsp_name="timm-inception_v4-vdsp_params.json")
    config = load_build_config(write_build_yaml(tmp_path / "timm_inceptionv4.yaml", "my_v4_int8", dtype="int8"))
    art = find_vacc(tmp_path, "inception_v4", build=config)
    assert art.prefix == build / "mod" and art.precision == "int8" and art.build is config
    with pytest.raises(ZoogateError, match="precision=fp16 but the build config's backend.dtype is int8"):
        find_vacc(tmp_path, "inception_v4", "fp16", build=config)
    iresnet = load_build_config(write_build_yaml(tmp_path / "official_iresnet.yaml", "official_iresnet_fp16"))
    with pytest.raises(ArtifactMissing, match="is for iresnet50, not inception_v4"):
        find_vacc(tmp_path, "inception_v4", build=iresnet)
    missing = load_build_config(write_build_yaml(tmp_path / "other.yaml", "not_compiled_fp16"))
    with pytest.raises(ArtifactMissing) as err:
        find_vacc(tmp_path, "inception_v4", build=missing)
    assert str(tmp_path / "deploy_weights" / "not_compiled_fp16" / "mod.*") in str(err.value)
    assert "vamc compile" in str(err.value) and "-vacc/" not in str(err.value)   # a build yaml names the build


def test_loader_passes_the_vacc_build_and_vdsp_options(tmp_path, tiny_models, request):
    from zoogate.plugin.runners import RunnerLoader

    write_vacc_build(tmp_path, tiny_models[10], name="my_v4_fp16", vdsp_name="somewhere.json")
    yaml_path = write_build_yaml(tmp_path / "b.yaml", "my_v4_fp16")
    loader = RunnerLoader(request.config, zoo=None)
    loader.model_dir = tmp_path
    options = {"build": str(yaml_path), "vdsp_params": str(tmp_path / "somewhere.json")}
    art = loader.artifact("inception_v4", "vacc", 2, options)
    assert art.build.name == "my_v4_fp16" and art.build.softmax and art.vdsp_params.name == "somewhere.json"
    with pytest.raises(pytest.skip.Exception, match="timm_inceptionv4_fp16"):
        loader.artifact("inception_v4", "vacc", 2, {})

def test_ascend_runner_names_the_om_it_loaded(vendor_doubles, tiny_models, tmp_path):
    from zoogate.identity import file_digest

    om = write_double_om(tmp_path / "tiny_bs4.om", tiny_models[10], 4)
    runner = AscendRunner().load(om, 4)
    assert runner.artifact_id == file_digest(om) and runner.artifact_path == str(om)
    other = write_double_om(tmp_path / "other_bs4.om", tiny_models[1001], 4)
    assert AscendRunner().load(other, 4).artifact_id != runner.artifact_id


# ------------------------------------------------------------------ VACC

def test_vsx_double_is_the_sample_api_and_nothing_more(vendor_doubles, tiny_models, tmp_path):
    """The vsx calls of the model zoo's classification.py work on the double; others fail loudly."""
    import vaststreamx as vsx

    build = write_vacc_build(tmp_path, tiny_models[10], name="tiny_fp16")
    assert vsx.set_device(0) == 0 and vsx.set_device(5) != 0
    model = vsx.Model(str(build / "mod"), 2)
    n, c, h, w = model.input_shape[0]                  # a list of NCHW shapes, one per input
    assert (c, h, w) == (3, SIZE, SIZE)
    with pytest.raises(ValueError):
        c, h, w = model.input_shape[0]                 # a runner reading (c, h, w) breaks here
    for missing in ("GraphOutputType", "TypeFlag"):
        with pytest.raises(AttributeError, match=rf"\[DOUBLE\] vaststreamx.{missing} is not doubled"):
            getattr(vsx, missing)
    with pytest.raises(TypeError):
        vsx.Graph("GRAPH_OUTPUT_TYPE_NCHW_HOST")
    fusion_op = vsx.Operator.load_ops_from_json_file(str(tmp_path / "tiny-vdsp_params.json"))[0]
    graph, model_op = vsx.Graph(), vsx.ModelOperator(model)
    graph.add_operators(model_op, fusion_op)           # the wrong order
    stream = vsx.Stream(graph, vsx.StreamBalanceMode.ONCE)
    stream.register_operator_output(model_op)
    with pytest.raises(RuntimeError, match=r"add_operators\(fusion_op, model_op\)"):
        stream.build()
    graph = vsx.Graph()
    graph.add_operators(fusion_op, model_op)
    stream = vsx.Stream(graph, vsx.StreamBalanceMode.ONCE)
    stream.register_operator_output(model_op)
    stream.build()
    img = vsx.create_image(pixels(1)[0], vsx.ImageFormat.RGB_PLANAR, SIZE, SIZE, 0)
    out = stream.run_sync([img, img])
    assert vsx.as_numpy(out[0][0])[0].astype(np.float32).shape == (10,)
    with pytest.raises(RuntimeError, match="before close_input"):
        stream.wait_until_done()
    stream.close_input()
    stream.wait_until_done()
    with pytest.raises(RuntimeError, match="after close_input"):
        stream.run_sync([img, img])


@pytest.mark.parametrize("name", sorted(p.name for p in VDSP_FIXTURES.iterdir()))
def test_vsx_double_accepts_every_model_zoo_vdsp_file(vendor_doubles, name):
    import vaststreamx as vsx

    ops = vsx.Operator.load_ops_from_json_file(str(VDSP_FIXTURES / name))
    assert len(ops) == 1


def test_vsx_double_rejects_a_key_it_does_not_know(vendor_doubles, tmp_path):
    import vaststreamx as vsx

    doc = vdsp_doc()
    doc["OpConfig"]["IimageWidthPich"] = SIZE + 4
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(RuntimeError, match=r"keys not doubled: \['IimageWidthPich'\]"):
        vsx.Operator.load_ops_from_json_file(str(path))


def test_vacc_tensor_path_float16_to_float32_and_padding(vendor_doubles, tiny_models, tmp_path):
    write_vacc_build(tmp_path, tiny_models[10])
    runner = VaccRunner().load(find_vacc(tmp_path, "tiny"), 4)
    x = normalised(pixels(6))
    out = infer_all(runner, x)
    assert out.shape == (6, 10) and out.dtype == np.float32
    np.testing.assert_array_equal(out, out.astype(np.float16).astype(np.float32))   # the card's float16, widened
    assert runner._streams["tensor"][0].batches_seen == [4, 4]                       # static batch, tail padded
    assert compare(ort_logits(tiny_models[10], x), out, "fp16").passed


def test_vacc_tensor_path_feeds_the_size_it_says(vendor_doubles, tiny_models, tmp_path):
    """The identity vdsp config describes the image actually fed (Iimage* = Oimage size), not the build's 20 px."""
    write_vacc_build(tmp_path, tiny_models[10], resize=SIZE + 4)
    runner = VaccRunner().load(find_vacc(tmp_path, "tiny"), 2)
    runner.infer(normalised(pixels(2)))
    identity = json.loads(runner._identity_vdsp().read_text())
    assert list(identity["OpConfig"]) == list(vdsp_doc()["OpConfig"])                 # the model zoo's key set
    cfg = identity["OpConfig"]
    assert {cfg[k] for k in ("IimageWidth", "IimageHeight", "IimageWidthPitch", "IimageHeightPitch",
                             "ResizeWidth", "ResizeHeight", "OimageWidth", "OimageHeight")} == {SIZE}
    assert (cfg["CropX"], cfg["CropY"], cfg["Mean"], cfg["Std"]) == (0, 0, MEAN, STD)
    fed, build = vdsp.parse_params(identity), runner.vdsp
    assert (build.image_width, build.resize_width, build.crop_x) == (SIZE + 4, SIZE + 4, 2)    # the build's own
    assert (fed.norm_type, fed.color_cvt, fed.resize_type) == (build.norm_type, build.color_cvt, build.resize_type)


def test_vacc_close_follows_the_sample(vendor_doubles, tiny_models, tmp_path):
    write_vacc_build(tmp_path, tiny_models[10])
    runner = VaccRunner().load(find_vacc(tmp_path, "tiny"), 2)
    runner.infer(normalised(pixels(2)))
    runner.infer_images([pixels(1, size=30)[0]])
    streams = [s for s, _ in runner._streams.values()]
    assert len(streams) == 2 and all(s._mode.name == "ONCE" for s in streams)
    runner.close()
    assert all(s._input_closed and s._done for s in streams)      # close_input(), then wait_until_done()
    runner.close()                                                 # safe twice
    with pytest.raises(RuntimeError, match=r"load\(\) the build"):
        runner.infer(normalised(pixels(1)))


def test_vacc_passes_the_runner_contract(vendor_doubles, tiny_models, tmp_path):
    write_vacc_build(tmp_path, tiny_models[10])
    runner = VaccRunner().load(find_vacc(tmp_path, "tiny"), 4)
    x = normalised(pixels(8))
    records = [architecture.check_output_shape(runner, x[:4], model="tiny", num_classes=10),
               agreement.check_batch_invariance(runner, x, model="tiny"),
               agreement.check_partial_batch(runner, x, model="tiny"),
               agreement.check_determinism(runner, x[:4], model="tiny"),
               agreement.check_eager_agreement(runner, x[:6], ort_logits(tiny_models[10], x[:6]), model="tiny",
                                              source="ONNX Runtime CPU")]
    assert all(r.passed for r in records), "\n".join(r.explain() for r in records)
    assert records[4].tolerance.startswith("fp16")


@pytest.mark.parametrize("softmax_in_yaml", [True, False], ids=["yaml-says-softmax", "yaml-without-softmax"])
def test_vacc_softmax_build_is_compared_with_softmax_of_the_reference(vendor_doubles, tiny_models, tmp_path,
                                                                      softmax_in_yaml):
    """A build with graph.extra_ops softmax outputs probabilities; the agreement check softmaxes the eager
    logits for it. Planted: the same softmax build whose yaml does not say so is compared with logits, and fails."""
    write_vacc_build(tmp_path, tiny_models["softmax"], name="my_v4_fp16", vdsp_name="tiny-vdsp_params.json")
    yaml_path = write_build_yaml(tmp_path / "b.yaml", "my_v4_fp16", softmax=softmax_in_yaml)
    runner = VaccRunner(build=yaml_path).load((tmp_path / "deploy_weights" / "my_v4_fp16" / "mod",
                                               tmp_path / "tiny-vdsp_params.json"), 4)
    assert runner.outputs == ("probabilities" if softmax_in_yaml else "logits")
    x = normalised(pixels(6))
    record = agreement.check_eager_agreement(runner, x, ort_logits(tiny_models[10], x), model="tiny",
                                            source="ONNX Runtime CPU")
    if softmax_in_yaml:
        assert record.passed, record.explain()
        assert "softmax(reference logits)" in record.reason
    else:
        assert record.status == FAIL, record.explain()
        assert "probabilities from a build with a softmax?" in record.reason


def test_vacc_images_go_through_the_builds_vdsp_geometry(vendor_doubles, tiny_models, tmp_path):
    write_vacc_build(tmp_path, tiny_models[10], resize=SIZE + 4)
    runner = VaccRunner().load(find_vacc(tmp_path, "tiny"), 2)
    rng = np.random.default_rng(5)
    pictures = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in ((30, 40), (25, 25), (40, 22))]
    out = runner.infer_images([pictures[0], Image.fromarray(pictures[1]), pictures[2].transpose(2, 0, 1)])
    # the same geometry on the host: the vsx sample's odd-to-even resize (25x25 -> 24x24), then the double's
    # square resize to 20x20, crop (2, 2) 16x16, then normalise
    from zoogate.preprocess.vdsp import even_size

    host = np.stack([np.asarray(Image.fromarray(even_size(p)).resize((SIZE + 4, SIZE + 4), Image.BILINEAR))
                     [2:2 + SIZE, 2:2 + SIZE].transpose(2, 0, 1) for p in pictures])
    assert out.shape == (3, 10)
    assert compare(ort_logits(tiny_models[10], normalised(host)), out, "fp16").passed
    assert runner._streams["images"][0].batches_seen == [2, 2]


def test_vacc_error_paths(vendor_doubles, tiny_models, tmp_path):
    write_vacc_build(tmp_path, tiny_models[10])
    art = find_vacc(tmp_path, "tiny")
    runner = VaccRunner().load(art, 4)
    with pytest.raises(ValueError, match=r"takes images \[3, 16, 16\] \(its vdsp Oimage size\), "
                                         r"got images \[3, 20, 20\]"):
        runner.infer(np.zeros((2, 3, 20, 20), np.float32))
    with pytest.raises(RuntimeError, match=r"set_device\(3\) returned -1"):
        VaccRunner(device_id=3).load(art, 4)
    with pytest.raises(ZoogateError, match="no VACC build files"):
        VaccRunner().load((tmp_path / "nowhere" / "tiny", art.vdsp_params), 4)
    bad = tmp_path / "bad-vdsp.json"
    bad.write_text("{not json")
    with pytest.raises(ZoogateError, match="not valid JSON") as err:
        VaccRunner().load((art.prefix, bad), 4)
    assert str(bad) in str(err.value)
    doc = vdsp_doc()
    doc["OpConfig"]["Mean"] = [0.5, 0.5]
    bad.write_text(json.dumps(doc))
    with pytest.raises(ZoogateError, match="OpConfig.Mean: expected 3 numbers"):
        VaccRunner().load((art.prefix, bad), 4)
    bad.write_text(json.dumps(vdsp_doc(resize=24, out=20)))         # another model's geometry
    with pytest.raises(ZoogateError, match=r"takes input \[3, 16, 16\], the vdsp params give \[3, 20, 20\]"):
        VaccRunner().load((art.prefix, bad), 4)
    other = tmp_path / "other"
    write_vacc_build(other, tiny_models[10], norm="MINUSMEAN_DIVSTD")
    odd = VaccRunner().load(find_vacc(other, "tiny"), 4)
    with pytest.raises(ZoogateError, match="NormaType 'MINUSMEAN_DIVSTD'"):
        odd.infer(normalised(pixels(1)))
    runner.close()
    runner.close()


def test_mistyped_model_dir_is_an_error_not_a_skip(tmp_path):
    """A --model-dir typo must stop a lab run, not skip every card test as 'no artifact'."""
    from hardware import artifacts
    from zoogate.errors import ZoogateError

    for find in (lambda d: artifacts.find_om(d, "inception_v4", 4), lambda d: artifacts.find_vacc(d, "inception_v4")):
        with pytest.raises(ZoogateError, match="not a directory") as err:
            find(tmp_path / "no-such-dir")
        assert not isinstance(err.value, artifacts.ArtifactMissing)


def test_vacc_runner_names_every_file_of_its_build(vendor_doubles, tiny_models, tmp_path):
    build = write_vacc_build(tmp_path, tiny_models[10])
    first = VaccRunner().load(find_vacc(tmp_path, "tiny"), 4).artifact_id
    assert first.startswith("sha256:") and VaccRunner().load(find_vacc(tmp_path, "tiny"), 4).artifact_id == first
    (build / "tiny.params").write_bytes(b"another part of the build")
    second = VaccRunner().load(find_vacc(tmp_path, "tiny"), 4).artifact_id
    vdsp = tmp_path / "tiny-vdsp_params.json"
    doc = json.loads(vdsp.read_text())
    doc["OpConfig"]["Mean"] = [0.485, 0.456, 0.406]
    vdsp.write_text(json.dumps(doc))
    third = VaccRunner().load(find_vacc(tmp_path, "tiny"), 4).artifact_id
    art = find_vacc(tmp_path, "tiny")
    yaml_file = write_build_yaml(tmp_path / "tiny.yaml", "tiny")
    fourth = VaccRunner(build=yaml_file).load((art.prefix, art.vdsp_params), 4).artifact_id
    assert len({first, second, third, fourth}) == 4          # any file of the build, its vdsp params, its config
