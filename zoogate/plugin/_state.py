"""Session state the plugins share, in ``config.stash`` (never as attributes on the config)."""

from __future__ import annotations

import pytest

RECORDS = pytest.StashKey[list]()                  # the session's GateRecords, in the order logged
BATCH_SIZES = pytest.StashKey["list[int] | None"]()  # --bs, parsed


def session_records(config: pytest.Config) -> list:
    return config.stash.get(RECORDS, [])


def batch_sizes(config: pytest.Config) -> list[int] | None:
    return config.stash.get(BATCH_SIZES, None)
