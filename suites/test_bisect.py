"""First-divergence bisect (zoogate.bisect, `zoogate bisect`): a clean candidate has no divergence, a
planted change is named at its node, candidates with other tensor names are matched by node, bad input
is one line and exit 2. The fault matrix holds the planted faults that must be located exactly."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from zoogate import cli
from zoogate.bisect import bisect, graph_precision
from zoogate.faults_primary import PRIMARY, PrimaryModel


@pytest.fixture(scope="module")
def primary():
    return PrimaryModel.onnx()


@pytest.fixture(scope="module")
def batch():
    return PrimaryModel.images()[:2]


@pytest.fixture(scope="module")
def clean(primary, batch):
    return bisect(primary, primary, batch)


def _save(model, path):
    onnx.save(model, str(path))
    return path


def test_a_clean_candidate_has_no_divergence(clean, tmp_path):
    assert clean.first is None and len(clean.compared) > 100 and not clean.unmatched
    assert clean.describe().startswith("no divergence")
    json_path, png = clean.write(tmp_path / "p")
    profile = json.loads(json_path.read_text())
    assert profile["first_divergence"] is None and len(profile["profile"]) == len(clean.compared)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_a_perturbed_conv_is_named_and_exits_1(primary, tmp_path, capsys):
    from onnx import numpy_helper

    model = onnx.load(str(primary))
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    target = convs[-3]
    init = next(i for i in model.graph.initializer if i.name == target.input[1])
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(1.01), init.name))
    cand = _save(model, tmp_path / "cand.onnx")
    code = cli.main(["bisect", "--model", PRIMARY, "--candidate", str(cand), "--out", str(tmp_path / "p")])
    out = capsys.readouterr().out
    assert code == 1 and f"first divergent node {target.name!r} (Conv" in out
    assert json.loads((tmp_path / "p.json").read_text())["first_divergence"]["node"] == target.name


def test_renamed_tensors_are_matched_by_their_producing_node(primary, batch, clean, tmp_path):
    """A converter that renames every intermediate tensor but keeps node names (as fp16 and QDQ passes do)."""
    model = onnx.load(str(primary))
    produced = {o for n in model.graph.node for o in n.output} - {o.name for o in model.graph.output}
    rename = {name: f"renamed_{k}" for k, name in enumerate(sorted(produced))}
    for node in model.graph.node:
        node.input[:] = [rename.get(i, i) for i in node.input]
        node.output[:] = [rename.get(o, o) for o in node.output]
    cand = _save(model, tmp_path / "renamed.onnx")
    result = bisect(primary, cand, batch)
    assert result.first is None and not result.unmatched and len(result.compared) == len(clean.compared)


def test_precision_is_read_from_the_graph(primary):
    from zoogate import fp16

    assert graph_precision(primary) == "fp32"
    assert graph_precision(fp16.convert(primary)) == "fp16"


def test_bad_candidate_is_one_line_and_exit_2(tmp_path, capsys):
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"not a protobuf at all \x00\xff")
    assert cli.main(["bisect", "--model", PRIMARY, "--candidate", str(junk)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(junk) in err
    assert cli.main(["bisect", "--model", PRIMARY, "--candidate", str(tmp_path / "missing.onnx")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_a_capped_bisect_is_not_a_clean_result(primary, batch):
    result = bisect(primary, primary, batch, max_tensors=5)
    assert result.capped and result.first is None and "not a clean result" in result.describe()


def _conv_relu_conv(path):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.3, (4, 8, 1, 1)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["x", "w1"], ["conv1_out"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["conv1_out"], ["relu_out"], name="relu"),
             helper.make_node("Conv", ["relu_out", "w2"], ["y"], name="conv2")]
    graph = helper.make_graph(nodes, "conv_relu_conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                      [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])], [w1, w2])
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_a_relu_folded_into_int8_quantization_is_compared_as_carried(tmp_path):
    # ONNX Runtime's quantizer drops a Relu after a Conv and names the Conv's raw (unclipped) output after the
    # Relu; compared by name, every such Relu looked like a divergence (normalised error ~1)
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    fp32 = _conv_relu_conv(tmp_path / "fp32.onnx")
    images = np.random.default_rng(1).normal(0, 1, (9, 1, 3, 16, 16)).astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(images[:8])

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"x": batch}

    int8 = tmp_path / "int8.onnx"
    quantize_static(str(fp32), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    producers = {o: n.op_type for n in onnx.load(str(int8)).graph.node for o in n.output}
    assert producers["relu_out"] == "Conv"           # the folding this test is about happened
    # a two-layer int8 build stays within fp16's per-tensor tolerance: what is tested is the matching
    result = bisect(fp32, int8, images[8], precision="fp16")
    errors = {e.tensor: e.normalised for e in result.compared}
    assert set(errors) == {"conv1_out", "relu_out", "y"} and result.first is None, result.describe()
    assert errors["relu_out"] < 0.05
