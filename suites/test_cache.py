"""The product cache: an interrupted producer leaves nothing behind, the side file comes after the product,
published files follow the umask (a lab shares one cache), and the lock file goes once the product is there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from zoogate import cache
from zoogate.errors import ZoogateError

PARTS = {"what": "a product", "n": 1}


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(cache, "_override", tmp_path / "cache")
    return tmp_path / "cache"


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _lock(folder: Path) -> str:
    return f"{cache.key(PARTS)}.bin.lock"


@pytest.mark.parametrize("stop", [RuntimeError("exporter failed"), KeyboardInterrupt()], ids=["exception", "ctrl-c"])
def test_an_interrupted_producer_leaves_no_product_temp_or_side_file(root, stop):
    def produce(tmp: Path) -> None:
        tmp.write_bytes(b"half a product")
        raise stop

    with pytest.raises(type(stop)):
        cache.cached("things", PARTS, ".bin", produce, label="thing")
    folder = root / "things"
    assert _names(folder) == [_lock(folder)]          # the lock stays: a waiter may still hold its inode
    path, hit = cache.cached("things", PARTS, ".bin", lambda tmp: tmp.write_bytes(b"whole"), label="thing")
    assert not hit and path.read_bytes() == b"whole"


def test_interrupted_at_publishing_leaves_no_side_file(root, monkeypatch):
    real_replace = os.replace

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache.cached("things", PARTS, ".bin", lambda tmp: tmp.write_bytes(b"x"), label="thing")
    monkeypatch.setattr(cache.os, "replace", real_replace)
    folder = root / "things"
    assert _names(folder) == [_lock(folder)]


def test_the_side_file_is_written_after_the_product(root):
    seen = []

    def produce(tmp: Path) -> None:
        seen.append(sorted(p.name for p in tmp.parent.iterdir() if not p.name.startswith(".")))
        tmp.write_bytes(b"x")

    path, _ = cache.cached("things", PARTS, ".bin", produce, label="thing")
    assert seen == [[_lock(path.parent)]]              # no side file while producing
    assert _names(path.parent) == [path.name, f"{path.name}.json"]     # lock gone once published
    assert '"what": "a product"' in (path.parent / f"{path.name}.json").read_text()


def test_a_killed_producers_temp_file_is_removed_by_the_next_one(root):
    folder = root / "things"
    folder.mkdir(parents=True)
    stale = folder / f".thing-{cache.key(PARTS)}.bin.k1ll3d.tmp"      # what `kill -9` mid-export leaves
    stale.write_bytes(b"half")
    other = folder / f".thing-{cache.key({'other': 1})}.bin.busy.tmp"  # another key's producer: not ours
    other.write_bytes(b"busy")
    path, _ = cache.cached("things", PARTS, ".bin", lambda tmp: tmp.write_bytes(b"x"), label="thing")
    assert not stale.exists() and other.exists() and path.read_bytes() == b"x"


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_published_files_follow_the_umask(root, umask):
    previous = os.umask(umask)
    try:
        path, _ = cache.cached("things", dict(PARTS, umask=umask), ".bin", lambda tmp: tmp.write_bytes(b"x"),
                               label="thing")
    finally:
        os.umask(previous)
    want = 0o666 & ~umask
    assert oct(path.stat().st_mode & 0o777) == oct(want)            # not mkstemp's 0600
    assert oct((path.parent / f"{path.name}.json").stat().st_mode & 0o777) == oct(want)


def test_a_hit_needs_no_lock_and_leaves_none(root):
    path, _ = cache.cached("things", PARTS, ".bin", lambda tmp: tmp.write_bytes(b"x"), label="thing")
    again, hit = cache.cached("things", PARTS, ".bin", lambda tmp: pytest.fail("produced twice"), label="other")
    assert hit and again == path and _names(path.parent) == [path.name, f"{path.name}.json"]


def test_fp16_copies_and_gate_reports_follow_the_umask(root, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from zoogate import fp16, report

    graph = helper.make_graph([helper.make_node("Relu", ["image"], ["class"])], "tiny",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("class", TensorProto.FLOAT, [1, 4])])
    src = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), src)
    previous = os.umask(0o002)
    try:
        half = fp16.convert(src)
        written = report.write_report({"records": []}, tmp_path / "reports" / "gate-report.json")
    finally:
        os.umask(previous)
    assert half.is_relative_to(root)
    assert oct(half.stat().st_mode & 0o777) == oct(written.stat().st_mode & 0o777) == oct(0o664)


def test_a_cached_json_fact_is_computed_once_per_key_and_read_back_equal(tmp_path, monkeypatch):
    from zoogate.preprocess import variants
    from zoogate.results_vacc import _timm_imagenet_info, imagenet_info

    monkeypatch.setattr(cache, "_override", tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"mean": [0.5, 0.25], "n": 3}

    assert cache.cached_json("facts", {"lib": "1.0"}, compute) == {"mean": [0.5, 0.25], "n": 3}
    assert cache.cached_json("facts", {"lib": "1.0"}, compute) == {"mean": [0.5, 0.25], "n": 3} and len(calls) == 1
    cache.cached_json("facts", {"lib": "2.0"}, compute)            # another library version: computed again
    assert len(calls) == 2

    def broken():
        calls.append(1)
        raise ZoogateError("no such model")

    with pytest.raises(ZoogateError, match="no such model"):       # its own error, raised once
        cache.cached_json("facts", {"lib": "3.0"}, broken)
    assert len(calls) == 3
    # what timm computes and what the cache gives back are the same values, tuples included
    name = "inception_v4.tf_in1k"
    variants._timm_data_config.cache_clear()
    assert variants.timm_data_config(name) == variants._resolve_timm_data_config(name)
    variants._timm_data_config.cache_clear()
    assert variants.timm_data_config(name) == variants._resolve_timm_data_config(name)     # read back
    synsets, full = imagenet_info()
    assert (synsets, full) == tuple(_timm_imagenet_info()) and len(synsets) == 1000
    assert imagenet_info() == (synsets, full)


def test_library_versions_in_keys_are_the_packages_own():
    """Keys name torch, torchvision and timm without importing them (read from their version.py), and name them
    exactly as the imported packages do, "+cu130" local tags included."""
    import importlib

    versions = cache.versions()
    assert versions == {name: importlib.import_module(name).__version__ for name in versions}
