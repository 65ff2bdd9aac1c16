"""Baselines: the schema holds, every number traces to its source document, malformed files fail clearly."""

import shutil
from pathlib import Path

import pytest

from zoogate import baselines
from zoogate.errors import ZoogateError

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def test_schema_of_every_baseline_file():
    """Loading validates every family file and every tolerance (raises ZoogateError naming file + key)."""
    models = baselines.load_all()
    assert len(models) >= 12
    tolerances = baselines.tolerances()
    assert all(t.why.strip() for t in tolerances.values())


def _source_text(source: str) -> str:
    name = source.split(":", 1)[0].strip()
    for candidate in (SHARED / "seeds" / name, SHARED / name):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    pytest.skip(f"source document {name} not found under {SHARED} (the shared/ folder beside the checkout)")


def _numbers(obj) -> list[float]:
    return [getattr(obj, k) for k in ("top1", "top5", "gflops", "params_m") if getattr(obj, k, None) is not None]


def test_every_documented_number_appears_in_its_source(model_name):
    """Provenance: each top-1/top-5/GFLOPs/params/fps value is printed in the document its `source` names."""
    mb = baselines.model(model_name)
    text = _source_text(mb.source)
    for value in _numbers(mb):
        assert f"{value:g}" in text, f"{mb.file}: models.{model_name}: {value} not found in {mb.source}"
    for row in mb.rows:
        row_text = _source_text(row.source)
        for value in _numbers(row) + list(row.fps.values()) + list(row.train_fps.values()):
            assert f"{value:g}" in row_text, f"{mb.file}: row {row.id}: {value} not found in {row.source}"
    pp = mb.preprocess
    pp_text = _source_text(pp.source)
    if pp.inferred:   # inferred pipelines name the reference note; their values are printed in the seeds
        pp_text += "".join(p.read_text(encoding="utf-8") for p in sorted((SHARED / "seeds").glob("*.txt")))
    for value in (pp.resize, pp.crop, *pp.mean, *pp.std):
        assert f"{value:g}" in pp_text, f"{mb.file}: preprocess.{pp.name}: {value} not found in {pp.source}"


def test_documented_ascend_fps_table():
    row = baselines.model("inception_v4_1001").row("ascend-310p3")
    assert row.fps == {1: 761.4, 4: 1498.5, 8: 1315.3, 16: 1181.3, 32: 1163.6, 64: 1168.9}
    assert (row.top1, row.top5, row.num_classes) == (79.99, 94.86, 1001)


@pytest.fixture
def baseline_copy(tmp_path):
    folder = tmp_path / "baselines"
    shutil.copytree(baselines.BASELINE_DIR, folder)
    return folder


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture text {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("old,new,key", [
    ("top1 = 80.162\n", "", "models.inception_v4.top1: missing"),
    ("top1 = 80.162", 'top1 = "80.162"', "models.inception_v4.top1: expected number"),
    ("params_m = 42.680", 'params_m = "lots"', "models.inception_v4.params_m: expected number"),
    ("top5 = 94.966", "top5 = 194.966", "models.inception_v4.top5: 194.966 is not a percentage"),
    ("crop = 299\n", "crop = 399\n", "preprocess.inception: crop 399 is larger than resize"),
    ('interpolation = "bilinear"', 'interpolation = "lanczos"', "preprocess.inception.interpolation"),
    ("num_classes = 1000", "num_classes = 999", "models.inception_v4.num_classes"),
    ("4 = 1498.5", '4 = "fast"', "fps.4: expected a positive number"),
    ("top1 = 80.162", "top1 = 80.162\ntopone = 1", "unknown key(s) ['topone']"),
    ("[models.inception_v4]", "[models.inception_v4", "not valid TOML"),
])
def test_selftest_malformed_family_file_names_file_and_key(baseline_copy, old, new, key):
    path = baseline_copy / "inception_v4.toml"
    _edit(path, old, new)
    with pytest.raises(ZoogateError) as err:
        baselines.parse_family_file(path)
    message = str(err.value)
    assert "inception_v4.toml" in message and key in message, message


@pytest.mark.parametrize("old,new,key", [
    ('why = "documents print params', 'whyy = "documents print params', "params_exact_m.why: missing"),
    ("value = 0.0005", 'value = "small"', "params_exact_m.value: expected a non-negative number"),
    ("atol = 5e-3", "", "fp32_cross_backend: needs 'value', or all of"),
])
def test_selftest_malformed_tolerance_file(baseline_copy, old, new, key):
    path = baseline_copy / "tolerances.toml"
    _edit(path, old, new)
    with pytest.raises(ZoogateError) as err:
        baselines.parse_tolerance_file(path)
    assert "tolerances.toml" in str(err.value) and key in str(err.value), str(err.value)


def test_selftest_duplicate_model_across_files(baseline_copy):
    shutil.copy(baseline_copy / "iresnet.toml", baseline_copy / "iresnet_copy.toml")
    with pytest.raises(ZoogateError, match="defined twice"):
        baselines.load_all(baseline_copy)


def test_unknown_row_is_a_clear_error():
    with pytest.raises(ZoogateError, match="no baseline row 'ascend-999'.*known: reference"):
        baselines.model("inception_v4").row("ascend-999")
