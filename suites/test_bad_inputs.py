"""Bad inputs: each kind gets a ZoogateError that names the file and the problem, and the file is left
exactly as the user gave it (byte-identical afterwards). Images that are unusual but valid (CMYK, 16-bit)
are accepted and converted the way the reference does."""

import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hardware import artifacts
from zoogate import accuracy, baselines, cache, cli, datasets, golden, images, partial_results, report, results
from zoogate.errors import ZoogateError
from zoogate.plugin import core
from zoogate.preprocess import variants

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "images"


def _labels_dir(tmp_path: Path, lines: list[str], names: list[str]) -> Path:
    val = tmp_path / "val"
    val.mkdir()
    for name in names:
        shutil.copy(FIXTURES / "good" / "rgb_small_64x48.png", val / name)
    (tmp_path / "val_label.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def _results_dir(tmp_path: Path, rows: dict[str, str]) -> Path:
    folder = tmp_path / "result"
    folder.mkdir()
    for stem, text in rows.items():
        (folder / f"{stem}_0.txt").write_text(text)
    return folder


def _txt_row(values) -> str:
    return " ".join(f"{v:f}" for v in values) + " \n"


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def corrupt_image(tmp_path):
    return images.open_rgb, FIXTURES / "bad" / "not_an_image.jpg", "not an image"


def truncated_image(tmp_path):
    return images.open_rgb, FIXTURES / "bad" / "truncated.jpg", "cannot decode"


def zero_byte_image(tmp_path):
    return images.open_rgb, FIXTURES / "bad" / "zero_bytes.jpg", "empty file"


def text_file_as_image(tmp_path):
    return images.open_rgb, FIXTURES / "bad" / "readme.txt", "not an image"


def missing_label(tmp_path):
    root = _labels_dir(tmp_path, ["a.JPEG 1"], ["a.JPEG", "b.JPEG"])
    return datasets.open_dataset, root / "val_label.txt", "b.JPEG"


def duplicate_label(tmp_path):
    root = _labels_dir(tmp_path, ["a.JPEG 1", "a.JPEG 2"], ["a.JPEG"])
    return datasets.open_dataset, root / "val_label.txt", "duplicate"


def label_out_of_range(tmp_path):
    root = _labels_dir(tmp_path, ["a.JPEG 1000"], ["a.JPEG"])
    return datasets.open_dataset, root / "val_label.txt", "out of range"


def unparseable_label_line(tmp_path):
    root = _labels_dir(tmp_path, ["a.JPEG one"], ["a.JPEG"])
    return datasets.open_dataset, root / "val_label.txt", "line 1"


def label_for_missing_image(tmp_path):
    root = _labels_dir(tmp_path, ["a.JPEG 1", "ghost.JPEG 2"], ["a.JPEG"])
    return datasets.open_dataset, root / "val_label.txt", "ghost.JPEG"


def wrong_class_count(tmp_path):
    folder = _results_dir(tmp_path, {"x": _txt_row(np.zeros(999))})
    return (lambda p: results.score_folder(folder, {"x": 1})), folder / "x_0.txt", "999"


def nan_logits(tmp_path):
    folder = _results_dir(tmp_path, {"x": _txt_row([np.nan] + [0.0] * 999)})
    return (lambda p: results.score_folder(folder, {"x": 1})), folder / "x_0.txt", "nan"


def truncated_result_row(tmp_path):
    folder = _results_dir(tmp_path, {"x": _txt_row(np.zeros(1000)), "y": _txt_row(np.zeros(1000))[:-900]})
    return (lambda p: results.score_folder(folder, {"x": 1, "y": 2})), folder / "y_0.txt", "y_0.txt"


def missing_result_file(tmp_path):
    folder = _results_dir(tmp_path, {"x": _txt_row(np.zeros(1000))})
    return (lambda p: results.score_folder(folder, {"x": 1, "y": 2})), folder, "y"


def bin_of_no_known_size(tmp_path):
    folder = tmp_path / "result"
    folder.mkdir()
    (folder / "x_0.bin").write_bytes(b"\0" * 3000)               # 750 fp32 or 1500 fp16 values: no classifier's
    return (lambda p: results.score_folder(folder, {"x": 1})), folder / "x_0.bin", "3000 bytes is no output"


def label_lines_that_collide_at_the_first_dot(tmp_path):
    folder = _results_dir(tmp_path, {"a": _txt_row(np.zeros(1000))})
    (tmp_path / "val_label.txt").write_text("a.x.JPEG 1\na.y.JPEG 2\n")
    labels = lambda p: datasets.labels_by_stem(p / "val_label.txt")[0]
    return (lambda p: results.score_folder(folder, labels(p), allow_subset=True)), tmp_path / "val_label.txt", \
        "both key as 'a'"


def relay_txt_cut_short(tmp_path):
    path = tmp_path / "result.txt"
    line = "/val/n01440764/a.JPEG: Relay top-{} id: {}, prob: 0.10000000, class name: c{}\n"
    path.write_text("".join(line.format(k, k, k) for k in range(5)) + line.format(0, 0, 0))
    return (lambda p: results.score_folder(p, None)), path, "cut short"


def pickled_npy(tmp_path):
    path = tmp_path / "x_0.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return results.read_npy, path, "pickle"


def pickled_checkpoint(tmp_path):
    import torch

    from zoogate import weights

    path = tmp_path / "iresnet50.pth"
    torch.save({"state_dict": {}, "hook": _Evil()}, path)
    return (lambda p: weights.load_model("iresnet50", str(p))), path, "refused"


def malformed_baseline(tmp_path):
    path = tmp_path / "iresnet.toml"
    path.write_text((baselines.BASELINE_DIR / "iresnet.toml").read_text().replace("top1 = 77.168", 'top1 = "x"'))
    return baselines.parse_family_file, path, "models.iresnet50.top1"


def missing_model_artifact(tmp_path):
    return (lambda p: artifacts.find_om(p, "inception_v4", 4)), tmp_path, "inception_v4_bs4"


def unreadable_directory(tmp_path, monkeypatch):
    root = _labels_dir(tmp_path, ["a.JPEG 1"], ["a.JPEG"])

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(datasets.os, "scandir", denied)   # root ignores chmod, so deny at the syscall wrapper
    return datasets.open_dataset, root / "val", "permission denied"


def symlink_loop_in_results(tmp_path):
    folder = _results_dir(tmp_path, {"x": _txt_row(np.zeros(1000))})
    (folder / "y_0.txt").symlink_to("y_0.txt")                       # points at itself: ELOOP on stat
    return (lambda p: results.score_folder(folder, {"x": 1, "y": 2})), folder, "symbolic link loop"


def symlink_loop_in_dataset(tmp_path):
    root = _labels_dir(tmp_path, ["a.JPEG 1"], ["a.JPEG"])
    (root / "val" / "b.JPEG").symlink_to("c.JPEG")
    (root / "val" / "c.JPEG").symlink_to("b.JPEG")
    return (lambda p: datasets.open_dataset(root)), root / "val", "symbolic link loop"


def allow_subset_without_output_0(tmp_path):
    folder = _results_dir(tmp_path, {"x": _txt_row(np.zeros(1000))})
    (folder / "x_0.txt").rename(folder / "x_1.txt")                  # only a second output: nothing pairs
    return (lambda p: results.score_folder(folder, {"x": 1, "y": 2}, allow_subset=True)), folder, "nothing to score"


def _state_file(tmp_path: Path, top5, nonfinite, meta, raw: bytes | None = None) -> Path:
    """A partial-results file as partial_results.save_state writes it (or `raw` bytes instead)."""
    path = tmp_path / "iresnet50-torch-bs4-0123456789abcdef.npz"
    if raw is not None:
        path.write_bytes(raw)
        return path
    blob = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    with open(path, "wb") as fh:
        np.savez(fh, top5=np.asarray(top5), nonfinite=np.asarray(nonfinite), meta=np.frombuffer(blob, np.uint8))
    return path


_STATE_META = {"version": 1, "n": 8, "done": 2, "num_classes": 1000}


def _load_state(path):
    return partial_results.load_state(path, {"n": 8})


def partial_results_not_a_zip(tmp_path):
    return _load_state, _state_file(tmp_path, None, None, None, raw=b"PK\x03\x04" + b"edited by hand" * 20), "unreadable"


def partial_results_wrong_shape(tmp_path):
    path = _state_file(tmp_path, np.zeros((2, 3), np.int16), np.zeros(2, bool), _STATE_META)
    return _load_state, path, "shape (n, 5)"


def partial_results_float_class_ids(tmp_path):
    path = _state_file(tmp_path, np.zeros((2, 5), np.float32), np.zeros(2, bool), _STATE_META)
    return _load_state, path, "integer class ids"


def partial_results_class_id_out_of_range(tmp_path):
    path = _state_file(tmp_path, np.full((2, 5), 1000, np.int16), np.zeros(2, bool), _STATE_META)
    return _load_state, path, "outside [0, 1000)"


def partial_results_negative_class_id(tmp_path):
    path = _state_file(tmp_path, np.full((2, 5), -1, np.int16), np.zeros(2, bool), _STATE_META)
    return _load_state, path, "outside [0, 1000)"


def partial_results_nonfinite_mismatch(tmp_path):
    path = _state_file(tmp_path, np.zeros((2, 5), np.int16), np.zeros(3, np.int8), _STATE_META)
    return _load_state, path, "nonfinite"


def partial_results_class_count(tmp_path):
    path = _state_file(tmp_path, np.zeros((2, 5), np.int16), np.zeros(2, bool), dict(_STATE_META, num_classes=7))
    return _load_state, path, "expected 1000 or 1001"


def partial_results_meta_not_an_object(tmp_path):
    return _load_state, _state_file(tmp_path, np.zeros((2, 5), np.int16), np.zeros(2, bool), [1, 2]), "expected an object"


def partial_results_meta_count_is_text(tmp_path):
    path = _state_file(tmp_path, np.zeros((2, 5), np.int16), np.zeros(2, bool), dict(_STATE_META, done="2"))
    return _load_state, path, "meta done"


class _FakeRunner:
    """What partial_results.run_identity reads of a loaded runner: a name, its artifact and weights."""

    name, artifact_id, weights_identity, precision = "torch", "sha256:" + "ab" * 32, "sha256:" + "cd" * 32, "fp32"

    def infer(self, batch):
        return np.zeros((len(batch), 1000), np.float32)


def _build_of(ds):
    return partial_results.run_identity(_FakeRunner(), "iresnet50", baselines.model("iresnet50").preprocess, ds)


def saved_reference_run_out_of_range(tmp_path):
    root = _labels_dir(tmp_path, ["a.JPEG 1", "b.JPEG 2"], ["a.JPEG", "b.JPEG"])
    ds = datasets.open_dataset(root)
    identity = _build_of(ds)
    meta = {"version": 1, "identity": identity.to_dict(), "model": "iresnet50", "runner": "torch", "batch_size": 2,
            "n": 2, "done": 2, "num_classes": 1000}
    state = tmp_path / "state"
    state.mkdir()
    path = _state_file(state, np.full((2, 5), 5000, np.int16), np.zeros(2, bool), meta)
    return (lambda p: accuracy.result_from_state(p, ds, identity)), path, "outside [0, 1000)"


def cache_dir_is_a_file(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    path.write_text("not a folder")
    monkeypatch.setattr(cache, "_override", None)
    return cache.set_root, path, "not a folder"


def zoogate_cache_env_is_a_file(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    path.write_text("not a folder")
    monkeypatch.setattr(cache, "_override", None)
    monkeypatch.setenv("ZOOGATE_CACHE", str(path))
    return (lambda p: cache.root()), path, "$ZOOGATE_CACHE"


def unwritable_cache_dir(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    path.mkdir()
    real_access = os.access
    monkeypatch.setattr(cache, "_override", None)
    monkeypatch.setattr(cache.os, "access",             # root ignores chmod, so deny at the syscall wrapper
                        lambda p, mode, **kw: False if Path(p) == path else real_access(p, mode, **kw))
    return cache.set_root, path, "not writable"


def _tensor_with_external_data(tmp_path: Path, location: str) -> Path:
    import onnx

    tensor = onnx.TensorProto(name="class", data_type=onnx.TensorProto.FLOAT, dims=[1, 4],
                              data_location=onnx.TensorProto.EXTERNAL)
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    path = tmp_path / "output_0.pb"
    path.write_bytes(tensor.SerializeToString())
    return path


def golden_tensor_with_external_data(tmp_path, monkeypatch):
    """A readable file where the tensor points: without the refusal, onnx would read it as the data."""
    (tmp_path / "secret.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    monkeypatch.chdir(tmp_path)          # where onnx resolves a relative location
    return golden.load_tensor, _tensor_with_external_data(tmp_path, "secret.bin"), "external file"


def golden_tensor_with_absolute_external_data(tmp_path):
    return golden.load_tensor, _tensor_with_external_data(tmp_path, "/etc/hostname"), "refusing to read"


def wilson_confidence_above_one(tmp_path):
    path = tmp_path / "tolerances.toml"
    text = (baselines.BASELINE_DIR / "tolerances.toml").read_text()
    start = text.index("[wilson_confidence]")
    path.write_text(text[:start] + text[start:].replace("value = 0.99", "value = 1.5", 1))
    return baselines.parse_tolerance_file, path, "wilson_confidence.value"


def wilson_confidence_zero(tmp_path):
    path = tmp_path / "tolerances.toml"
    text = (baselines.BASELINE_DIR / "tolerances.toml").read_text()
    start = text.index("[wilson_confidence]")
    path.write_text(text[:start] + text[start:].replace("value = 0.99", "value = 0", 1))
    return baselines.parse_tolerance_file, path, "strictly between 0 and 1"


BAD_INPUTS = [corrupt_image, truncated_image, zero_byte_image, text_file_as_image, missing_label, duplicate_label,
              label_out_of_range, unparseable_label_line, label_for_missing_image, wrong_class_count, nan_logits,
              truncated_result_row, missing_result_file, bin_of_no_known_size, label_lines_that_collide_at_the_first_dot,
              relay_txt_cut_short, pickled_npy, pickled_checkpoint, malformed_baseline,
              missing_model_artifact, unreadable_directory, symlink_loop_in_results, symlink_loop_in_dataset,
              allow_subset_without_output_0, partial_results_not_a_zip, partial_results_wrong_shape,
              partial_results_float_class_ids, partial_results_class_id_out_of_range,
              partial_results_negative_class_id, partial_results_nonfinite_mismatch, partial_results_class_count,
              partial_results_meta_not_an_object, partial_results_meta_count_is_text,
              saved_reference_run_out_of_range, cache_dir_is_a_file, zoogate_cache_env_is_a_file,
              unwritable_cache_dir, golden_tensor_with_external_data, golden_tensor_with_absolute_external_data,
              wilson_confidence_above_one, wilson_confidence_zero]


def _digest(path: Path) -> str:
    if path.is_symlink():                 # a link is its target text (a loop cannot be read through)
        return "link:" + os.readlink(path)
    if path.is_dir():
        return ",".join(f"{p.name}:{_digest(p)}" for p in sorted(path.iterdir()))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.__name__ for c in BAD_INPUTS])
def test_bad_input_is_a_clear_error_and_nothing_is_changed(case, tmp_path, monkeypatch):
    args = (tmp_path, monkeypatch) if "monkeypatch" in inspect.signature(case).parameters else (tmp_path,)
    call, path, problem = case(*args)
    target = path.parent if path.name == "val_label.txt" else path
    before = _digest(path) if case is not unreadable_directory else None
    with pytest.raises(ZoogateError) as err:
        call(target)
    message = str(err.value)
    assert "\n" not in message, message
    assert path.name in message or str(path) in message or os.fspath(path.parent) in message, message
    assert problem.lower() in message.lower(), message
    if before is not None:
        assert _digest(path) == before, f"{path} was modified"


def test_at_least_fifteen_kinds():
    assert len(BAD_INPUTS) >= 15


@pytest.mark.parametrize("name", ["cmyk_360x270.jpg", "i16_280x210.png"])
def test_cmyk_and_16_bit_images_are_converted_like_the_reference(name):
    """Not errors: PIL's convert('RGB') defines the reference for them, and the fast path matches it."""
    img = images.open_rgb(FIXTURES / "good" / name)
    ref = variants.build("reference", "inception_v4")(img)
    fast = variants.build("fast", "inception_v4")(img)
    assert ref.shape == (3, 299, 299) and np.array_equal(ref, fast)


# ---------------------------------------------------------------- the same through the command line: exit 2, one line

def _tiny_onnx(path: Path, *, broken: bool = False) -> Path:
    """A one-node graph (Relu image -> class); `broken` feeds the node from a name nothing produces."""
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["undefined" if broken else "image"], ["class"])
    graph = helper.make_graph([node], "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("class", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _score_args(tmp_path: Path) -> tuple[Path, Path]:
    folder = _results_dir(tmp_path, {"x": _txt_row(np.eye(1000)[1])})
    labels = tmp_path / "val_label.txt"
    labels.write_text("x.JPEG 1\n")
    return folder, labels


def cli_score_symlink_loop(tmp_path, monkeypatch):
    folder, labels = _score_args(tmp_path)
    (folder / "y_0.txt").symlink_to("y_0.txt")
    return (["score", "--model", "iresnet50", "--results", folder, "--labels", labels], folder / "y_0.txt",
            "symbolic link loop", [folder, labels])


def cli_score_allow_subset_nothing_pairs(tmp_path, monkeypatch):
    folder, labels = _score_args(tmp_path)
    (folder / "x_0.txt").rename(folder / "x_1.txt")
    return (["score", "--model", "iresnet50", "--results", folder, "--labels", labels, "--allow-subset"], folder,
            "nothing to score", [folder, labels])


def cli_score_out_is_a_directory(tmp_path, monkeypatch):
    folder, labels = _score_args(tmp_path)
    out = tmp_path / "metrics"
    out.mkdir()
    return (["score", "--model", "iresnet50", "--results", folder, "--labels", labels, "--out", out], out,
            "is a directory", [folder, labels, out, tmp_path])


def cli_score_out_folder_missing(tmp_path, monkeypatch):
    folder, labels = _score_args(tmp_path)
    out = tmp_path / "no" / "such" / "metrics.json"
    return (["score", "--model", "iresnet50", "--results", folder, "--labels", labels, "--rich-out", out], out,
            "does not exist", [folder, labels, tmp_path])


def cli_score_out_is_the_label_file(tmp_path, monkeypatch):
    folder, labels = _score_args(tmp_path)
    return (["score", "--model", "iresnet50", "--results", folder, "--labels", labels, "--out", labels], labels,
            "would overwrite an input", [folder, labels])


def cli_compare_external_tensor(tmp_path, monkeypatch):
    gold = golden.write_golden(tmp_path / "golden", np.zeros((1, 3, 4, 4), np.float32), np.zeros((1, 4), np.float32),
                               {"model": "toy"})
    (tmp_path / "secret.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    monkeypatch.chdir(tmp_path)
    outputs = _tensor_with_external_data(tmp_path, "secret.bin")
    return (["compare", "--golden", gold, "--outputs", outputs], outputs, "external file", [gold, outputs])


def cli_export_opset_zero(tmp_path, monkeypatch):
    return ["export", "--model", "iresnet50", "--out", tmp_path / "m.onnx", "--opset", "0"], "--opset", "got 0", [tmp_path]


def cli_export_opset_negative(tmp_path, monkeypatch):
    return ["export", "--model", "iresnet50", "--out", tmp_path / "m.onnx", "--opset=-3"], "--opset", "got -3", [tmp_path]


def cli_export_cache_dir_is_a_file(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_override", None)
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("mine")
    return (["export", "--model", "iresnet50", "--out", tmp_path / "m.onnx", "--cache-dir", not_a_folder],
            not_a_folder, "not a folder", [tmp_path])


def cli_export_out_is_the_cached_file(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_override", None)
    products = tmp_path / "cache" / "onnx"
    products.mkdir(parents=True)
    cached = _tiny_onnx(products / "iresnet50-torchscript-0123456789abcdef0123.onnx")
    return (["export", "--model", "iresnet50", "--out", cached, "--overwrite", "--cache-dir", tmp_path / "cache"],
            cached, "inside the export cache", [products])


def cli_export_checker_rejects_the_export(tmp_path, monkeypatch):
    import torch

    from zoogate import weights

    monkeypatch.setattr(cache, "_override", None)
    toy = weights.LoadedModel("toy", torch.nn.Identity(), "calibrated (test)", "toyweights",
                              baselines.model("iresnet50"))
    monkeypatch.setattr(weights, "load_model", lambda *a, **k: toy)
    monkeypatch.setattr(torch.onnx, "export", lambda module, args, f, **kw: _tiny_onnx(Path(f), broken=True))
    out = tmp_path / "mine" / "m.onnx"
    return (["export", "--model", "iresnet50", "--out", out, "--cache-dir", tmp_path / "cache"],
            tmp_path / "cache" / "onnx", "onnx.checker rejected", [tmp_path / "mine"])


CLI_BAD_INPUTS = [cli_score_symlink_loop, cli_score_allow_subset_nothing_pairs, cli_score_out_is_a_directory,
                  cli_score_out_folder_missing, cli_score_out_is_the_label_file, cli_compare_external_tensor,
                  cli_export_opset_zero, cli_export_opset_negative, cli_export_cache_dir_is_a_file,
                  cli_export_out_is_the_cached_file, cli_export_checker_rejects_the_export]


def _tree(path: Path) -> str:
    return _digest(path) if path.exists() or path.is_symlink() else "absent"


@pytest.mark.parametrize("case", CLI_BAD_INPUTS, ids=[c.__name__ for c in CLI_BAD_INPUTS])
def test_cli_bad_input_exits_2_with_one_line_and_nothing_is_changed(case, tmp_path, monkeypatch, capsys):
    argv, named, problem, kept = case(tmp_path, monkeypatch)
    before = {p: _tree(p) for p in kept}
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(named) in lines[0] and problem.lower() in lines[0].lower(), lines[0]
    assert {p: _tree(p) for p in kept} == before, "a user's file or folder was changed"


# ---------------------------------------------------------------- pytest options: usage errors before any test runs

def test_bs_above_the_named_maximum_is_a_usage_error():
    limit = baselines.tolerance(core.MAX_BATCH_SIZE)
    assert core._bs_list(f"1,{int(limit.value)}") == [1, int(limit.value)]      # the limit itself is allowed
    with pytest.raises(pytest.UsageError) as err:
        core._bs_list(f"4,{int(limit.value) + 1}")
    message = str(err.value)
    assert "--bs" in message and f"{limit.value:g}" in message and core.MAX_BATCH_SIZE in message, message
    assert "\n" not in message


def test_unwritable_gate_report_folder_fails_the_check(tmp_path, monkeypatch):
    target = tmp_path / "reports" / "gate-report.json"
    assert report.check_writable(target) == target and list(target.parent.iterdir()) == []   # no probe left

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(report.document.tempfile, "mkstemp", denied)     # root ignores chmod, so deny at the call
    with pytest.raises(ZoogateError) as err:
        report.check_writable(target)
    assert str(target) in str(err.value) and "permission denied" in str(err.value).lower()


def test_unwritable_gate_report_is_a_usage_error_before_the_run(tmp_path):
    """Checked at configure time (a lab must not lose a two-hour run at the end): exit 4, one line, no test ran."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("mine")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                           "--gate-report", str(blocker / "gate-report.json"), str(Path(__file__)), "-k",
                           "test_at_least_fifteen_kinds"], capture_output=True, text=True, cwd=root, timeout=300,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])))
    output = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "Traceback" not in output and "passed" not in output, output
    line = next(l for l in output.splitlines() if "--gate-report" in l)
    assert str(blocker) in line and "not a folder" in line, output
    assert blocker.read_text() == "mine"


def test_corrupt_partial_results_fail_the_live_test_in_one_line(tmp_path):
    """--resume over a hand-edited partial-results file: the test fails with one line naming it, no traceback."""
    from zoogate.plugin.accuracy import AccuracyOptions, LiveEvaluations

    root = _labels_dir(tmp_path, ["a.JPEG 1"], ["a.JPEG"])
    ds = datasets.open_dataset(root)
    options = AccuracyOptions(imagenet=str(root), limit=None, resume=True, results=None, labels=None,
                              baseline_row=None, models=None)
    live = LiveEvaluations(options, state_dir=tmp_path / "state")
    state = partial_results.state_file_for(tmp_path / "state", _build_of(ds), 1)
    state.parent.mkdir()
    state.write_bytes(b"PK\x03\x04 edited by hand")
    before = state.read_bytes()
    with pytest.raises(pytest.fail.Exception) as err:
        live.run("iresnet50", _FakeRunner(), ds, 1)
    message = str(err.value)
    assert str(state) in message and "unreadable" in message and "\n" not in message, message
    assert err.value.pytrace is False and state.read_bytes() == before
