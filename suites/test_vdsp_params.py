"""vdsp_params JSON: the model zoo's key set, read and written back unchanged, for every fixture.

The fixtures (fixtures/vdsp_params/, written by fixtures/make_fixtures.py) are the model zoo's files for
inception_v4, the inception_v3 variants and iresnet, under its file names. That the SDK double accepts
each one is tested in suites/test_vendor_adapters.py, beside the double.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from hardware.artifacts import VDSP_PARAMS_NAMES
from zoogate.errors import ZoogateError
from zoogate.preprocess import vdsp

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vdsp_params"
MODEL_ZOO_KEYS = ["IimageFormat", "IimageWidth", "IimageHeight", "OimageWidth", "OimageHeight", "CropX", "CropY",
                  "ResizeWidth", "ResizeHeight", "IimageWidthPitch", "IimageHeightPitch", "Mean", "Std",
                  "NormaType", "ColorCvtCode", "ResizeType"]
FILES = sorted(p.name for p in FIXTURES.iterdir())
IMAGENET_FP16 = ([0.485107421875, 0.4560546875, 0.406005859375], [0.22900390625, 0.2239990234375, 0.2249755859375])


@pytest.mark.parametrize("name", FILES)
def test_fixture_round_trips_unchanged(name):
    path = FIXTURES / name
    params = vdsp.load_params(path)
    doc = params.to_json()
    assert doc == json.loads(path.read_text(encoding="utf-8"))
    assert (json.dumps(doc, indent=4) + "\n").encode() == path.read_bytes()        # key order included
    assert vdsp.parse_params(doc, path) == params


@pytest.mark.parametrize("name", FILES)
def test_fixture_carries_the_model_zoo_key_set(name):
    doc = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    assert list(doc) == ["OpType", "OpConfig"] and doc["OpType"] == vdsp.OP_TYPE
    assert list(doc["OpConfig"]) == MODEL_ZOO_KEYS
    cfg = doc["OpConfig"]
    assert (cfg["IimageFormat"], cfg["NormaType"], cfg["ColorCvtCode"], cfg["ResizeType"]) == \
        ("RGB_PLANAR", "DIV255_MINUSMEAN_DIVSTD", "NO_CHANGE", "BILINEAR_CV")
    # the input buffer is the (square) resize size; the crop is centred, its offset floored
    assert cfg["IimageWidth"] == cfg["IimageHeight"] == cfg["IimageWidthPitch"] == cfg["IimageHeightPitch"] \
        == cfg["ResizeWidth"] == cfg["ResizeHeight"]
    assert cfg["CropX"] == cfg["CropY"] == (cfg["ResizeWidth"] - cfg["OimageWidth"]) // 2


@pytest.mark.parametrize("name, geometry, norm", [
    ("timm-inception_v4-vdsp_params.json", (342, 299, 21), "half"),
    ("ppcls-inception_v4-vdsp_params.json", (342, 299, 21), "imagenet"),
    ("timm-inception_v3-vdsp_params.json", (342, 299, 21), "half"),
    ("timm-tf_inception_v3-vdsp_params.json", (342, 299, 21), "half"),
    ("timm-adv_inception_v3-vdsp_params.json", (342, 299, 21), "half"),
    ("timm-gluon_inception_v3-vdsp_params.json", (342, 299, 21), "half"),
    ("torchvision-inception_v3-vdsp_params.json", (342, 299, 21), "half"),
    ("ppcls-inception_v3-vdsp_params.json", (342, 299, 21), "imagenet"),
    ("official-iresnet50-vdsp_params.json", (256, 224, 16), "imagenet"),
    ("official-iresnet101-vdsp_params.json", (256, 224, 16), "imagenet"),
    ("official-iresnet152-vdsp_params.json", (256, 224, 16), "imagenet"),
    ("official-iresnet200-vdsp_params.json", (256, 224, 16), "imagenet"),
])
def test_model_zoo_values(name, geometry, norm):
    p = vdsp.load_params(FIXTURES / name)
    assert (p.image_width, p.resize_width, p.out_width, p.crop_x) == (geometry[0], *geometry)
    mean, std = ([0.5] * 3, [0.5] * 3) if norm == "half" else IMAGENET_FP16
    assert (list(p.mean), list(p.std)) == (mean, std)
    if norm == "imagenet":        # the float16 roundings of the ImageNet values, as the card stores them
        assert mean == [float(np.float16(v)) for v in (0.485, 0.456, 0.406)]


def test_every_registry_vdsp_name_is_a_fixture():
    assert set(VDSP_PARAMS_NAMES.values()) <= set(FILES)


def test_a_document_without_the_input_keys_reads_and_writes_without_them():
    doc = json.loads((FIXTURES / "timm-inception_v4-vdsp_params.json").read_text())
    for key in ("IimageWidth", "IimageHeight", "IimageWidthPitch", "IimageHeightPitch"):
        del doc["OpConfig"][key]
    params = vdsp.parse_params(doc)
    assert params.image_width is None and params.to_json() == doc
    fed = dataclasses.replace(params, image_width=299, image_height=299, image_width_pitch=299, image_height_pitch=299)
    assert list(fed.to_json()["OpConfig"]) == MODEL_ZOO_KEYS


def test_a_list_of_operators_stands_for_its_first(tmp_path):
    doc = json.loads((FIXTURES / "official-iresnet50-vdsp_params.json").read_text())
    path = tmp_path / "ops.json"
    path.write_text(json.dumps([doc, {"OpType": "SOMETHING_ELSE"}]))
    assert vdsp.load_params(path).to_json() == doc
    path.write_text("[]")
    with pytest.raises(ZoogateError, match="empty list of operators") as err:
        vdsp.load_params(path)
    assert str(path) in str(err.value)


def _with(**config) -> dict:
    doc = json.loads((FIXTURES / "timm-inception_v4-vdsp_params.json").read_text())
    doc["OpConfig"].update(config)
    return doc


@pytest.mark.parametrize("doc, message", [
    (_with(IimageWidth="342"), "OpConfig.IimageWidth: expected a positive integer"),
    (_with(IimageHeight=0), "OpConfig.IimageHeight: expected a positive integer"),
    (_with(IimageWidthPitch=True), "OpConfig.IimageWidthPitch: expected a positive integer"),
    (_with(IimageHeightPitch=300), "OpConfig.IimageHeightPitch: 300 is smaller than IimageHeight 342"),
], ids=["width-str", "height-zero", "pitch-bool", "pitch-below-height"])
def test_bad_input_keys_name_the_file_and_key(doc, message, tmp_path):
    path = tmp_path / "params.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ZoogateError, match=message) as err:
        vdsp.load_params(path)
    assert str(path) in str(err.value)
