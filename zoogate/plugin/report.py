"""pytest plugin: the gate report at the end of a run, the exit status, --require, host fps baselines.

- Every GateRecord the session logged (``session_records(config)``, filled by ``gate_log``; under
  pytest-xdist they travel from the workers in the reports' user_properties) is written to the JSON
  report (``--gate-report PATH``, default ``reports/gate-report.json``) with an environment block, an fps
  plot beside it (``<stem>.fps.png``), and JUnit XML (``<stem>.junit.xml`` unless --junitxml is given).
- Exit status: a FAIL record fails its test (gate_log); should a FAIL record not have failed any test
  (caught, xfail-marked, logged outside gate_log) the run still exits non-zero. ``--require RUNNER``
  exits non-zero when no test of that runner (or hardware marker) ran: all skipped or none selected.
- ``--save-baseline NAME`` stores this run's fps per (model, runner, bs) for this host;
  ``--compare-baseline NAME`` gives the throughput tests the ``host_baseline`` fixture to gate against.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from zoogate import report as gate_report
from zoogate.errors import ZoogateError
from zoogate.plugin._state import RECORDS, batch_sizes, session_records
from zoogate.record import FAIL, INCONCLUSIVE, SKIP, GateRecord

RUNNER_PARAMS = ("runner", "runner_name", "runner_case")
_RECORDS_PROP = "zoogate_records"
_RUNNERS_PROP = "zoogate_runners"
_SILENT_PROP = "zoogate_silent_gate"


@dataclass
class RunnerTally:
    """What happened to the tests of one runner tag (a runner name or a hardware marker)."""

    collected: set = field(default_factory=set)
    ran: set = field(default_factory=set)
    skipped: dict = field(default_factory=dict)          # nodeid -> reason


@dataclass
class ReportState:
    path: Path
    junit: str | None
    problems: list[str] = field(default_factory=list)     # each fails the run
    notes: list[str] = field(default_factory=list)        # printed, never fail the run
    silent: list[str] = field(default_factory=list)       # gate tests that passed without logging a record
    tallies: dict = field(default_factory=lambda: defaultdict(RunnerTally))
    sent: int = 0                      # records already forwarded (xdist worker)
    written: Path | None = None
    plot: Path | None = None
    html: Path | None = None
    saved_baseline: Path | None = None
    enabled: bool = True


_STATE = pytest.StashKey[ReportState]()


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _hardware_tags() -> set[str]:
    """The backends' hardware markers and ``npu``."""
    from hardware import registry

    return {*registry.markers(), registry.NPU}


def _known_tags() -> set[str]:
    try:
        from hardware import registry

        return set(registry.names()) | _hardware_tags()
    except Exception:           # the registry is another module's; never let it break option checks
        return set()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Before junitxml's own pytest_configure: point --junitxml beside the gate report when not given."""
    given = config.getoption("--gate-report")
    if given:
        path = Path(given)
        if not path.is_absolute():
            path = config.invocation_params.dir / path
        if path.suffix.lower() != ".json":
            raise pytest.UsageError(f"--gate-report {given}: expected a .json path")
        if path.is_dir():
            raise pytest.UsageError(f"--gate-report {given}: is a folder, expected a .json file path")
    else:
        path = config.rootpath / gate_report.DEFAULT_PATH
    if given and not getattr(config.option, "xmlpath", None):
        config.option.xmlpath = str(path.with_name(path.stem + ".junit.xml"))
    junit = getattr(config.option, "xmlpath", None)
    required = config.getoption("--require") or []
    known = _known_tags()
    unknown = [r for r in required if r not in known]
    if unknown:
        raise pytest.UsageError(f"--require: unknown runner or hardware {unknown}; known: {', '.join(sorted(known))}")
    for name in ("--save-baseline", "--compare-baseline"):
        value = config.getoption(name)
        if value:
            try:
                from zoogate.throughput import check_name

                check_name(value)
            except ZoogateError as exc:
                raise pytest.UsageError(f"{name}: {exc}") from None
    enabled = not (config.option.collectonly or getattr(config.option, "help", False)
                   or getattr(config.option, "showfixtures", False) or getattr(config.option, "markers", False))
    if enabled and not _is_worker(config):
        try:
            gate_report.check_writable(path)        # now, not after a two-hour run
        except ZoogateError as exc:
            option = f"--gate-report {given}" if given else "gate report (choose a place with --gate-report PATH)"
            raise pytest.UsageError(f"{option}: {exc.problem}" if given else f"{option}: {exc}") from None
    state = ReportState(path=path, junit=junit, enabled=enabled)
    config.stash[_STATE] = state
    if not _is_worker(config):
        config.pluginmanager.register(SessionReport(config, state), "zoogate-session-report")


