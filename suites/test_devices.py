"""Device pinning under pytest-xdist (zoogate.plugin.devices): each worker on its own device, one report
holding exactly the serial run's records, more workers than devices a usage error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zoogate.plugin._devices import parse_devices

ROOT = Path(__file__).resolve().parents[1]
SELECTION = ["suites/test_runner_contract.py", "-k",
             "iresnet50 and onnxruntime and not cuda and not int8 and (determinism or output_shape)"]   # no eager model to load


def test_device_lists():
    assert parse_devices("0-3") == [0, 1, 2, 3]
    assert parse_devices("0,2,5") == [0, 2, 5]
    assert parse_devices("1-2,2,4") == [1, 2, 4]
    for bad in ("x", "3-1", "-1", "0,,1"):
        with pytest.raises(pytest.UsageError, match="--devices"):
            parse_devices(bad)


def _pytest(tmp_path, name: str, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    report = tmp_path / f"{name}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONDONTWRITEBYTECODE"))}
    res = subprocess.run([sys.executable, "-m", "pytest", "-m", "not npu", "-p", "no:randomly", "-q", *SELECTION,
                          "--gate-report", str(report), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    return res, (json.loads(report.read_text()) if report.is_file() else {})


def test_two_workers_on_two_devices_give_the_serial_records(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:     # two independent runs: their start-ups overlap
        serial_run = pool.submit(_pytest, tmp_path, "serial")
        pinned_run = pool.submit(_pytest, tmp_path, "pinned", "-n", "2", "--devices", "0,1")
        (serial, one), (pinned, two) = serial_run.result(), pinned_run.result()
    assert serial.returncode == 0, serial.stdout[-2000:]
    assert pinned.returncode == 0, pinned.stdout[-2000:]

    def records(doc):
        return sorted((r["details"]["nodeid"], r["gate"], r["check"], r["status"]) for r in doc["records"])

    assert records(two) == records(one) and len(records(one)) >= 4
    assert {(r["details"]["worker"], r["details"]["device"]) for r in two["records"]} == {("gw0", 0), ("gw1", 1)}
    assert all("device" not in r["details"] for r in one["records"])        # serial, no --devices: as before


def test_more_workers_than_devices_is_a_usage_error(tmp_path):
    res, _ = _pytest(tmp_path, "too-many", "-n", "3", "--devices", "0,1", "--collect-only")
    assert res.returncode == 4, res.stdout[-1500:] + res.stderr[-1500:]
    assert "3 xdist workers but 2 device(s)" in res.stderr


def test_default_devices_are_the_cards_the_backend_detects(monkeypatch):
    import hardware.ascend as ascend
    from zoogate.plugin.devices import default_devices

    class Config:
        def __init__(self, markexpr):
            self.markexpr = markexpr

        def getoption(self, name):
            return self.markexpr

    monkeypatch.setattr(ascend, "device", lambda: (True, "Ascend: two chips (test)"))
    monkeypatch.setattr(ascend, "cards", lambda: [0, 1])
    assert default_devices(Config("ascend")) == ([0, 1], "every ascend card detected")
    assert default_devices(Config("not npu"))[0] is None           # a CPU run is never spread over cards
    monkeypatch.setattr(ascend, "cards", lambda: [])
    assert default_devices(Config("ascend"))[0] is None


def test_tests_are_scheduled_by_runner_case():
    from zoogate.plugin.devices import runner_case_scope

    a = runner_case_scope("suites/test_runner_contract.py::test_determinism[iresnet50-onnxruntime-bs4]")
    b = runner_case_scope("suites/test_runner_contract.py::test_agreement_with_eager[iresnet50-onnxruntime-bs4]")
    c = runner_case_scope("suites/test_agreement.py::test_x[iresnet50-onnxruntime-bs1-ort_all]")
    assert a == b == "iresnet50-onnxruntime-bs4" and c == "iresnet50-onnxruntime-bs1"
    assert runner_case_scope("suites/test_calib.py::test_per_class_gives_every_class") == "suites/test_calib.py"


def test_the_suite_starts_without_xdist():
    """The scheduling hook is xdist's: with xdist disabled (-p no:xdist) pytest must still start."""
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "--collect-only", "-q",
                          "suites/test_calib.py"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-1500:] + res.stderr[-1500:]
