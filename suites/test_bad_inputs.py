"""Bad inputs: each kind gets a ZoogateError that names the file and the problem, and the file is left
exactly as the user gave it (byte-identical afterwards). Images that are unusual but valid (CMYK, 16-bit)
are accepted and converted the way the reference does."""

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hardware import artifacts
from zoogate import baselines, datasets, images, results, weights
from zoogate.errors import ZoogateError
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


BAD_INPUTS = [corrupt_image, truncated_image, zero_byte_image, text_file_as_image, missing_label, duplicate_label,
              label_out_of_range, unparseable_label_line, label_for_missing_image, wrong_class_count, nan_logits,
              truncated_result_row, missing_result_file, bin_of_no_known_size, label_lines_that_collide_at_the_first_dot,
              relay_txt_cut_short, pickled_npy, pickled_checkpoint, malformed_baseline,
              missing_model_artifact, unreadable_directory]


def _digest(path: Path) -> str:
    if path.is_dir():
        return ",".join(f"{p.name}:{_digest(p)}" for p in sorted(path.iterdir()))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.__name__ for c in BAD_INPUTS])
def test_bad_input_is_a_clear_error_and_nothing_is_changed(case, tmp_path, monkeypatch):
    args = (tmp_path, monkeypatch) if case is unreadable_directory else (tmp_path,)
    call, path, problem = case(*args)
    target = path.parent if path.name == "val_label.txt" else path
    before = _digest(path) if case is not unreadable_directory else None
    with pytest.raises(ZoogateError) as err:
        call(target)
    message = str(err.value)
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