# ---------------------------------------------------------------- which runner a test belongs to

def item_runner_tags(item: pytest.Item) -> set[str]:
    """Runner names from the test's parameters (runner / runner_name / runner_case, or any parameter with a
    ``runner`` text or a ``name`` of a Runner), plus its hardware markers."""
    tags: set[str] = set()
    callspec = getattr(item, "callspec", None)
    params = dict(callspec.params) if callspec else {}
    for key, value in params.items():
        name = None
        if key in RUNNER_PARAMS and isinstance(value, str):
            name = value
        elif isinstance(getattr(value, "runner", None), str):
            name = value.runner
        elif key in RUNNER_PARAMS and isinstance(getattr(value, "name", None), str):
            name = value.name
        if name:
            tags.add(name)
            marker = getattr(value, "marker", None)
            if isinstance(marker, str):
                tags.add(marker)
    hardware = _hardware_tags()
    tags |= {m.name for m in item.iter_markers() if m.name in hardware}
    return tags


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tags = item_runner_tags(item)
        if tags:
            item.user_properties.append((_RUNNERS_PROP, ",".join(sorted(tags))))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """On an xdist worker, send the records logged since the last report along with this report. A gate
    test (one that asks for gate_log) that passed without logging a record is marked: it gated nothing."""
    report = yield
    config = item.config
    if report.when == "call" and report.passed and "gate_log" in getattr(item, "fixturenames", ()):
        from zoogate.plugin.core import LOGGED

        if not item.stash.get(LOGGED, 0):
            report.user_properties.append((_SILENT_PROP, item.nodeid))
    state = config.stash.get(_STATE, None)
    records = config.stash.get(RECORDS, None)
    if state is not None and records is not None and _is_worker(config) and len(records) > state.sent:
        report.user_properties.append((_RECORDS_PROP, [r.to_dict() for r in records[state.sent:]]))
        state.sent = len(records)
    return report


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "skipped")


# ---------------------------------------------------------------- --require, exit status, writing

def require_problems(required: list[str], tallies: dict, records: list[GateRecord]) -> list[str]:
    """One line per required runner none of whose tests ran (records of that runner that did not skip
    also count as having run)."""
    problems = []
    for tag in required:
        tally = tallies.get(tag, RunnerTally())
        ran_by_record = any(r.runner == tag and r.status != SKIP for r in records)
        if tally.ran or ran_by_record:
            continue
        if not tally.collected:
            problems.append(f"--require {tag}: no test of {tag} was collected or selected (check -m/-k and "
                            f"--runner): nothing proves {tag} works")
            continue
        reasons = sorted(set(tally.skipped.values()))
        shown = "; ".join(reasons[:3]) + (f"; ... ({len(reasons) - 3} more)" if len(reasons) > 3 else "")
        problems.append(f"--require {tag}: all {len(tally.collected)} {tag} test(s) were skipped: {shown}")
    return problems


