"""`zoogate check-build`: a vamc build config against the model's documented pipeline.

The configs below are written here with the keys and values the model zoo's build yamls carry (its
timm_inceptionv4.yaml: a square [342, 342] calibration resize, 50 calibration images, a softmax extra op).
"""

from __future__ import annotations

import pytest
import yaml

from zoogate import baselines, cli
from zoogate.buildcheck import check_build, yaml_preprocess
from zoogate.errors import ZoogateError
from zoogate.vamc import load_build_config


def _config(*, name="timm_inceptionv4_int8", shape=(1, 3, 299, 299), dtype="int8", resize=(342, 342), crop=299,
            mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), images=50, softmax=True) -> dict:
    ops = [{"type": "DecodeImage"}]
    if resize is not None:
        ops.append({"type": "Resize", "size": list(resize) if isinstance(resize, tuple) else resize})
    ops += [{"type": "CenterCrop", "crop_size": [crop, crop]},
            {"type": "Normalize", "mean": list(mean), "std": list(std)}, {"type": "ToTensor"}]
    doc = {"name": name,
           "frontend": {"shape": {"input": list(shape)}, "type": "onnx", "checkpoint": "/path/to/inception_v4.onnx",
                        "dtype": "fp32"},
           "backend": {"type": "tvm_vacc", "dtype": dtype, "compile": {"cluster_mode": 0},
                       "quantize": {"calibrate_mode": "percentile", "quantize_per_channel": True}},
           "dataset": {"type": "tvm", "path": "/path/to/ILSVRC2012_img_calib",
                       "sampler": {"suffix": "JPEG", "get_data_num": images}, "process_ops": ops},
           "workspace": {"path": "./deploy_weights/"}}
    if softmax:
        doc["graph"] = {"extra_ops": {"type": "softmax"}}
    return doc


def _write(tmp_path, doc, name="build.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _cli(capsys, *args):
    code = cli.main(["check-build", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_the_model_zoo_config_is_flagged(tmp_path, capsys):
    code, out = _cli(capsys, _write(tmp_path, _config()))
    assert code == 1
    assert "FINDING  dataset.process_ops.Resize: size [342, 342] is a square resize" in out
    assert "FINDING  dataset.sampler.get_data_num: 50 calibration images, the guide asks for 1000" in out
    assert "max abs" in out and "fixture images" in out          # the measured distance of the square resize
    assert "outputs probabilities" in out and "deploy_weights/timm_inceptionv4_int8/mod" in out


def test_a_conforming_config_passes(tmp_path, capsys):
    code, out = _cli(capsys, _write(tmp_path, _config(resize=342, images=1000)))
    assert code == 0, out
    assert "conforms" in out and "FINDING" not in out


def test_each_finding_alone(tmp_path):
    good = dict(resize=342, images=1000)
    cases = {"frontend.shape.input": dict(shape=(1, 3, 224, 224)),
             "dataset.process_ops.CenterCrop": dict(crop=300),
             "dataset.process_ops.Normalize.mean": dict(mean=(0.501, 0.5, 0.5)),
             "dataset.process_ops.Normalize.std": dict(std=(0.229, 0.224, 0.225)),
             "dataset.process_ops.Resize": dict(resize=343)}
    for key, change in cases.items():
        result = check_build(load_build_config(_write(tmp_path, _config(**{**good, **change}))), "inception_v4")
        assert [f.key for f in result.findings] == [key], (key, [f.line() for f in result.findings])


def test_fp16_builds_need_no_calibration_set(tmp_path):
    doc = _config(name="timm_inceptionv4_fp16", dtype="fp16", resize=342, images=50)
    result = check_build(load_build_config(_write(tmp_path, doc)), "inception_v4")
    assert result.conforms, [f.line() for f in result.findings]


def test_square_resize_emulation_is_not_the_reference(tmp_path):
    from zoogate.preprocess.reference import preprocess_reference
    from zoogate.synthetic import images

    spec = baselines.model("inception_v4").preprocess
    img = images(1, seed=3)[0]
    square = load_build_config(_write(tmp_path, _config(), "square.yaml"))
    short = load_build_config(_write(tmp_path, _config(resize=342), "short.yaml"))
    reference = preprocess_reference(img, spec)
    assert float(abs(yaml_preprocess(short, img, spec) - reference).max()) == 0.0
    assert float(abs(yaml_preprocess(square, img, spec) - reference).max()) > 0.1


@pytest.mark.parametrize("text, problem", [
    ("name: [unclosed", "not valid YAML"),
    ("- a\n- b\n", "expected a mapping"),
    ("name: x\nbackend: {dtype: int8}\n", "frontend.shape.input: missing"),
    ("name: x\nfrontend: {shape: {input: [1, 3, -1, 299]}}\nbackend: {dtype: int8}\n", "positive integers"),
])
def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys, text, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out = _cli(capsys, path)
    assert code == 2 and problem in out and str(path) in out and len(out.strip().splitlines()) == 1


def test_unknown_build_name_asks_for_the_model(tmp_path, capsys):
    code, out = _cli(capsys, _write(tmp_path, _config(name="my_net_int8")))
    assert code == 2 and "pass --model M" in out
    with pytest.raises(ZoogateError, match="not found"):
        load_build_config(tmp_path / "missing.yaml")
