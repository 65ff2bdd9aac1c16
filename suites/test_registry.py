"""The backend registry: built-in backends found in hardware/, third-party ones through the
``zoogate.backends`` entry point group, and everything the suite derives from them (runner
parametrization, markers and their skip reasons, the card runners)."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import hardware
from hardware import registry
from hardware.base import Backend
from zoogate.errors import ZoogateError

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

# A vendor's package: one module with BACKEND, shipped with its own dist-info and entry point.
FOO_MODULE = '''
from hardware.base import Backend, Marker, Runner


def device():
    return False, "no Foo card: /dev/foo0 not found (install the foo driver)"


FOO = Marker("foo", "needs a Foo card", detect=lambda: device(), npu=True)


class FooRunner(Runner):
    name = "foo"
    marker = FOO.name
    options = {"precision": "fp16 or int8"}

    def __init__(self, device_id=0, precision=None):
        super().__init__()

    @classmethod
    def available(cls):
        return device()

    @classmethod
    def artifact(cls, request):
        return request.onnx()

    def load(self, artifact, batch_size):
        raise AssertionError("never loaded without a card")

    def _infer(self, batch):
        raise AssertionError("never run without a card")


BACKEND = Backend("foo", runners=(FooRunner,), markers=(FOO,))
OTHER = Backend("foo-other", runners=())
'''


def install_dist(site: Path, entry_points: str, module: str = FOO_MODULE) -> Path:
    """A zoogate-foo distribution as pip would leave it in site-packages: the module and its dist-info."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "zoogate_foo.py").write_text(module, encoding="utf-8")
    info = site / "zoogate_foo-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zoogate-foo\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{entry_points}\n", encoding="utf-8")
    return site


@pytest.fixture
def vendor_package(tmp_path, monkeypatch):
    """install(entry_points) puts a zoogate-foo distribution on sys.path; the registry forgets it afterwards."""

    def install(entry_points: str = "foo = zoogate_foo", module: str = FOO_MODULE) -> Path:
        site = install_dist(tmp_path / "site", entry_points, module)
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.delitem(sys.modules, "zoogate_foo", raising=False)
        registry.refresh()
        return site

    yield install
    monkeypatch.undo()
    sys.modules.pop("zoogate_foo", None)
    registry.refresh()


# ------------------------------------------------------------------ built-in discovery

def test_every_hardware_module_with_a_backend_is_found():
    modules = [importlib.import_module(f"hardware.{m.name}") for m in pkgutil.iter_modules(hardware.__path__)]
    declared = [m.BACKEND for m in modules if hasattr(m, "BACKEND")]
    assert len(declared) >= 4 and list(registry.backends())[:len(declared)] == declared
    assert {"torch", "onnxruntime"} <= set(registry.names())


def test_every_runner_carries_a_declared_marker_and_cards_imply_npu():
    markers = registry.markers()
    for name, cls in registry.runners().items():
        assert cls.marker is None or cls.marker in markers, name
    assert set(registry.card_runners()) == {n for n, c in registry.runners().items()
                                            if c.marker and markers[c.marker].npu}
    assert {"ascend", "vacc", "onnxruntime-cann"} <= set(registry.card_runners())
    assert not {"torch", "onnxruntime"} & set(registry.card_runners())


def test_runner_order_puts_markerless_runners_first_and_cards_last():
    tiers = [0 if c.marker is None else 2 if registry.markers()[c.marker].npu else 1
             for c in registry.runners().values()]
    assert tiers == sorted(tiers)


def test_discovery_imports_no_framework_or_vendor_sdk():
    code = ("import sys; from hardware import registry; registry.backends(); "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'openvino', 'ais_bench', 'vaststreamx') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_runner_options_are_checked_against_the_declaration():
    assert registry.parse_spec("vacc:precision=int8").options == {"precision": "int8"}
    with pytest.raises(ZoogateError, match=r"runner torch has no option 'precision'.*known: none"):
        registry.parse_spec("torch:precision=fp16")
    with pytest.raises(ZoogateError, match="unknown runner 'nope'"):
        registry.parse_spec("nope")