def _save_host_baseline(config: pytest.Config, state: ReportState, records: list[GateRecord]) -> None:
    from zoogate import throughput

    name = config.getoption("--save-baseline")
    if not name:
        return
    cached = {(r.model, r.runner, r.bs) for r in records
              if r.gate == "throughput" and r.check == "anti_caching" and r.status == FAIL}
    summaries = {}
    for r in records:
        m = r.details.get("measurement") if r.gate == "throughput" else None
        if isinstance(m, dict) and (r.model, r.runner, r.bs) not in cached:
            summaries[(r.model, r.runner, r.bs)] = m
    if not summaries:
        state.problems.append(f"--save-baseline {name}: no throughput was measured (or every measured runner "
                              "failed anti-caching), nothing saved")
        return
    try:
        state.saved_baseline = throughput.save_host_baseline(name, list(summaries.values()))
    except ZoogateError as exc:
        state.problems.append(f"--save-baseline {name}: {exc}")


def _run_block(config: pytest.Config, state: ReportState, exitstatus) -> dict:
    from zoogate.throughput import MeasureSettings

    try:
        settings = MeasureSettings.from_baselines().to_dict()
    except ZoogateError as exc:
        settings = {"error": str(exc)}
    return {"args": list(config.invocation_params.args), "rootdir": str(config.rootpath),
            "exitstatus": int(exitstatus), "junit": state.junit,
            "plot": str(state.plot) if state.plot else None, "require": config.getoption("--require") or [],
            "problems": state.problems, "models": config.getoption("--models"), "bs": batch_sizes(config),
            "baseline_row": config.getoption("--baseline-row"),
            "save_baseline": config.getoption("--save-baseline"),
            "saved_baseline_file": str(state.saved_baseline) if state.saved_baseline else None,
            "compare_baseline": config.getoption("--compare-baseline"), "throughput_settings": settings}


def _seeds(config: pytest.Config, records: list[GateRecord]) -> dict:
    seeds: dict = {}
    order_seed = getattr(config.option, "random_order_seed", None)
    if order_seed is not None and getattr(config.option, "random_order_enabled", False):
        seeds["random_order_seed"] = order_seed
    used = sorted({d for r in records for k, d in r.details.items()
                   if k in ("seed", "image_seed") and isinstance(d, int)})
    if used:
        seeds["record_seeds"] = used
    return seeds


