"""Golden I/O round trip: `zoogate golden` writes reference I/O, a runner replays the inputs,
`zoogate compare` scores its outputs (exit 0 pass, 1 fail, 2 bad input)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hardware.onnxruntime_runner import OnnxRuntimeRunner
from zoogate import cache, golden
from zoogate.cli import main
from zoogate.errors import ZoogateError

MODEL = "iresnet50"        # the cheap real network
N = 2


@pytest.fixture(scope="module")
def golden_dir(tmp_path_factory, zoo):
    zoo.model(MODEL)       # calibrated weights from the session cache (or their skip/fail reason)
    out = tmp_path_factory.mktemp("golden") / MODEL
    assert main(["golden", "--model", MODEL, "--out", str(out), "--n", str(N), "--seed", "3"]) == 0
    return out


@pytest.fixture(scope="module")
def runner_outputs(golden_dir, zoo):
    """What a lab does: feed test_data_set_0/input_0.pb to its runner (here ONNX Runtime on our export)."""
    inputs = golden.load_tensor(golden_dir / "test_data_set_0" / "input_0.pb")
    with OnnxRuntimeRunner(intra_op_threads=2).load(zoo.onnx(MODEL), N) as runner:
        return runner.infer(inputs)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_golden_layout_and_manifest(golden_dir, zoo):
    assert (golden_dir / "test_data_set_0" / "input_0.pb").is_file()
    assert (golden_dir / "test_data_set_0" / "output_0.pb").is_file()
    m = json.loads((golden_dir / "manifest.json").read_text())
    loaded = zoo.model(MODEL)
    assert m["model"] == MODEL and m["seed"] == 3 and m["images"]["n"] == N
    assert m["weights"]["id"] == loaded.weights_id and m["weights"]["origin"] == loaded.origin
    assert m["preprocessing"]["description"] == loaded.baseline.preprocess.describe()
    for lib in ("torch", "timm", "onnx", "onnxruntime", "numpy"):
        assert m["versions"][lib]
    size = loaded.baseline.input_size
    assert m["input"]["shape"] == [N, 3, size, size] and m["input"]["name"] == "image"
    assert m["output"]["shape"] == [N, loaded.baseline.num_classes] and m["output"]["name"] == "class"
    # the .pb files are ONNX TensorProtos named like the graph's I/O; the .npy copies hold the same arrays
    import onnx

    proto = onnx.TensorProto()
    proto.ParseFromString((golden_dir / "test_data_set_0" / "input_0.pb").read_bytes())
    assert proto.name == "image"
    g = golden.read_golden(golden_dir)
    np.testing.assert_array_equal(g.inputs, np.load(golden_dir / "input_0.npy", allow_pickle=False))
    np.testing.assert_array_equal(g.outputs, np.load(golden_dir / "output_0.npy", allow_pickle=False))
    # and the reference outputs are the eager model's on those inputs
    import torch

    with torch.inference_mode():
        eager = loaded.module(torch.from_numpy(g.inputs.copy())).numpy()
    np.testing.assert_array_equal(g.outputs, eager)


@pytest.mark.parametrize("fmt", ["pb", "npy"])
def test_runner_outputs_pass_compare(golden_dir, runner_outputs, tmp_path, capsys, fmt):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    golden.save_tensor(runner_outputs, outputs / f"output_0.{fmt}", "class")
    code, out, _ = _run(capsys, "compare", "--golden", str(golden_dir), "--outputs", str(outputs))
    assert code == 0, out
    assert "verdict     : PASS" in out and "max abs" in out


def test_planted_offset_fails_with_exit_1(golden_dir, runner_outputs, tmp_path, capsys):
    shifted = runner_outputs.copy()
    shifted[1, 10] += 0.5                    # one logit off: far beyond any fp32 tolerance, top-1 unchanged
    golden.save_tensor(shifted, tmp_path / "output_0.npy")
    code, out, _ = _run(capsys, "compare", "--golden", str(golden_dir), "--outputs", str(tmp_path))
    assert code == 1
    assert "verdict     : FAIL on elementwise" in out
    assert "worst elem. : [1, 10]" in out


def test_flat_device_dump_is_reshaped(golden_dir, runner_outputs, tmp_path):
    golden.save_tensor(runner_outputs.reshape(-1), tmp_path / "out.npy")
    assert golden.compare_outputs(golden_dir, tmp_path / "out.npy").passed


def test_fp16_tolerance_is_selectable(golden_dir, runner_outputs, tmp_path, capsys):
    golden.save_tensor(runner_outputs, tmp_path / "output_0.npy")
    code, out, _ = _run(capsys, "compare", "--golden", str(golden_dir), "--outputs", str(tmp_path),
                        "--tolerance", "fp16")
    assert code == 0 and "tolerance fp16:" in out


def test_golden_gate_record(golden_dir, runner_outputs, tmp_path):
    golden.save_tensor(runner_outputs + 1.0, tmp_path / "output_0.pb", "class")
    record = golden.golden_gate(golden_dir, tmp_path, runner="onnxruntime")
    assert record.status == "fail" and record.gate == "agreement" and record.check == "golden"
    assert record.model == MODEL and record.bs == N


# ---------------------------------------------------------------------------- user errors: exit 2, nothing lost

def test_wrong_shape_outputs_is_a_user_error(golden_dir, runner_outputs, tmp_path, capsys):
    golden.save_tensor(runner_outputs[:1], tmp_path / "output_0.npy")
    code, _, err = _run(capsys, "compare", "--golden", str(golden_dir), "--outputs", str(tmp_path))
    assert code == 2 and "output_0.npy" in err and "shape" in err


def test_missing_or_ambiguous_outputs(golden_dir, tmp_path, capsys):
    code, _, err = _run(capsys, "compare", "--golden", str(golden_dir), "--outputs", str(tmp_path / "nope"))
    assert code == 2 and "nope" in err
    (tmp_path / "a.npy").write_bytes(b"")
    (tmp_path / "b.npy").write_bytes(b"")
    with pytest.raises(ZoogateError, match="several candidate output files"):
        golden.find_outputs(tmp_path)


def test_corrupt_outputs_are_user_errors(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    with pytest.raises(ZoogateError, match=r"bad\.npy: not a readable \.npy"):
        golden.load_tensor(tmp_path / "bad.npy")
    (tmp_path / "bad.pb").write_bytes(b"\xff\xff\xff garbage")
    with pytest.raises(ZoogateError, match=r"bad\.pb: not a readable ONNX TensorProto"):
        golden.load_tensor(tmp_path / "bad.pb")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ZoogateError, match="not a readable .npy"):        # never unpickled
        golden.load_tensor(tmp_path / "obj.npy")


def test_tampered_golden_set_is_refused(golden_dir, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(golden_dir, copy)
    arr = np.load(copy / "output_0.npy")
    golden.save_tensor(arr, copy / "test_data_set_0" / "output_0.pb", "renamed")   # same numbers, new bytes
    code, _, err = _run(capsys, "compare", "--golden", str(copy), "--outputs", str(copy))
    assert code == 2 and "sha256 differs" in err and "output_0.pb" in err
    code, _, err = _run(capsys, "compare", "--golden", str(tmp_path), "--outputs", str(copy))
    assert code == 2 and "no manifest.json" in err


def test_golden_refuses_a_non_empty_directory(tmp_path, capsys):
    keep = tmp_path / "mine.txt"
    keep.write_text("precious")
    code, _, err = _run(capsys, "golden", "--model", MODEL, "--out", str(tmp_path))
    assert code == 2 and "not empty" in err
    code, _, err = _run(capsys, "golden", "--model", MODEL, "--out", str(tmp_path), "--force")
    assert code == 2 and "not a golden set" in err
    assert keep.read_text() == "precious" and sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_write_golden_force_replaces_only_a_golden_set(tmp_path):
    inputs, outputs = np.zeros((1, 3, 4, 4), np.float32), np.arange(5, dtype=np.float32)[None]
    target = golden.write_golden(tmp_path / "g", inputs, outputs, {"model": "toy"})
    golden.write_golden(target, inputs, outputs + 1, {"model": "toy"}, force=True)
    np.testing.assert_array_equal(golden.read_golden(target).outputs, outputs + 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]          # no temp or previous folders left


def _tree(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_golden_force_refuses_a_folder_with_someone_elses_manifest(tmp_path, capsys):
    site = tmp_path / "site"
    site.mkdir()
    (site / "manifest.json").write_text('{"name": "a web app", "start_url": "/"}')
    (site / "index.html").write_text("<p>mine</p>")
    before = _tree(site)
    code, _, err = _run(capsys, "golden", "--model", MODEL, "--out", str(site), "--force")
    assert code == 2 and "not a zoogate golden manifest" in err and "manifest.json" in err, err
    assert len(err.strip().splitlines()) == 1
    (site / "manifest.json").write_text("not json at all")
    before = _tree(site)
    code, _, err = _run(capsys, "golden", "--model", MODEL, "--out", str(site), "--force")
    assert code == 2 and "not readable JSON" in err, err
    assert _tree(site) == before


def test_golden_force_refuses_a_golden_set_holding_a_users_file(tmp_path):
    inputs, outputs = np.zeros((1, 3, 4, 4), np.float32), np.arange(5, dtype=np.float32)[None]
    target = golden.write_golden(tmp_path / "g", inputs, outputs, {"model": "toy"})
    (target / "notes.txt").write_text("my notes")
    (target / "test_data_set_1").mkdir()
    before = _tree(target)
    with pytest.raises(ZoogateError, match=r"notes.txt, test_data_set_1\); move them out first"):
        golden.write_golden(target, inputs, outputs + 1, {"model": "toy"}, force=True)
    assert _tree(target) == before and (target / "test_data_set_1").is_dir()


def test_golden_force_replaces_a_golden_set_of_another_version(tmp_path):
    inputs, outputs = np.zeros((1, 3, 4, 4), np.float32), np.arange(5, dtype=np.float32)[None]
    target = golden.write_golden(tmp_path / "g", inputs, outputs, {"model": "toy"})
    manifest = json.loads((target / golden.MANIFEST).read_text())
    for fmt, replaced in (("zoogate-golden/7", True), ("zoogate-golden/x", False), ("other-golden/1", False)):
        (target / golden.MANIFEST).write_text(json.dumps(dict(manifest, format=fmt)))
        if replaced:
            golden.write_golden(target, inputs, outputs + 1, {"model": "toy"}, force=True)
            assert golden.read_golden(target).manifest["format"] == golden.FORMAT
            manifest = json.loads((target / golden.MANIFEST).read_text())
        else:
            with pytest.raises(ZoogateError, match="not a zoogate golden manifest"):
                golden.write_golden(target, inputs, outputs + 2, {"model": "toy"}, force=True)
            np.testing.assert_array_equal(np.load(target / "output_0.npy"), outputs + 1)


def test_export_command_writes_a_checked_onnx(tmp_path, capsys, zoo):
    zoo.onnx(MODEL)                                                      # the cached export: a cache hit here
    out = tmp_path / "iresnet50.onnx"
    code, text, _ = _run(capsys, "export", "--model", MODEL, "--out", str(out))
    assert code == 0, text
    assert f"wrote {out}" in text and "cache hit" in text and "onnx.checker: ok" in text
    import onnx

    model = onnx.load(str(out), load_external_data=False)
    assert [i.name for i in model.graph.input] == ["image"] and [o.name for o in model.graph.output] == ["class"]
    code, _, err = _run(capsys, "export", "--model", MODEL, "--out", str(tmp_path / "x.txt"))
    assert code == 2 and "x.txt" in err


# ---------------------------------------------------------------------------- the build a golden set is of

def test_manifest_records_the_build_and_compare_reports_it(golden_dir, runner_outputs, tmp_path, capsys, zoo):
    build = golden.read_golden(golden_dir).build
    loaded = zoo.model(MODEL)
    assert build.model == MODEL and build.weights == loaded.weights_identity and build.runner == "torch"
    assert build.precision == "fp32" and build.preprocess == loaded.baseline.preprocess.describe()
    golden.save_tensor(runner_outputs, tmp_path / "output_0.npy")
    code, out, _ = _run(capsys, "compare", "--golden", str(golden_dir), "--outputs", str(tmp_path), "--model", MODEL)
    assert code == 0, out
    assert f"golden build: model {MODEL}; artifact {loaded.weights_identity}" in out


def test_golden_set_of_another_build_is_refused(golden_dir, runner_outputs, tmp_path, capsys):
    golden.save_tensor(runner_outputs, tmp_path / "output_0.npy")
    checkpoint = tmp_path / "other.safetensors"
    checkpoint.write_bytes(b"other weights")
    code, out, err = _run(capsys, "compare", "--golden", str(golden_dir), "--outputs", str(tmp_path),
                          "--model", MODEL, "--weights", str(checkpoint))
    assert code == 2 and "verdict" not in out
    assert err.count("\n") == 1 and "golden set is from another build: weights: saved calibrated, seed 0" in err
    assert f"now sha256:{cache.sha256_file(checkpoint)[:12]}.." in err
    code, _, err = _run(capsys, "compare", "--golden", str(golden_dir), "--outputs", str(tmp_path),
                        "--model", "iresnet101")
    assert code == 2 and f"model: saved {MODEL}, now iresnet101" in err
    with pytest.raises(ZoogateError, match="golden set is from another build: weights"):
        golden.golden_gate(golden_dir, tmp_path, expect=golden.expected_build(MODEL, checkpoint))


def test_golden_set_without_a_recorded_build_is_refused_for_a_claimed_one(tmp_path, runner_outputs):
    inputs = np.zeros((N, 3, 4, 4), np.float32)
    old = golden.write_golden(tmp_path / "old", inputs, runner_outputs, {"model": MODEL})
    assert golden.describe_build(golden.read_golden(old)).startswith("not recorded")
    golden.save_tensor(runner_outputs, tmp_path / "output_0.npy")
    assert golden.compare_outputs(old, tmp_path).passed                       # nothing claimed: compared
    with pytest.raises(ZoogateError, match="build identity: saved none recorded"):
        golden.compare_outputs(old, tmp_path, expect=golden.expected_build(MODEL))


def test_an_interrupted_replace_puts_the_previous_set_back(tmp_path, monkeypatch):
    inputs, outputs = np.zeros((1, 3, 4, 4), np.float32), np.arange(5, dtype=np.float32)[None]
    target = golden.write_golden(tmp_path / "g", inputs, outputs, {"model": "toy"})
    hidden = tmp_path / ".g.previous"            # a folder of that name is never taken for scratch space
    hidden.mkdir()
    (hidden / "mine.txt").write_text("mine")
    real_rename = type(target).rename

    def interrupted(self, dest):
        if self.name.endswith(".tmp"):
            raise KeyboardInterrupt
        return real_rename(self, dest)

    monkeypatch.setattr(type(target), "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        golden.write_golden(target, inputs, outputs + 1, {"model": "toy"}, force=True)
    monkeypatch.undo()
    np.testing.assert_array_equal(golden.read_golden(target).outputs, outputs)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".g.previous", "g"]
    assert (hidden / "mine.txt").read_text() == "mine"
