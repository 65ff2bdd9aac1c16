"""pytest plugin: ``--sources DIR``, the folder of public documents the baselines cite, for the provenance
test (suites/test_baselines.py). Without it that test skips, saying what to pass."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("zoogate").addoption(
        "--sources", default=None, metavar="DIR",
        help="folder holding copies of the documents baselines/documents.toml lists (any file names, or "
             "<repository>/<path> as a clone lays them out): the provenance test checks every number in them")


def pytest_configure(config: pytest.Config) -> None:
    folder = config.getoption("--sources")
    if folder is not None and not Path(folder).is_dir():
        raise pytest.UsageError(f"--sources {folder}: not a folder")


@pytest.fixture(scope="session")
def source_documents(request: pytest.FixtureRequest) -> Path:
    folder = request.config.getoption("--sources")
    if folder is None:
        pytest.skip("provenance needs the cited documents: pass --sources DIR (a folder with copies of the "
                    "documents in baselines/documents.toml, e.g. clones of VastModelZOO and ModelZoo-PyTorch)")
    return Path(folder)
