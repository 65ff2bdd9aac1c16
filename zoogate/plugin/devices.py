"""pytest plugin: device pinning under pytest-xdist.

``pytest -n 8 --devices 0-7``: worker gwN takes the N-th device of the list, and every runner it loads goes
to that device; without ``-n`` the first one, and without ``--devices`` ``--device-id`` as before. More
workers than devices is a usage error. Each gate record names its worker and device
(``details.worker``, ``details.device``), and the xdist controller's report holds every worker's records.
"""

from __future__ import annotations

import os

import pytest

from zoogate.plugin._devices import PLACEMENT, Placement, parse_devices


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("zoogate").addoption(
        "--devices", default=None, metavar="LIST",
        help="cards for xdist workers, e.g. 0-7 or 0,2,3: worker gwN uses the N-th (default: --device-id for all)")


def _workers(config: pytest.Config) -> int:
    if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
        return int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    n = getattr(config.option, "numprocesses", None)
    return n if isinstance(n, int) else (os.cpu_count() or 1) if n in ("auto", "logical") else 1


def pytest_configure(config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    spec = config.getoption("--devices")
    if spec is None:
        config.stash[PLACEMENT] = Placement(worker, config.getoption("--device-id"))
        return
    devices = parse_devices(spec)
    workers = _workers(config)
    if workers > len(devices):
        raise pytest.UsageError(f"--devices {spec}: {workers} xdist workers but {len(devices)} device(s); give one "
                                f"device per worker (-n {len(devices)}) or more devices")
    index = int(worker[2:]) if worker and worker.startswith("gw") and worker[2:].isdigit() else 0
    config.stash[PLACEMENT] = Placement(worker, devices[index])
