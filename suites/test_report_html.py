"""Many hosts, one verdict: `zoogate report merge` and the HTML release page, the page checked in headless
Chromium (its DOM read back, a screenshot taken)."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from zoogate import cli
from zoogate.record import FAIL, INCONCLUSIVE, PASS, SKIP, GateRecord
from zoogate.report import build_report, load_report, write_report
from zoogate.report.html import render_html
from zoogate.report.merge import merge_reports

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL_CHROMIUM = "apt-get install -y chromium (Debian; .ci/run does it)"


def _rec(gate, check, model, status, runner="onnxruntime", bs=4, **kw):
    return GateRecord(gate=gate, check=check, model=model, status=status, runner=runner, bs=bs,
                      reason=kw.pop("reason", f"{status} on purpose"), **kw)


def _host_report(tmp_path, host: str, agreement: str) -> Path:
    records = [_rec("agreement", "logits", "iresnet50", agreement, measured=0.5 if agreement == FAIL else 1e-4),
               _rec("accuracy", "top1", "iresnet50", INCONCLUSIVE, runner="torch", bs=8, measured=79.0),
               _rec("architecture", "params_m", "iresnet50", PASS, runner="-", bs=None),
               _rec("throughput", "fps_floor", "iresnet50", SKIP, bs=1, measured=20.0,
                    details={"measurement": {"fps": 20.0}, "device": 1}),
               _rec("throughput", "fps_floor", "iresnet50", SKIP, bs=8, measured=31.0,
                    details={"measurement": {"fps": 31.0}})]
    doc = build_report(records, environment={"host_id": host, "devices": {"cpu": f"{host} cpu"}}, run={"problems": []})
    return write_report(doc, tmp_path / f"{host}.json")


class _Cells(HTMLParser):
    """Matrix cells, failures and the plot of a rendered page, by their data attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.cells, self.failures, self.images, self.verdict, self.fps_devices = [], [], [], None, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and "data-status" in a:
            self.cells.append((a["data-model"], a["data-host"], a["data-runner"], a["data-gate"], a["data-status"]))
        if tag == "details" and "data-record" in a:
            self.failures.append((a["data-record"], a["data-status"]))
        if tag == "img":
            self.images.append(a.get("src", "")[:22])
        if a.get("id") == "verdict":
            self.verdict = a.get("data-verdict")
        if tag == "tr" and "data-device" in a:
            self.fps_devices.append(a["data-device"])


def _parse(page: str) -> _Cells:
    cells = _Cells()
    cells.feed(page)
    return cells


EXPECTED_CELLS = {("iresnet50", "host-a", "onnxruntime", "agreement", PASS),
                  ("iresnet50", "host-b", "onnxruntime", "agreement", FAIL),
                  ("iresnet50", "host-a", "torch", "accuracy", INCONCLUSIVE),
                  ("iresnet50", "host-b", "-", "architecture", PASS),
                  ("iresnet50", "host-a", "onnxruntime", "throughput", SKIP)}


@pytest.fixture
def merged(tmp_path, capsys):
    a, b = _host_report(tmp_path, "host-a", PASS), _host_report(tmp_path, "host-b", FAIL)
    out = tmp_path / "release.json"
    code = cli.main(["report", "merge", str(a), str(b), "--out", str(out), "--html", str(tmp_path / "release.html")])
    return code, load_report(out), tmp_path / "release.html", capsys.readouterr().out


def test_merge_keeps_every_record_flags_the_conflict_and_fails_the_release(merged):
    code, report, _, out = merged
    assert code == 1
    assert len(report.records) == 10 and {r.details["host"] for r in report.records} == {"host-a", "host-b"}
    assert all(r.details["hardware"] for r in report.records)
    assert report.summary["conflicts"] == ["agreement:logits:iresnet50-onnxruntime-bs4: host-a pass, host-b fail"]
    assert "conflict: agreement:logits:iresnet50-onnxruntime-bs4" in out


def test_merge_of_agreeing_hosts_passes(tmp_path):
    a, b = _host_report(tmp_path, "host-a", PASS), _host_report(tmp_path, "host-c", PASS)
    doc = merge_reports([load_report(a), load_report(b)])
    assert doc["summary"]["conflicts"] == [] and doc["run"]["problems"] == []
    assert cli.main(["report", "merge", str(a), str(b), "--out", str(tmp_path / "r.json")]) == 0


def test_merge_needs_two_reports_and_an_out_file(tmp_path, capsys):
    a = _host_report(tmp_path, "host-a", PASS)
    assert cli.main(["report", "merge", str(a), "--out", str(tmp_path / "r.json")]) == 2
    assert cli.main(["report", "merge", str(a), str(a)]) == 2
    assert "--out release.json" in capsys.readouterr().err


def test_page_holds_the_matrix_the_failures_and_the_plot(merged):
    _, report, page, _ = merged
    cells = _parse(page.read_text(encoding="utf-8"))
    assert EXPECTED_CELLS <= set(cells.cells)
    assert cells.verdict == "FAIL"
    assert ("agreement:logits:iresnet50-onnxruntime-bs4", FAIL) in cells.failures
    assert cells.images == ["data:image/png;base64,"]
    assert sorted(cells.fps_devices) == ["-", "-", "1", "1"]          # fps per host and device
    single = _parse(render_html([load_report(_host_report(page.parent, "host-a", PASS))]))
    assert single.verdict == "INCONCLUSIVE" and ("iresnet50", "host-a", "onnxruntime", "agreement", PASS) in single.cells


def test_page_in_headless_chromium(merged, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip(f"headless Chromium not found: {INSTALL_CHROMIUM}")
    _, _, page, _ = merged
    profile = tmp_path / "chromium-profile"
    base = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    cells = _parse(dom.stdout)
    assert EXPECTED_CELLS <= set(cells.cells), "the browser's DOM lacks matrix cells"
    assert cells.verdict == "FAIL" and cells.images == ["data:image/png;base64,"]
    shot = ROOT / "reports" / "release-page.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    run = subprocess.run([*base, f"--screenshot={shot}", "--window-size=1400,1100", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.read_bytes()[:4] == b"\x89PNG", run.stderr[-2000:]


def test_a_skip_on_one_host_is_no_conflict(tmp_path):
    """A CI host skips the card's tests that the card host passes: one verdict, no conflict."""
    a = _host_report(tmp_path, "card-host", PASS)
    b = _host_report(tmp_path, "ci-host", SKIP)
    doc = merge_reports([load_report(a), load_report(b)])
    assert doc["summary"]["conflicts"] == [] and doc["run"]["problems"] == []


def test_three_runs_of_one_host_stay_three_hosts(tmp_path):
    reports = []
    for run in ("run1", "run2", "run3"):           # the same host name and the same file name, three folders
        (tmp_path / run).mkdir()
        reports.append(load_report(_host_report(tmp_path / run, "host-a", PASS)))
    doc = merge_reports(reports)
    assert doc["run"]["hosts"] == ["host-a", "host-a (host-a.json)", "host-a (host-a.json) #2"]
    assert len(doc["records"]) == 15 and len({r["details"]["host"] for r in doc["records"]}) == 3
