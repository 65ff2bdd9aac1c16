"""pytest plugin: the zoogate option group, hardware markers and their skip hook, gate logging, RNG hygiene."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest

from hardware import registry
from zoogate import baselines
from zoogate.errors import ZoogateError
from zoogate.record import FAIL, INCONCLUSIVE, SKIP, GateRecord
from zoogate.plugin._devices import placement
from zoogate.plugin._state import BATCH_SIZES, RECORDS

MAX_BATCH_SIZE = "max_batch_size"         # tolerance naming the largest --bs


def _bs_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise pytest.UsageError(f"--bs: expected a batch size or a comma list like 1,4,8; got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise pytest.UsageError(f"--bs: batch sizes must be >= 1; got {text!r}")
    try:
        limit = baselines.tolerance(MAX_BATCH_SIZE)
    except ZoogateError as exc:
        raise pytest.UsageError(f"--bs: {exc}") from None
    if max(values) > limit.value:
        raise pytest.UsageError(f"--bs: {max(values)} is above the largest batch size {limit.value:g} "
                                f"({MAX_BATCH_SIZE} in baselines/tolerances_runners.toml: {limit.why})")
    return values


def _runner_names() -> str:
    try:
        return ", ".join(registry.names())
    except ZoogateError as exc:      # reported as a usage error at configure time
        return f"(backends cannot be listed: {exc})"


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("zoogate", "zoogate: models, runners, data and gates")
    g.addoption("--bs", default=None, help="batch size(s) of runner tests: one or a comma list (e.g. 4 or 1,4,8)")
    g.addoption("--models", default=None,
                help="comma list of registry models to test (default: a CPU-sized selection; 'all' for every model)")
    g.addoption("--runner", action="append", default=None,
                help=f"restrict runner tests to these runners (repeatable; NAME or NAME:key=value,...): "
                     f"{_runner_names()}")
    g.addoption("--weights", action="append", default=[], metavar="DIR|NAME=FILE",
                help="real checkpoints: a folder of <model>.pth/.safetensors, or NAME=FILE (repeatable)")
    g.addoption("--onnx", action="append", default=[], metavar="NAME=PATH",
                help="user-supplied ONNX file for a registry model (PaddleClas, MindSpore rows), repeatable")
    g.addoption("--device-id", type=int, default=0, help="accelerator card index (Ascend/VACC/CUDA)")
    g.addoption("--model-dir", default=None, metavar="DIR",
                help="where compiled models live (inception_v4_bs4.om, VACC model prefixes)")
    g.addoption("--cache-dir", default=None, metavar="DIR",
                help="cache for calibrated weights, ONNX exports and image crops (default $ZOOGATE_CACHE or ~/.cache/zoogate)")
    g.addoption("--imagenet", default=None, metavar="DIR",
                help="ImageNet val folder (val/ + val_label.txt, or class folders) for live accuracy gates")
    g.addoption("--limit", type=int, default=None, metavar="N", help="evaluate a class-balanced subset of N images")
    g.addoption("--workers", type=int, default=None, metavar="N",
                help="input pipeline worker processes of live evaluation (default: usable cores - 1; 0: in-process)")
    g.addoption("--no-crop-cache", action="store_true",
                help="decode every image again instead of reusing cached uint8 crops of the same geometry")
    g.addoption("--crop-cache-max-gb", type=float, default=None, metavar="GB",
                help="bound of the crop cache under the cache folder (default 16; the oldest shards go first)")
    g.addoption("--resume", action="store_true", help="resume an interrupted live evaluation from its saved partials")
    g.addoption("--results", default=None, metavar="DIR", help="a device's result folder to score offline")
    g.addoption("--labels", default=None, metavar="FILE", help="label file for --results (val_label.txt format)")
    g.addoption("--output-dtype", default=None, choices=("fp16", "fp32", "fp64"),
                help="dtype of ais_bench BIN outputs in --results (default: from the file size)")
    g.addoption("--baseline-row", default=None, metavar="ROW",
                help="baseline row a run claims (reference, ascend-310p3, gpu-v100, ...)")
    g.addoption("--gate-report", default=None, metavar="PATH",
                help="write the gate report JSON here (default reports/gate-report.json)")
    g.addoption("--gate-report-html", default=None, metavar="PATH",
                help="also write the gate report as one self-contained HTML page (matrix, failures, fps plot)")
    g.addoption("--save-baseline", default=None, metavar="NAME", help="record measured fps floors under NAME")
    g.addoption("--compare-baseline", default=None, metavar="NAME", help="fail on fps regressions against NAME")
    g.addoption("--require", action="append", default=[], metavar="RUNNER",
                help="fail the run when every test of this runner was skipped (repeatable)")
    g.addoption("--allow-inconclusive", action="store_true",
                help="an INCONCLUSIVE gate (too little evidence to decide) skips its test instead of failing it; "
                     "the report still shows it as INCONCLUSIVE")


SLOW = "slow"


def markers() -> dict[str, str]:
    """Marker name -> help: every backend's hardware markers (hardware.registry), `npu` and `slow`."""
    try:
        declared = registry.markers()
    except ZoogateError as exc:
        raise pytest.UsageError(f"backends: {exc}") from None
    cards = [name for name, m in declared.items() if m.npu]
    return {registry.NPU: f"needs an accelerator card; implied by {', '.join(cards) or 'no installed backend'}",
            **{name: m.description for name, m in declared.items()},
            SLOW: "long-running (minutes on 2 CPU cores)"}


