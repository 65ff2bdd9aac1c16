"""Baselines: the schema holds, every number traces to its source document, malformed files fail clearly."""

import shutil
from pathlib import Path

import pytest

from zoogate import baselines, sources
from zoogate.errors import ZoogateError



def test_schema_of_every_baseline_file():
    """Loading validates every family file and every tolerance (raises ZoogateError naming file + key)."""
    models = baselines.load_all()
    assert len(models) >= 12
    tolerances = baselines.tolerances()
    assert all(t.why.strip() for t in tolerances.values())


def _copies(source: str, folder: Path) -> list[tuple[Path, str]]:
    docs = sources.load_documents(str(baselines.BASELINE_DIR))
    return sources.locate(docs[sources.document_of(source)], folder)


def _check(what: str, source: str, values, folder: Path) -> None:
    """Every value is printed in a copy of the cited document; skip (naming it) when DIR has no copy, or
    when a value is missing only from copies older than the one it was read from."""
    copies = _copies(source, folder)
    doc = sources.document_of(source)
    if not copies:
        pytest.skip(f"{what}: {folder} holds no copy of {doc!r} (by digest, or at "
                    f"{sources.load_documents(str(baselines.BASELINE_DIR))[doc].relative_path})")
    texts = [p.read_text(encoding="utf-8", errors="replace") for p, _ in copies]
    missing = [v for v in values if not any(f"{v:g}" in t for t in texts)]
    if not missing:
        return
    known = sources.load_documents(str(baselines.BASELINE_DIR))[doc].digests
    if len({which for _, which in copies}) < max(len(known), 1):
        pytest.skip(f"{what}: {missing} not in the copies of {doc!r} in {folder} "
                    f"({', '.join(w for _, w in copies)}); other recorded versions: {sorted(known.values())}")
    raise AssertionError(f"{what}: {missing} not printed in {doc!r} ({', '.join(str(p) for p, _ in copies)})")


def _numbers(obj) -> list[float]:
    return [getattr(obj, k) for k in ("top1", "top5", "gflops", "params_m") if getattr(obj, k, None) is not None]


def test_every_documented_number_appears_in_its_source(model_name, source_documents):
    """Provenance: each top-1/top-5/GFLOPs/params value of the model and its preprocessing is printed in
    the document its `source` names."""
    mb = baselines.model(model_name)
    _check(f"{mb.file}: models.{model_name}", mb.source, _numbers(mb), source_documents)
    pp = mb.preprocess
    if pp.inferred:
        pytest.skip(f"preprocess.{pp.name} is marked inferred: its values are not printed in {pp.source!r}")
    _check(f"{mb.file}: preprocess.{pp.name}", pp.source, [pp.resize, pp.crop, *pp.mean, *pp.std],
           source_documents)


def pytest_generate_tests(metafunc):
    """``row_case`` = (model, row id) over the hardware rows of the selected models."""
    if "row_case" in metafunc.fixturenames:
        from zoogate.plugin.models import selected_models

        cases = [(m, r.id) for m in selected_models(metafunc.config) for r in baselines.model(m).rows]
        metafunc.parametrize("row_case", cases, ids=[f"{m}-{r}" for m, r in cases])


def test_every_row_number_appears_in_its_source(row_case, source_documents):
    """Provenance of a hardware row: its top-1/top-5/fps values are printed in the row's document."""
    model_name, row_id = row_case
    mb = baselines.model(model_name)
    row = mb.row(row_id)
    values = _numbers(row) + list(row.fps.values()) + list(row.train_fps.values())
    assert values or row.informational, f"{mb.file}: row {row.id} documents no number"
    _check(f"{mb.file}: models.{model_name} row {row.id}", row.source, values, source_documents)


def test_every_cited_document_is_declared(tmp_path):
    """A source naming a document that baselines/documents.toml does not list is a load error."""
    copy = tmp_path / "baselines"
    shutil.copytree(baselines.BASELINE_DIR, copy)
    family = copy / "iresnet.toml"
    family.write_text(family.read_text(encoding="utf-8").replace(
        'source = "VastModelZOO cv/classification/iresnet/README.md: 模型性能 (iresnet50)"',
        'source = "somewhere.txt: a table"'), encoding="utf-8")
    with pytest.raises(ZoogateError, match="cites 'somewhere.txt', which documents.toml does not list"):
        baselines.load_all(copy)


def test_provenance_finds_copies_by_digest_or_by_path(tmp_path):
    doc = sources.load_documents(str(baselines.BASELINE_DIR))["VastModelZOO cv/classification/iresnet/README.md"]
    assert sources.locate(doc, tmp_path) == []
    at_path = tmp_path / doc.relative_path
    at_path.parent.mkdir(parents=True)
    at_path.write_text("iresnet50 77.168 93.588", encoding="utf-8")
    assert sources.locate(doc, tmp_path) == [(at_path, "found by path (a version not recorded)")]
    assert str(doc.relative_path) == "VastModelZOO/cv/classification/iresnet/README.md"


def test_documented_vacc_rows():
    """The model zoo's VACC accuracy (vsx classification.py + eval_topk.py), fp16 and int8, as recorded."""
    documented = {"inception_v4": ((79.998, 94.98), (16.368, 24.546)),
                  "inception_v4_ppcls": ((80.898, 95.182), (69.386, 86.776)),
                  "inception_v3": ((76.326, 92.436), (76.234, 92.54)),
                  "inception_v3_tv": ((76.246, 92.396), (76.154, 92.38)),
                  "inception_v3_ppcls": ((77.456, 92.87), (76.254, 92.102)),
                  "iresnet50": ((75.522, 92.36), (75.856, 92.892))}
    for model, accuracies in documented.items():
        for precision, (top1, top5) in zip(("fp16", "int8"), accuracies):
            row = baselines.model(model).row(f"vacc-{precision}")
            assert (row.top1, row.top5, row.num_classes, row.runner, row.hardware) == (top1, top5, 1000, "vacc", "VACC")
            assert row.preprocess_variant == "vacc-vsx" and f"({precision})" in row.framework
            assert row.source.startswith("VastModelZOO cv/classification/") and f"({precision})" in row.source
    assert baselines.model("inception_v4_ppcls").user_supplied


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
    ('preprocess_variant = "vacc-vsx"', 'preprocess_variant = "VACC vsx"',
     "models.inception_v4.rows[0].preprocess_variant: 'VACC vsx' is not a variant name"),
    ('preprocess_variant = "vacc-vsx"', "preprocess_variant = 1", "rows[0].preprocess_variant: expected str"),
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
