"""int8 builds (zoogate.int8): calibration sets read as zoogate calib writes them, the build cache keyed by what
made the build, the runner options, and the planted calibration sets of the fault matrix.

The gates themselves run through the runner suites (onnxruntime-int8 and openvino-int8 are registry runners)
and the fault matrix (int8-calibrated-on-one-class / -one-image)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zoogate import baselines, calib, int8, synthetic
from zoogate.datasets import write_imagenet_layout
from zoogate.errors import ZoogateError

MODEL = "iresnet50"


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("int8-source")
    return write_imagenet_layout(root / "imagenet", synthetic.images(6, seed=880), [0, 1, 2, 0, 1, 2])


def _written(labelled, tmp_path, fmt: str, model: str | None = MODEL):
    spec = baselines.model(model).preprocess if model else None
    chosen = calib.choose(labelled, count=3, only_present=True)
    calib.write(labelled, tmp_path / fmt, chosen, fmt=fmt, spec=spec)
    return tmp_path / fmt


@pytest.mark.parametrize("fmt", calib.FORMATS)
def test_every_calib_format_reads_back_as_the_same_model_inputs(labelled, tmp_path, fmt):
    spec = baselines.model(MODEL).preprocess
    got = int8.from_folder(_written(labelled, tmp_path, fmt), spec)
    reference = int8.from_folder(_written(labelled, tmp_path, "jpg"), spec) if fmt != "jpg" else got
    assert got.tensors.shape == (3, 3, spec.crop, spec.crop) and got.tensors.dtype == np.float32
    if fmt == "npz":        # image2npz keeps the decoded pixels: the same reference preprocessing follows
        np.testing.assert_array_equal(got.tensors, reference.tensors)
    else:
        np.testing.assert_allclose(got.tensors, reference.tensors, atol=1e-6)
    assert got.fingerprint and (fmt == "jpg" or got.fingerprint != reference.fingerprint)


def test_tensors_of_another_preprocessing_are_refused_naming_the_manifest(labelled, tmp_path):
    folder = _written(labelled, tmp_path, "npy", model="inception_v4")
    with pytest.raises(ZoogateError, match="calib_manifest.json.*write the set again with --model"):
        int8.from_folder(folder, baselines.model(MODEL).preprocess)


def test_a_folder_without_manifest_or_with_a_missing_file_is_refused(labelled, tmp_path):
    spec = baselines.model(MODEL).preprocess
    with pytest.raises(ZoogateError, match="zoogate calib"):
        int8.from_folder(tmp_path, spec)
    folder = _written(labelled, tmp_path, "jpg")
    first = json.loads((folder / calib.MANIFEST).read_text())["files"][0]["file"]
    (folder / first).unlink()
    with pytest.raises(ZoogateError, match=f"names {first}, which is missing"):
        int8.from_folder(folder, spec)


def test_runner_options_are_checked():
    assert int8.Int8Options.of({}).as_build_options() == {"method": "percentile", "keep_float": "classifier",
                                                          "calib": "generated"}
    with pytest.raises(ZoogateError, match="one of percentile, minmax, entropy"):
        int8.Int8Options.of({"method": "kl"})
    with pytest.raises(ZoogateError, match="keep_float"):
        int8.Int8Options.of({"keep_float": "all"})


def test_a_build_is_reused_only_for_the_same_export_calibration_and_method(zoo, tmp_path):
    """What is tested is the build cache's key, so the graph is a small classifier of the primary model's input:
    a real network's int8 builds take seconds each (its own builds are made by the runner suites)."""
    from zoogate.faults_primary import PrimaryModel
    from zoogate.faults_reuse import class0_onnx

    calibration = int8.generated_calibration(PrimaryModel.loaded())
    source = class0_onnx(tmp_path / "class0.onnx")
    first = int8.build(source, calibration, method="minmax")
    made = first.stat().st_mtime_ns
    assert int8.build(source, calibration, method="minmax") == first and first.stat().st_mtime_ns == made
    fewer = int8.CalibrationSet(calibration.tensors[:8], calibration.fingerprint + ":first8", "first 8")
    assert int8.build(source, fewer, method="minmax") != first
    assert int8.build(source, calibration, method="percentile") != first
    made_of = json.loads(first.with_name(first.name + ".json").read_text())
    assert made_of["calibration"] == calibration.fingerprint and made_of["method"] == "minmax"
    assert made_of["recipe"]["activations"] == "uint8" and made_of["keep_float"] == "classifier"


def test_the_classifier_is_what_keep_float_keeps(zoo):
    import onnx

    from zoogate.faults_primary import PrimaryModel

    assert int8.classifier_nodes(onnx.load(str(PrimaryModel.onnx()))) == ["/fc/Gemm"]


def test_planted_calibration_sets_differ_from_the_default_as_planted():
    from zoogate import faults_int8

    default = faults_int8.calibration()
    bgr = faults_int8.calibration(channel_order="BGR")
    square = faults_int8.calibration(square=True)
    one_image = faults_int8.calibration(faults_int8.one_image)
    assert len(one_image) == 1 and len(bgr) == len(square) == len(default)
    assert bgr.fingerprint != default.fingerprint != square.fingerprint
    # BGR as the suite defines it: each channel normalised with its own mean/std, then the order reversed
    np.testing.assert_array_equal(bgr.tensors, default.tensors[:, ::-1])
    assert square.tensors.shape == default.tensors.shape and not np.allclose(square.tensors, default.tensors)
