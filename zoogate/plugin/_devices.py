"""Device placement under pytest-xdist, read by the plugins (zoogate.plugin.devices sets it)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Placement:
    worker: str | None           # gwN under xdist, else None
    device: int


PLACEMENT = pytest.StashKey[Placement]()


def parse_devices(spec: str) -> list[int]:
    devices: list[int] = []
    for part in spec.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise pytest.UsageError(f"--devices {spec!r}: expected card numbers like 0-7 or 0,1,3") from None
        if first < 0 or last < first:
            raise pytest.UsageError(f"--devices {spec!r}: {part.strip()!r} is not a range of card numbers")
        devices += [d for d in range(first, last + 1) if d not in devices]
    return devices


def placement(config: pytest.Config) -> Placement:
    return config.stash.get(PLACEMENT, None) or Placement(os.environ.get("PYTEST_XDIST_WORKER"),
                                                            config.getoption("--device-id"))