def test_npu_detection_is_any_card():
    ok, why = registry.detect(registry.NPU)
    cards = [registry.markers()[m].detect() for m in registry.npu_markers()]
    assert ok == any(c for c, _ in cards)
    if not ok:
        assert all(reason in why for _, reason in cards)


# ------------------------------------------------------------------ third-party backends (entry points)

def test_an_entry_point_backend_joins_the_registry(vendor_package):
    vendor_package("foo = zoogate_foo")
    assert "foo" in registry.names() and registry.marker("foo") == "foo"
    assert registry.markers()["foo"].npu and "foo" in registry.card_runners()
    assert registry.detect("foo") == (False, "no Foo card: /dev/foo0 not found (install the foo driver)")
    assert registry.parse_spec("foo:precision=int8").options == {"precision": "int8"}
    assert registry.names()[-1] == "foo"              # after the built-ins, with the other cards


def test_an_entry_point_may_name_a_backend_object(vendor_package):
    vendor_package("other = zoogate_foo:OTHER")
    assert "foo-other" in [b.name for b in registry.backends()] and "foo" not in registry.names()


@pytest.mark.parametrize("entry, module, message", [
    ("foo = zoogate_foo_missing", FOO_MODULE, "entry point foo = zoogate_foo_missing .*cannot be loaded"),
    ("foo = zoogate_foo:FOO", FOO_MODULE, "expected a hardware.base.Backend"),
    ("foo = zoogate_foo", FOO_MODULE.replace('BACKEND = Backend("foo"', 'NOT_BACKEND = Backend("foo"'),
     "defines no BACKEND"),
    ("foo = zoogate_foo", FOO_MODULE.replace('name = "foo"', 'name = "torch"'),
     "runner 'torch' is already declared by backend torch"),
    ("foo = zoogate_foo", FOO_MODULE.replace('Marker("foo"', 'Marker("gpu"'),
     "marker 'gpu' is already declared by backend torch"),
    ("foo = zoogate_foo", FOO_MODULE.replace('Marker("foo"', 'Marker("npu"'), "marker 'npu' is already declared"),
    ("foo = zoogate_foo", FOO_MODULE.replace("marker = FOO.name", 'marker = "fooo"'),
     "carries marker 'fooo', which no backend declares"),
], ids=["unimportable", "not-a-backend", "no-BACKEND", "runner-clash", "marker-clash", "reserved-marker",
        "undeclared-marker"])
def test_a_broken_backend_is_named_in_one_error(vendor_package, entry, module, message):
    vendor_package(entry, module)
    with pytest.raises(ZoogateError, match=message):
        registry.backends()


def test_a_backend_with_faults_adds_them_to_the_matrix(monkeypatch):
    rows = ["row"]
    extra = Backend("planted", runners=(), faults=lambda: rows)
    found = registry.backends()
    monkeypatch.setattr(registry, "backends", lambda: (*found, extra))
    assert registry.faults()[-1:] == rows


# ------------------------------------------------------------------ the pytest plugin, from the registry

def test_the_session_registers_every_backend_marker(request):
    lines = [line.split(":", 1)[0] for line in request.config.getini("markers")]
    assert {*registry.markers(), registry.NPU, "slow"} <= set(lines)


VENDOR_TESTS = '''
import pytest

@pytest.mark.foo
def test_on_the_card():
    pass

@pytest.mark.runner_cases(models=["iresnet50"], runners=["foo", "torch"], bs=[1])
def test_runner(runner_case):
    pass
'''


def test_a_new_backends_marker_skips_its_tests_with_its_detection_reason(torch_before_pytester, vendor_package,
                                                                          pytester, monkeypatch, tmp_path, request):
    from zoogate import cache

    vendor_package("foo = zoogate_foo")
    pytester.makepyprojecttoml((ROOT / "pyproject.toml").read_text())   # --strict-markers: foo must be registered
    monkeypatch.setenv("ZOOGATE_CACHE", str(tmp_path / "cache"))
    pytester.makepyfile(test_vendor=VENDOR_TESTS)
    try:
        result = pytester.runpytest("-rs", "-p", "no:randomly", "--gate-report", "r.json")
        result.assert_outcomes(passed=1, skipped=2)
        result.stdout.fnmatch_lines(["*no Foo card: /dev/foo0 not found (install the foo driver)*"])
        selected = pytester.runpytest("-m", "not npu", "-p", "no:randomly", "--gate-report", "r.json")
        selected.assert_outcomes(passed=1, deselected=2)          # a card backend's tests carry npu
    finally:
        cache.set_root(request.config.getoption("--cache-dir"))


