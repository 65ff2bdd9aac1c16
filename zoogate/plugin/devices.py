"""pytest plugin: device pinning under pytest-xdist.

``pytest -n 8 --devices 0-7``: worker gwN takes the N-th device of the list, and every runner it loads goes
to that device; without ``-n`` the first one. Without ``--devices``, ``pytest -m ascend -n 8`` spreads the
workers over every card of that hardware its backend detects (Marker.cards); otherwise ``--device-id``
as before. More workers than devices is a usage error. With devices pinned, tests are scheduled by runner
case, so each worker loads a compiled model once. Each gate record names its worker and device
(``details.worker``, ``details.device``), and the xdist controller's report holds every worker's records.
"""

from __future__ import annotations

import os
import re

import pytest

from zoogate.plugin._devices import PLACEMENT, Placement, parse_devices


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("zoogate").addoption(
        "--devices", default=None, metavar="LIST",
        help="cards for xdist workers, e.g. 0-7 or 0,2,3: worker gwN uses the N-th (default with -m <hardware> -n N: "
             "every card of that hardware detected; else --device-id)")


def _workers(config: pytest.Config) -> int:
    if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
        return int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    n = getattr(config.option, "numprocesses", None)
    return n if isinstance(n, int) else (os.cpu_count() or 1) if n in ("auto", "logical") else 1


def default_devices(config: pytest.Config) -> tuple[list[int] | None, str]:
    """Every card of the hardware ``-m`` names (``pytest -m ascend -n 8``), detected by its backend; None
    when -m names no single hardware marker or its backend finds no card."""
    from hardware import registry

    marker = registry.markers().get((config.getoption("markexpr") or "").strip())
    if marker is None or marker.cards is None:
        return None, ""
    ok, _ = marker.detect()
    cards = marker.cards() if ok else []
    return (cards or None), f"every {marker.name} card detected"


def pytest_configure(config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    spec = config.getoption("--devices")
    workers = _workers(config)
    if spec is not None:
        devices, source = parse_devices(spec), f"--devices {spec}"
    elif workers > 1:
        devices, source = default_devices(config)
    else:
        devices = None
    if devices is None:
        config.stash[PLACEMENT] = Placement(worker, config.getoption("--device-id"))
        return
    if workers > len(devices):
        raise pytest.UsageError(f"{source}: {workers} xdist workers but {len(devices)} device(s); give one "
                                f"device per worker (-n {len(devices)}) or more devices")
    index = int(worker[2:]) if worker and worker.startswith("gw") and worker[2:].isdigit() else 0
    # a worker xdist restarts after a crash gets a new number (gw8 of -n 8): it takes the crashed one's device
    config.stash[PLACEMENT] = Placement(worker, devices[index % len(devices)])


_CASE = re.compile(r"\[(?P<case>[^\]]*?-bs\d+)")     # the runner case of a test id: model-runner-bsN


def runner_case_scope(nodeid: str) -> str:
    """The group a test is scheduled in: its runner case (model, runner, batch size), so one worker loads each
    compiled model once; a test without one goes with its module."""
    m = _CASE.search(nodeid)
    return m["case"] if m else nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True)          # an xdist hook: pytest -p no:xdist must still start
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """With devices pinned, schedule by runner case (xdist's LoadScopeScheduling with our scope): test ids are
    unchanged, unlike ``--dist loadgroup``."""
    if getattr(config.option, "dist", "load") != "load" or config.stash.get(PLACEMENT, None) is None:
        return None
    if config.getoption("--devices") is None and default_devices(config)[0] is None:
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByRunnerCase(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return runner_case_scope(nodeid)

    return ByRunnerCase(config, log)