def pytest_configure(config: pytest.Config) -> None:
    for name, text in markers().items():
        config.addinivalue_line("markers", f"{name}: {text}")
    bs = config.getoption("--bs")
    config.stash[BATCH_SIZES] = _bs_list(bs) if bs else None
    config.stash[RECORDS] = []       # GateRecords logged by tests, in order
    config.pluginmanager.register(HardwareSkips(), "zoogate-hardware-skips")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Card markers imply npu, before -m selects on it."""
    cards = set(registry.npu_markers())
    for item in items:
        names = {m.name for m in item.iter_markers()}
        if names & cards and registry.NPU not in names:
            item.add_marker(registry.NPU)


class HardwareSkips:
    """Hardware-marked tests skip with what their backend's detection did not find. It runs after -m has
    deselected, so only the hardware a run selects is detected (detecting a CUDA GPU imports torch)."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        hardware = list(registry.markers())
        for item in items:
            names = {m.name for m in item.iter_markers()}
            for marker in hardware:
                if marker in names:
                    ok, why = registry.detect(marker)
                    if not ok:
                        item.add_marker(pytest.mark.skip(reason=why))
                        break


@pytest.fixture(autouse=True)
def _restore_rng_state():
    """Tests may seed RNGs; restore python/numpy/torch state afterwards so order never matters. torch is not
    imported for this (a run of tests that use no torch never imports it): after the test that first imports
    it, its generator is reset to a new generator's state, the same whichever test that was."""
    torch = sys.modules.get("torch")
    py, np_state = random.getstate(), np.random.get_state()
    torch_state = torch.get_rng_state() if torch is not None else None
    yield
    random.setstate(py)
    np.random.set_state(np_state)
    if torch_state is not None:
        torch.set_rng_state(torch_state)
    elif "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_rng_state(torch.Generator().get_state())


LOGGED = pytest.StashKey[int]()      # records a test logged through gate_log


@pytest.fixture
def gate_log(request: pytest.FixtureRequest):
    """Log a GateRecord for the report, then turn it into the test's outcome.

    FAIL -> the test fails with the record's explanation; INCONCLUSIVE -> the same, unless
    --allow-inconclusive (then a skip saying it was inconclusive); SKIP -> pytest.skip(reason).
    """

    def log(record: GateRecord) -> GateRecord:
        record.details.setdefault("nodeid", request.node.nodeid)
        where = placement(request.config)
        if where.worker is not None or request.config.getoption("--devices") is not None:
            record.details.setdefault("worker", where.worker or "main")
            record.details.setdefault("device", where.device)
        request.config.stash[RECORDS].append(record)
        request.node.stash[LOGGED] = request.node.stash.get(LOGGED, 0) + 1
        if record.status == FAIL:
            pytest.fail(record.explain(), pytrace=False)
        if record.status == INCONCLUSIVE:
            if request.config.getoption("--allow-inconclusive"):
                pytest.skip(f"INCONCLUSIVE (allowed by --allow-inconclusive): {record.reason}")
            pytest.fail(record.explain() + "\n  (too little evidence to pass: pass --allow-inconclusive to let "
                        "the run go on; the report keeps it INCONCLUSIVE)", pytrace=False)
        if record.status == SKIP:
            pytest.skip(record.reason)
        return record

    return log