# ------------------------------------------------------------------ a test's own parametrization

def _metafunc(*marks):
    from types import SimpleNamespace

    return SimpleNamespace(definition=SimpleNamespace(iter_markers=lambda name: [m.mark for m in marks]))


def test_an_argument_is_explicit_only_when_named_exactly():
    from zoogate.plugin._params import argnames, explicitly_parametrized

    longer = pytest.mark.parametrize("torch_model_name", ["iresnet50"])
    several = pytest.mark.parametrize("check, runner_case", [])
    listed = pytest.mark.parametrize(("runner_name", "bs"), [])
    assert argnames(several.mark) == ["check", "runner_case"] and argnames(listed.mark) == ["runner_name", "bs"]
    assert not explicitly_parametrized(_metafunc(longer), "model_name")     # a substring is not the name
    assert explicitly_parametrized(_metafunc(longer), "torch_model_name")
    assert explicitly_parametrized(_metafunc(longer, several), "runner_case")
    assert not explicitly_parametrized(_metafunc(several), "runner")
    assert explicitly_parametrized(_metafunc(pytest.mark.parametrize(argnames="model_name", argvalues=[])),
                                   "model_name")


def test_the_loader_bounds_loaded_artifacts_not_batch_size_views(request, monkeypatch):
    """Views of one loaded artifact at other batch sizes share it and do not count against the bound; the
    artifact used longest ago is closed first, with all its views, and a view's use keeps its artifact."""
    from hardware.base import Runner
    from zoogate.plugin import runners

    closed = []

    class Loaded(Runner):
        name = "loaded-double"

        @classmethod
        def available(cls):
            return True, "a double"

        def load(self, artifact, batch_size):
            self.batch_size, self.model = batch_size, artifact
            return self

        def _infer(self, batch):
            return batch

        def close(self):
            closed.append(self.model)

    monkeypatch.setattr(registry, "get", lambda name: Loaded)
    monkeypatch.setattr(runners, "_LOADED_MAX", 2)
    loader = runners.RunnerLoader(request.config, zoo=None)
    monkeypatch.setattr(loader, "_load_new", lambda model, runner, bs, options: Loaded().load(model, bs))
    a1 = loader.load("a", "loaded-double", 1)
    a4 = loader.load("a", "loaded-double", 4)
    assert a4.shares_artifact_with(a1) and a4.batch_size == 4
    loader.load("b", "loaded-double", 1)
    assert loader.load("a", "loaded-double", 4) is a4          # a used again, through a view
    loader.load("c", "loaded-double", 1)                        # a third artifact: b goes, not a
    assert closed == ["b"]
    assert loader.load("a", "loaded-double", 1) is a1


def test_cuda_detection_asks_torch_only_where_a_gpu_device_node_exists(monkeypatch):
    import sys

    import torch

    from hardware import torch_runner

    if sys.platform.startswith("linux"):
        present = []
        monkeypatch.setattr(torch_runner.os.path, "exists", lambda node: present.append(node) and False)
        assert torch_runner.gpu_device_node() is None and present == list(torch_runner.GPU_DEVICE_NODES)
        monkeypatch.undo()
    torch_runner.cuda.cache_clear()
    try:
        monkeypatch.setattr(torch_runner, "gpu_device_node", lambda: None)
        ok, why = torch_runner.cuda()
        assert not ok and "no GPU device node" in why, why
        assert torch_runner.cuda_cards() == []
        monkeypatch.setattr(torch_runner, "gpu_device_node", lambda: "/dev/nvidiactl")
        torch_runner.cuda.cache_clear()
        ok, why = torch_runner.cuda()
        assert ok == torch.cuda.is_available() and "device node" not in why, why
    finally:
        torch_runner.cuda.cache_clear()
