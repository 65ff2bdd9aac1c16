"""`zoogate export` never replaces or writes through what a user gave: an existing --out needs --overwrite,
the cache is never the target, and a fresh export is checked (tiny model: fast, its own cache folder)."""

from __future__ import annotations

import os

import pytest

from zoogate import baselines, cache, cli
from zoogate.errors import ZoogateError


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> weights.LoadedModel:
    """A real (tiny) network in place of the registry model, exported into a cache under tmp_path."""
    import torch

    from zoogate import weights

    monkeypatch.setattr(cache, "_override", tmp_path / "cache")
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=8), torch.nn.AdaptiveAvgPool2d(1),
                                 torch.nn.Flatten(), torch.nn.Linear(4, 1000)).eval()
    loaded = weights.LoadedModel("iresnet50", module, "calibrated (tiny test network)", "tiny-test-weights",
                                 baselines.model("iresnet50"))
    monkeypatch.setattr(weights, "load_model", lambda *a, **k: loaded)
    return loaded


def _export(capsys, *args) -> tuple[int, str]:
    code = cli.main(["export", "--model", "iresnet50", *map(str, args)])
    return code, capsys.readouterr().err


def test_an_existing_out_is_replaced_only_with_overwrite(tiny, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"a lab's own model")
    code, err = _export(capsys, "--out", out)
    assert code == 2 and "--overwrite" in err and str(out) in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == b"a lab's own model"
    assert not (tmp_path / "cache" / "onnx").exists()              # refused before any export
    previous = os.umask(0o022)
    try:
        code, err = _export(capsys, "--out", out, "--overwrite")
    finally:
        os.umask(previous)
    assert code == 0, err
    assert out.read_bytes() != b"a lab's own model" and out.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "model.onnx"]        # no temp copy left


def test_the_cached_export_is_never_the_target(tiny, tmp_path, capsys):
    from zoogate import export

    cached = export.export_onnx(tiny)
    before = cached.read_bytes()
    code, err = _export(capsys, "--out", cached, "--overwrite")
    assert code == 2 and "inside the export cache" in err
    link = tmp_path / "link.onnx"
    link.symlink_to(cached)
    code, err = _export(capsys, "--out", link, "--overwrite")        # a link into the cache: same refusal
    assert code == 2 and "inside the export cache" in err
    with pytest.raises(ZoogateError, match="is the cached export itself"):
        export.export_onnx(tiny, out=link)
    assert cached.read_bytes() == before


def test_out_that_links_elsewhere_is_replaced_not_written_through(tiny, tmp_path, capsys):
    theirs = tmp_path / "theirs.onnx"
    theirs.write_bytes(b"someone else's file")
    link = tmp_path / "out.onnx"
    link.symlink_to(theirs)
    code, err = _export(capsys, "--out", link, "--overwrite")
    assert code == 0, err
    assert theirs.read_bytes() == b"someone else's file" and not link.is_symlink()


@pytest.mark.parametrize("opset", [0, -1, 10_000])
def test_opset_outside_onnx_versions_is_an_error(opset):
    from zoogate import export

    with pytest.raises(ZoogateError, match=f"got {opset}"):
        export.check_opset(opset)
