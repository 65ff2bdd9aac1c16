"""Hypothesis fuzzing of every parser the suite owns: whatever bytes a user hands us, the only exception
that may escape is ZoogateError (naming the file) -- never a KeyError, IndexError, UnicodeDecodeError..."""

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoogate import baselines, datasets, results, results_vacc, vendor_cli
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


RELAY_LINE = "/data/val/n01440764/ILSVRC2012_val_00000293.JPEG: Relay top-{k} id: {id}, prob: {p}, class name: {name}"
relay_lines = st.lists(st.builds(RELAY_LINE.format, k=st.integers(-1, 6) | st.text(max_size=3),
                                 id=st.integers(-2, 1002) | st.text(max_size=4),
                                 p=st.floats(allow_nan=True) | st.text(max_size=6), name=st.text(max_size=12))
                       | st.text(max_size=60), max_size=16)


@FUZZ
@given(lines=relay_lines)
def test_relay_txt_lines(tmp_path, lines):
    path = _write(tmp_path, "result.txt", "\n".join(lines))
    _only_our_error(lambda: results_vacc.read_relay(path), path)


@FUZZ
@given(data=raw_bytes)
def test_relay_txt_and_class_list_any_bytes(tmp_path, data):
    path = _write(tmp_path, "result.txt", data)
    _only_our_error(lambda: results_vacc.read_relay(path), path)
    _only_our_error(lambda: results_vacc.read_class_list(path), path)


@FUZZ
@given(size=st.integers(0, 9000), dtype=st.sampled_from([None, "fp16", "fp32", "fp64"]))
def test_ais_bench_bin_any_size_and_dtype(tmp_path, size, dtype):
    path = _write(tmp_path, "x_0.bin", b"\0" * size)
    _only_our_error(lambda: results.read_bin(path, dtype), path)


@FUZZ
@given(lines=st.lists(st.builds("{}i:{} device_{} throughput:{} start_time:{} end_time:{}".format,
                                st.sampled_from(["", "[INFO] "]), st.integers(0, 3), st.integers(0, 9),
                                st.floats(allow_nan=True) | st.text(max_size=5), st.floats(-1, 1e10),
                                st.floats(-1, 1e10))
                      | st.builds("[INFO] summary throughput:{}".format, st.floats(allow_nan=True) | st.text(max_size=5))
                      | st.text(max_size=40), max_size=10))
def test_multi_device_log(tmp_path, lines):
    path = _write(tmp_path, "ais.log", "\n".join(lines))
    _only_our_error(lambda: vendor_cli.read_log(path), path)


FOLDER_NAMES = ["device0", "device1", "device1_0", "device2_1", "2024_01_02-03_04_05", "2024_01_02-03_04_06", "out"]
FILE_NAMES = ["a_0.txt", "a_0.bin", "b_0.npy", "a_1.txt", "device0_summary.json", "_summary.json", "x.npz"]


@FUZZ
@given(tree=st.lists(st.tuples(st.lists(st.sampled_from(FOLDER_NAMES), max_size=2), st.sampled_from(FILE_NAMES),
                               st.binary(max_size=40)), max_size=8),
       pick=st.sampled_from([None, "newest"]))
def test_result_folder_layouts(tmp_path, tree, pick):
    import shutil

    root = tmp_path / "out"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    for folders, name, data in tree:
        where = root.joinpath(*folders)
        where.mkdir(parents=True, exist_ok=True)
        if not (where / name).is_dir():
            (where / name).write_bytes(data)
    _only_our_error(lambda: results.score_folder(root, {"a": 1, "b": 2}, pick=pick), root)


@FUZZ
@given(names=st.lists(st.text(alphabet="ab.xJPEG_", min_size=1, max_size=8), min_size=1, max_size=6))
def test_label_keys_cut_at_the_first_dot(tmp_path, names):
    from zoogate.labelmap import first_dot_keys

    path = _write(tmp_path, "val_label.txt", "".join(f"{n} 1\n" for n in names))
    _only_our_error(lambda: first_dot_keys(datasets.labels_by_stem(path)[0]), path)


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
