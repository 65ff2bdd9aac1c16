"""`zoogate calib`: class-balanced, seeded calibration sets in the device flow's format, refused when a class
has no data."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from zoogate import cli, datasets


def _tiny_jpeg(seed: int) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def imagenet_layout(tmp_path_factory):
    """An ImageNet-layout folder of 1000 classes, two images each (tiny JPEGs), classes interleaved."""
    root = tmp_path_factory.mktemp("imagenet")
    labels = [i % 1000 for i in range(2000)]
    datasets.write_imagenet_layout(root, [_tiny_jpeg(i % 7) for i in range(2000)], labels)
    return root


def _manifest(out):
    return json.loads((out / "calib_manifest.json").read_text())


def test_per_class_gives_every_class(imagenet_layout, tmp_path):
    out = tmp_path / "calib"
    assert cli.main(["calib", "--imagenet", str(imagenet_layout), "--per-class", "1", "--out", str(out)]) == 0
    m = _manifest(out)
    assert m["images"] == 1000 and m["classes"] == 1000 and set(m["per_class"].values()) == {1}
    assert len(list(out.glob("*.JPEG"))) == 1000 and m["seed"] and m["preprocessing"] == "original files"
    again = tmp_path / "again"
    cli.main(["calib", "--imagenet", str(imagenet_layout), "--per-class", "1", "--out", str(again)])
    assert _manifest(again)["files"] == m["files"] and _manifest(again)["fingerprint"] == m["fingerprint"]
    other = tmp_path / "other-seed"
    cli.main(["calib", "--imagenet", str(imagenet_layout), "--per-class", "1", "--out", str(other), "--seed", "1"])
    assert _manifest(other)["files"] != m["files"]


def test_a_missing_class_is_refused_by_name(imagenet_layout, tmp_path, capsys):
    root = tmp_path / "missing"
    labels_file = imagenet_layout / "val_label.txt"
    lines = [ln for ln in labels_file.read_text().splitlines() if ln.split()[-1] != "417"]
    (root / "val").mkdir(parents=True)
    for ln in lines:
        name = ln.split()[0]
        (root / "val" / name).write_bytes((imagenet_layout / "val" / name).read_bytes())
    (root / "val_label.txt").write_text("\n".join(lines) + "\n")
    assert cli.main(["calib", "--imagenet", str(root), "--count", "1000", "--out", str(tmp_path / "o")]) == 2
    assert "class 417" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_fewer_images_than_asked_is_refused(imagenet_layout, tmp_path, capsys):
    assert cli.main(["calib", "--imagenet", str(imagenet_layout), "--per-class", "3", "--out", str(tmp_path / "a")]) == 2
    assert "fewer than --per-class 3" in capsys.readouterr().err
    assert cli.main(["calib", "--imagenet", str(imagenet_layout), "--count", "2001", "--out", str(tmp_path / "b")]) == 2
    assert "has 2000 images" in capsys.readouterr().err
    assert cli.main(["calib", "--imagenet", str(imagenet_layout), "--count", "999", "--out", str(tmp_path / "c")]) == 2
    assert "fewer than the 1000 classes" in capsys.readouterr().err


def test_generated_set_in_the_flow_formats(tmp_path):
    root = tmp_path / "generated"
    datasets.write_imagenet_layout(root, datasets.generated_jpegs(6, seed=9), [3, 3, 5, 5, 8, 8])
    for fmt, suffix in (("npy", ".npy"), ("npz", ".npz"), ("bin", ".bin")):
        out = tmp_path / fmt
        assert cli.main(["calib", "--imagenet", str(root), "--count", "3", "--only-present-classes", "--format", fmt,
                         "--model", "iresnet50", "--out", str(out)]) == 0
        m = _manifest(out)
        assert m["per_class"] == {"3": 1, "5": 1, "8": 1} and len(list(out.glob(f"*{suffix}"))) == 3
    assert np.load(next((tmp_path / "npy").glob("*.npy"))).shape == (3, 224, 224)
    with np.load(next((tmp_path / "npz").glob("*.npz"))) as z:
        assert z["input_0"].dtype == np.uint8 and z["input_0"].shape[0] == 3
    assert "Resize" in _manifest(tmp_path / "bin")["preprocessing"] or "resize" in _manifest(tmp_path / "bin")["preprocessing"]
    assert cli.main(["calib", "--imagenet", str(root), "--count", "3", "--out", str(tmp_path / "x")]) == 2


def test_an_unreadable_image_leaves_no_partial_set(tmp_path, capsys):
    root = tmp_path / "small"
    datasets.write_imagenet_layout(root, [_tiny_jpeg(i) for i in range(6)], [0, 1, 2, 0, 1, 2])
    broken = sorted((root / "val").iterdir())[4]
    broken.write_bytes(b"not a jpeg")
    out = tmp_path / "calib"
    code = cli.main(["calib", "--imagenet", str(root), "--per-class", "2", "--only-present-classes",
                     "--format", "npz", "--out", str(out)])
    assert code == 2 and broken.name in capsys.readouterr().err
    assert not out.exists()
    given = tmp_path / "given"                 # a folder the user made: kept, and left empty again
    given.mkdir()
    assert cli.main(["calib", "--imagenet", str(root), "--per-class", "2", "--only-present-classes",
                     "--format", "npz", "--out", str(given)]) == 2
    assert given.is_dir() and not any(given.iterdir())
