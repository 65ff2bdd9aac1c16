"""Hypothesis fuzzing of every parser the suite owns: whatever bytes a user hands us, the only exception
that may escape is ZoogateError (naming the file) -- never a KeyError, IndexError, UnicodeDecodeError..."""

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoogate import baselines, datasets, results, vendor_cli
from zoogate.errors import ZoogateError
from zoogate.preprocess import vdsp

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=8)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=12)
raw_bytes = st.binary(max_size=400)
text_lines = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40), max_size=8)


def _write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    return path


def _only_our_error(fn, path: Path) -> None:
    try:
        fn()
    except ZoogateError as err:
        assert err.path is None or os.fspath(path) in str(err) or path.name in str(err), str(err)


def _mutated_config(doc: dict, key: str, value) -> dict:
    cfg = dict(doc["OpConfig"])
    if value is _DELETE:
        cfg.pop(key, None)
    else:
        cfg[key] = value
    return {**doc, "OpConfig": cfg}


_DELETE = object()
VDSP_GOOD = {"OpType": "FUSION_OP_RGB_RESIZE_CVTCOLOR_CROP_NORM_TENSOR",
             "OpConfig": {"IimageFormat": "RGB_PLANAR", "ResizeWidth": 342, "ResizeHeight": 342,
                          "OimageWidth": 299, "OimageHeight": 299, "CropX": 21, "CropY": 21,
                          "Mean": [0.5, 0.5, 0.5], "Std": [0.5, 0.5, 0.5], "NormaType": "DIV255_MINUSMEAN_DIVSTD",
                          "ColorCvtCode": "NO_CHANGE", "ResizeType": "BILINEAR_CV"}}


@FUZZ
@given(doc=json_values)
def test_vdsp_params_any_json(tmp_path, doc):
    path = _write(tmp_path, "vdsp.json", json.dumps(doc))
    _only_our_error(lambda: vdsp.load_params(path), path)


@FUZZ
@given(key=st.sampled_from(sorted(VDSP_GOOD["OpConfig"])), value=json_values | st.just(_DELETE))
def test_vdsp_params_one_key_broken(tmp_path, key, value):
    doc = _mutated_config(VDSP_GOOD, key, value)
    path = _write(tmp_path, "vdsp.json", json.dumps(doc, default=str))
    _only_our_error(lambda: vdsp.load_params(path), path)


@FUZZ
@given(data=raw_bytes)
def test_vdsp_params_any_bytes(tmp_path, data):
    path = _write(tmp_path, "vdsp.json", data)
    _only_our_error(lambda: vdsp.load_params(path), path)


@FUZZ
@given(doc=json_values)
def test_summary_json_any_json(tmp_path, doc):
    path = _write(tmp_path, "r_summary.json", json.dumps(doc))
    _only_our_error(lambda: vendor_cli.read_summary_json(path), path)


@FUZZ
@given(data=raw_bytes)
def test_summary_json_any_bytes(tmp_path, data):
    path = _write(tmp_path, "r_summary.json", data)
    _only_our_error(lambda: vendor_cli.read_summary_json(path), path)


@FUZZ
@given(lines=text_lines, number=st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6))
def test_throughput_log(tmp_path, lines, number):
    text = "\n".join(lines + [f"[INFO] throughput 1000*batchsize.mean(4)/NPU_compute_time.mean(2.6): {number}"])
    path = _write(tmp_path, "ais.log", text)
    _only_our_error(lambda: vendor_cli.read_throughput_log(path), path)


@FUZZ
@given(lines=text_lines)
def test_label_file(tmp_path, lines):
    path = _write(tmp_path, "val_label.txt", "\n".join(lines))
    _only_our_error(lambda: datasets.read_label_file(path), path)


@FUZZ
@given(data=raw_bytes)
def test_label_file_any_bytes(tmp_path, data):
    path = _write(tmp_path, "val_label.txt", data)
    _only_our_error(lambda: datasets.read_label_file(path), path)


@FUZZ
@given(rows=st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=6), max_size=3),
       junk=st.text(max_size=10))
def test_ais_bench_txt(tmp_path, rows, junk):
    body = "\n".join(" ".join(f"{v:f}" for v in row) + " " for row in rows) + junk
    path = _write(tmp_path, "ILSVRC2012_val_00000001_0.txt", body)
    _only_our_error(lambda: results.read_txt_rows([path]), path)


@FUZZ
@given(data=raw_bytes)
def test_ais_bench_bin_npy_npz_any_bytes(tmp_path, data):
    for name, reader in (("x_0.bin", results.read_bin), ("x_0.npy", results.read_npy), ("x.npz", results.read_npz)):
        path = _write(tmp_path, name, data)
        _only_our_error(lambda: reader(path), path)


@FUZZ
@given(lines=text_lines)
def test_datalist(tmp_path, lines):
    path = _write(tmp_path, "npz_datalist.txt", "\n".join(lines))
    _only_our_error(lambda: results.read_datalist(path), path)


BASELINE_TEXT = (baselines.BASELINE_DIR / "iresnet.toml").read_text(encoding="utf-8")


@FUZZ
@given(cut=st.integers(0, len(BASELINE_TEXT)), insert=st.text(max_size=20))
def test_baseline_file_mangled(tmp_path, cut, insert):
    path = _write(tmp_path, "iresnet.toml", BASELINE_TEXT[:cut] + insert + BASELINE_TEXT[cut:])
    _only_our_error(lambda: baselines.parse_family_file(path), path)


@FUZZ
@given(data=raw_bytes)
def test_baseline_and_tolerance_any_bytes(tmp_path, data):
    path = _write(tmp_path, "fam.toml", data)
    _only_our_error(lambda: baselines.parse_family_file(path), path)
    _only_our_error(lambda: baselines.parse_tolerance_file(path), path)


def test_fuzz_helper_rejects_foreign_exceptions(tmp_path):
    """The property above must be able to fail: a KeyError escaping is reported."""
    path = _write(tmp_path, "x", b"")
    with pytest.raises(KeyError):
        _only_our_error(lambda: {}["boom"], path)