class SessionReport:
    """Per-run hooks (registered for the controller's config only): tallies, exit status, writing."""

    def __init__(self, config: pytest.Config, state: ReportState) -> None:
        self.config, self.state = config, state

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Before junitxml sees the report: take the records a worker sent out of its user_properties
        (they belong in the gate report, not as JUnit properties); tally runner outcomes."""
        config, state = self.config, self.state
        forwarded = [v for n, v in report.user_properties if n == _RECORDS_PROP]
        silent = [v for n, v in report.user_properties if n == _SILENT_PROP]
        state.silent += silent
        if forwarded or silent:
            report.user_properties = [(n, v) for n, v in report.user_properties
                                      if n not in (_RECORDS_PROP, _SILENT_PROP)]
            for batch in forwarded:
                session_records(config).extend(GateRecord.from_dict(d) for d in batch)
        tags = next((v for n, v in report.user_properties if n == _RUNNERS_PROP), "")
        for tag in filter(None, tags.split(",")):
            tally = state.tallies[tag]
            tally.collected.add(report.nodeid)
            if report.skipped and report.nodeid not in tally.ran:
                tally.skipped[report.nodeid] = _skip_reason(report)
            elif report.when == "call" or report.failed:
                tally.ran.add(report.nodeid)
                tally.skipped.pop(report.nodeid, None)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus) -> None:
        config, state = self.config, self.state
        if not state.enabled:
            return
        records: list[GateRecord] = list(session_records(config))
        state.problems += require_problems(config.getoption("--require") or [], state.tallies, records)
        allow = config.getoption("--allow-inconclusive")
        blocking = [r for r in records if r.status == FAIL or (r.status == INCONCLUSIVE and not allow)]
        if blocking and session.exitstatus == pytest.ExitCode.OK:
            state.problems.append(f"{len(blocking)} gate record(s) FAILED or INCONCLUSIVE although no test failed "
                                  f"(caught or xfail-marked): {', '.join(r.id for r in blocking[:5])}")
        if state.silent:
            shown = ", ".join(state.silent[:5]) + (f", ... ({len(state.silent)} in all)" if len(state.silent) > 5 else "")
            state.problems.append(f"{len(state.silent)} gate test(s) passed without logging a gate record, so "
                                  f"they gated nothing: {shown}")
        _save_host_baseline(config, state, records)
        if state.problems and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        try:
            state.plot = gate_report.plot_fps(records, state.path.with_name(state.path.stem + ".fps.png"),
                                              title=f"zoogate throughput ({len(records)} gate records)")
        except (OSError, ValueError) as exc:
            state.notes.append(f"fps plot not written: {exc}")
        doc = gate_report.build_report(records, environment=gate_report.environment(seeds=_seeds(config, records)),
                                       run=_run_block(config, state, session.exitstatus))
        try:
            state.written = gate_report.write_report(doc, state.path)
        except ZoogateError as exc:
            state.problems.append(str(exc))
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        page = config.getoption("--gate-report-html")
        if page and state.written:
            from zoogate.report.html import write_html

            try:
                state.html = write_html([gate_report.parse_report(doc, state.written)],
                                        config.invocation_params.dir / page)
            except OSError as exc:
                state.problems.append(f"--gate-report-html {page}: {exc.strerror or exc}")

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config: pytest.Config) -> None:
        state = self.state
        if not state.enabled:
            return
        records: list[GateRecord] = list(session_records(config))
        tr = terminalreporter
        tr.write_sep("=", "zoogate gate report")
        if records:
            width = max(getattr(getattr(tr, "_tw", None), "fullwidth", 160), 160)
            tr.write_line(gate_report.render_table(records, width=width))
            tr.write_line("")
        summary = gate_report.summarize(records)
        tr.write_line(gate_report.render_summary(summary), red=bool(summary[FAIL]), green=not summary[FAIL])
        for warning in summary["warnings"]:
            tr.write_line(f"warning: {warning}", yellow=True)
        for label, value in (("report", state.written), ("junit", state.junit), ("fps plot", state.plot),
                             ("html", state.html),
                             ("host baseline saved", state.saved_baseline)):
            if value:
                tr.write_line(f"{label}: {value}")
        for note in state.notes:
            tr.write_line(f"note: {note}", yellow=True)
        for problem in state.problems:
            tr.write_line(f"RUN FAILS: {problem}", red=True, bold=True)
        for problem in state.problems:    # so pytest's closing line counts them, never a green "N passed"
            tr.stats.setdefault("zoogate-failed", []).append(pytest.TestReport(
                nodeid="zoogate::run", location=("zoogate", None, "run"), keywords={}, outcome="failed",
                longrepr=problem, when="call"))


# ---------------------------------------------------------------- host fps baselines

@pytest.fixture(scope="session")
def host_baseline(request: pytest.FixtureRequest):
    """The host baseline named by --compare-baseline (None without it). A missing or malformed save is
    an error naming the file and what to do (ZoogateError), never a silent skip."""
    from zoogate import throughput

    name = request.config.getoption("--compare-baseline")
    if not name:
        return None
    return throughput.load_host_baseline(name)


@pytest.fixture(scope="session")
def bisect_dir(request: pytest.FixtureRequest) -> Path:
    """Where bisect profiles of failed agreement gates go: ``bisect/`` beside the gate report."""
    state = request.config.stash.get(_STATE, None)
    base = state.path.parent if state is not None else request.config.rootpath / gate_report.DEFAULT_PATH.parent
    return base / "bisect"
