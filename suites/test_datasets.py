"""Dataset reader (zoogate.datasets): the ImageNet val layout, class folders, errors, --limit subsets."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoogate import synthetic
from zoogate.datasets import (LABEL_FILE, balanced_indices, encode_jpeg, labels_by_stem, open_dataset,
                              read_label_file, write_imagenet_layout)
from zoogate.errors import ZoogateError


@pytest.fixture(scope="module")
def tiny_jpegs() -> list[bytes]:
    return [encode_jpeg(synthetic.image(i, 24, 18)) for i in range(6)]


@pytest.fixture
def imagenet_dir(tmp_path, tiny_jpegs):
    write_imagenet_layout(tmp_path / "imageNet", tiny_jpegs, [5, 0, 999, 5, 7, 0])
    return tmp_path / "imageNet"


def test_reads_the_documented_layout(imagenet_dir):
    ds = open_dataset(imagenet_dir)
    assert ds.layout == "imagenet-val" and len(ds) == 6
    assert [it.name for it in ds.items][:2] == ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"]
    assert ds.labels.tolist() == [5, 0, 999, 5, 7, 0]
    assert all(it.path.is_file() for it in ds.items)
    assert ds.label_file == imagenet_dir / LABEL_FILE


def test_reads_the_image_folder_with_labels_beside_or_inside(imagenet_dir):
    beside = open_dataset(imagenet_dir / "val")
    assert beside.labels.tolist() == open_dataset(imagenet_dir).labels.tolist()
    (imagenet_dir / LABEL_FILE).rename(imagenet_dir / "val" / LABEL_FILE)
    inside = open_dataset(imagenet_dir / "val")
    assert inside.fingerprint() == beside.fingerprint()


def test_class_per_folder_labels_are_the_sorted_folder_index(tmp_path, tiny_jpegs):
    for cls, idx in (("n01530575", [0, 1]), ("n01440764", [2]), ("n01443537", [3, 4])):
        (tmp_path / "val" / cls).mkdir(parents=True)
        for i in idx:
            (tmp_path / "val" / cls / f"img{i}.JPEG").write_bytes(tiny_jpegs[i])
    ds = open_dataset(tmp_path)
    assert ds.layout == "class-folders" and ds.classes == ("n01440764", "n01443537", "n01530575")
    assert {it.name: it.label for it in ds.items} == {"n01440764/img2.JPEG": 0, "n01443537/img3.JPEG": 1,
                                                      "n01443537/img4.JPEG": 1, "n01530575/img0.JPEG": 2,
                                                      "n01530575/img1.JPEG": 2}


def _labels(imagenet_dir, text: str) -> None:
    (imagenet_dir / LABEL_FILE).write_text(text)


@pytest.mark.parametrize("text, message", [
    ("ILSVRC2012_val_00000001.JPEG\n", "line 1: expected '<file> <label>'"),
    ("ILSVRC2012_val_00000001.JPEG 5\nILSVRC2012_val_00000002.JPEG five\n", "line 2: label 'five' is not an integer"),
    ("ILSVRC2012_val_00000001.JPEG 1000\n", "line 1: label 1000 out of range 0..999"),
    ("ILSVRC2012_val_00000001.JPEG -1\n", "line 1: label -1 out of range"),
    ("ILSVRC2012_val_00000001.JPEG 1\n\nILSVRC2012_val_00000001.JPEG 2\n", "line 3: duplicate entry .* line 1"),
    ("", "no '<file> <label>' lines"),
])
def test_label_file_errors_name_file_and_line(imagenet_dir, text, message):
    _labels(imagenet_dir, text)
    with pytest.raises(ZoogateError, match=message) as err:
        open_dataset(imagenet_dir)
    assert str(imagenet_dir / LABEL_FILE) in str(err.value)


def test_label_naming_a_missing_image(imagenet_dir):
    (imagenet_dir / "val" / "ILSVRC2012_val_00000003.JPEG").unlink()
    with pytest.raises(ZoogateError, match=r"line 3: names 'ILSVRC2012_val_00000003.JPEG', which is not in") as err:
        open_dataset(imagenet_dir)
    assert str(err.value).startswith(str(imagenet_dir / LABEL_FILE))


def test_image_without_a_label(imagenet_dir, tiny_jpegs):
    (imagenet_dir / "val" / "ILSVRC2012_val_00000099.JPEG").write_bytes(tiny_jpegs[0])
    with pytest.raises(ZoogateError, match=r"1 image\(s\) have no line in .*ILSVRC2012_val_00000099.JPEG"):
        open_dataset(imagenet_dir)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(ZoogateError, match="dataset folder not found") as err:
        open_dataset(tmp_path / "nowhere")
    assert "nowhere" in str(err.value)
    with pytest.raises(ZoogateError, match="no images and no class folders"):
        open_dataset(tmp_path)
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ZoogateError, match="not a folder"):
        open_dataset(tmp_path / "a.txt")


def test_images_without_any_label_file(tmp_path, tiny_jpegs):
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "x.JPEG").write_bytes(tiny_jpegs[0])
    with pytest.raises(ZoogateError, match="no val_label.txt"):
        open_dataset(tmp_path)


def test_too_many_class_folders_is_a_label_range_error(tmp_path, tiny_jpegs):
    for i in range(3):
        (tmp_path / f"c{i}").mkdir()
        (tmp_path / f"c{i}" / f"{i}.JPEG").write_bytes(tiny_jpegs[i])
    with pytest.raises(ZoogateError, match="3 class folders"):
        open_dataset(tmp_path, num_classes=2)


def test_label_file_is_never_modified(imagenet_dir):
    before = (imagenet_dir / LABEL_FILE).read_bytes()
    open_dataset(imagenet_dir, limit=3)
    assert (imagenet_dir / LABEL_FILE).read_bytes() == before


def test_labels_by_stem_from_a_file_or_a_folder(imagenet_dir):
    from_file, _ = labels_by_stem(imagenet_dir / LABEL_FILE)
    from_dir, _ = labels_by_stem(imagenet_dir)
    assert from_file == from_dir and from_file["ILSVRC2012_val_00000003"] == 999
    assert read_label_file(imagenet_dir / LABEL_FILE)["ILSVRC2012_val_00000005"].line == 5


@settings(max_examples=40, deadline=None)
@given(labels=st.lists(st.integers(0, 9), min_size=1, max_size=80), data=st.data())
def test_limit_subset_is_class_balanced_and_deterministic(labels, data):
    labels = np.array(labels)
    limit = data.draw(st.integers(1, len(labels)))
    chosen = balanced_indices(labels, limit)
    assert len(chosen) == limit and len(set(chosen.tolist())) == limit
    assert chosen.tolist() == sorted(chosen.tolist())
    assert np.array_equal(chosen, balanced_indices(labels, limit))
    counts = Counter(labels[chosen].tolist())
    available = Counter(labels.tolist())
    # balanced: a class is short of the largest count only when it has no more images
    top = max(counts.values())
    for cls, have in available.items():
        assert counts.get(cls, 0) >= min(have, top - 1)


def test_limit_on_a_dataset(imagenet_dir):
    full = open_dataset(imagenet_dir)
    sub = open_dataset(imagenet_dir, limit=4)
    assert len(sub) == 4 and sub.is_subset and sub.subset_of == 6
    assert len(set(sub.labels.tolist())) == 4                 # 4 classes present: one image of each
    assert set(it.name for it in sub.items) <= set(it.name for it in full.items)
    assert open_dataset(imagenet_dir, limit=100).fingerprint() == full.fingerprint()
    with pytest.raises(ZoogateError, match="--limit must be >= 1"):
        open_dataset(imagenet_dir, limit=0)
